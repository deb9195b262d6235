"""Errors job kinds raise (the UserInputError ones are the user's to fix: web HTTP 4xx, CLI exit 2).
The queue's own errors (unknown job, broker down, cancelled) live in workers.errors."""
from __future__ import annotations

from avatarclip_core.errors import UserInputError


class UnknownJobKindError(UserInputError):
    """submit() got a kind no one registered."""


class InvalidJobInputError(UserInputError):
    """submit() got inputs or config of the wrong shape or type (the message names the field)."""


class TransientJobError(Exception):
    """Raised by a job kind for a failure worth retrying (a busy GPU, a flaky mount, ...)."""
