"""Errors of the job queue. The UserInputError subclasses are the user's to fix (web: HTTP 4xx, CLI: exit 2).
The errors job kinds raise (invalid input, unknown kind, transient) are avatar_studio.errors."""
from __future__ import annotations

from avatarclip_core.errors import UserInputError


class UnknownJobError(UserInputError):
    """No job with this id in the job store."""


class JobFileError(UserInputError):
    """A download name that is not a file inside the job's folder (traversal, symlink, missing)."""


class QueueUnavailableError(RuntimeError):
    """The broker could not be reached to queue a job (the job is recorded as FAILURE)."""

    def __init__(self, message: str, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id


class JobCancelled(Exception):
    """Raised inside a running job when its cancelled marker is seen (at a progress report)."""


class JobFailed(Exception):
    """What a worker raises for every failed job: a plain message, so reading the result anywhere
    needs no import of the pipeline code (torch) that raised the original error."""
