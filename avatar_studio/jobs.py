"""Runners of the registered job kinds (imported in the worker only; see avatar_studio.kinds)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from avatar_studio.errors import InvalidJobInputError, TransientJobError
from avatar_studio.kinds import JobContext


def run_sliders(ctx: JobContext) -> Path:
    from avatar_studio.pipelines.sliders import load_sliders_config, run_sliders_job

    overrides = dict(ctx.config.get("overrides") or {})
    if ctx.inputs.get("motion"):
        overrides["motion.name"] = ctx.inputs["motion"]
    config = load_sliders_config(ctx.config.get("preset") or "preview", overrides)
    # force=True: a re-delivered job (its worker died mid-run) replaces whatever the dead attempt
    # left; the folder is swapped in only once complete, so readers never see a half job.
    return run_sliders_job(dict(ctx.inputs.get("sliders") or {}), config, ctx.output_dir, force=True,
                           progress=ctx.progress)


def run_text(ctx: JobContext) -> Path:
    from avatar_studio.pipelines.text import load_text_config, run_text_job

    overrides = dict(ctx.config.get("overrides") or {})
    if ctx.inputs.get("motion"):
        overrides["motion.name"] = ctx.inputs["motion"]
    config = load_text_config(ctx.config.get("preset") or "preview", overrides)
    return run_text_job(ctx.inputs.get("shape") or "", ctx.inputs.get("appearance") or None, config,
                        ctx.output_dir, force=True, progress=ctx.progress)


def _uploaded_photo(ctx: JobContext) -> Path:
    """The stored upload a photo/create job names (checked at submit: a bare content-hash name)."""
    photo = ctx.data_dir / "uploads" / ctx.inputs["photo"]
    if not photo.is_file():
        raise InvalidJobInputError(f"the uploaded photo {ctx.inputs['photo']} is no longer on the server; upload it again")
    return photo


def run_photo(ctx: JobContext) -> Path:
    from avatar_studio.pipelines.photo import load_photo_config, run_photo_job

    photo = _uploaded_photo(ctx)
    overrides = dict(ctx.config.get("overrides") or {})
    if ctx.inputs.get("method"):
        overrides["method"] = ctx.inputs["method"]
    config = load_photo_config(ctx.config.get("preset") or "preview", overrides)
    return run_photo_job(photo, config, ctx.output_dir, force=True, progress=ctx.progress,
                         fixed=ctx.inputs.get("attributes") or None)


def run_create(ctx: JobContext) -> Path:
    from avatar_studio.pipelines.create import load_create_config, run_create_job

    photo = _uploaded_photo(ctx) if ctx.inputs.get("photo") else None
    overrides = dict(ctx.config.get("overrides") or {})
    if ctx.inputs.get("motion"):
        overrides["motion.name"] = ctx.inputs["motion"]
    config = load_create_config(ctx.config.get("preset") or "preview", overrides)
    return run_create_job(photo, ctx.inputs.get("body") or None, ctx.inputs.get("look") or None, config,
                          ctx.output_dir, force=True, progress=ctx.progress)


def run_face(ctx: JobContext) -> Path:
    from avatar_studio.pipelines.photo import load_photo_config, run_params_job

    config = load_photo_config(ctx.config.get("preset") or "preview", dict(ctx.config.get("overrides") or {}))
    return run_params_job(ctx.inputs["params"], config, ctx.output_dir, force=True, progress=ctx.progress,
                          source_job=ctx.inputs.get("source_job") or "")


def run_selftest(ctx: JobContext) -> Path:
    from avatarclip_core.jobfolder import atomic_job_folder

    fail = ctx.inputs.get("fail", "")
    if fail and ctx.attempt <= int(ctx.inputs.get("fail_attempts", 1)):
        if fail == "user":
            raise InvalidJobInputError("selftest: a user error, as requested")
        if fail == "transient":
            raise TransientJobError(f"selftest: a transient error on attempt {ctx.attempt}, as requested")
        if fail == "bug":
            raise RuntimeError("selftest: a bug, as requested")
        if fail == "crash":
            os._exit(17)  # the job process dies like a segfault or the OOM killer would do it
    sleep = float(ctx.inputs.get("sleep", 0.0))
    if fail == "hang":  # like native code that never returns to Python: only the hard limit ends it
        from celery.exceptions import SoftTimeLimitExceeded

        deadline = time.monotonic() + sleep
        while time.monotonic() < deadline:
            try:
                time.sleep(max(0.0, deadline - time.monotonic()))
            except SoftTimeLimitExceeded:
                continue
    steps = max(1, int(sleep / 0.1))
    for i in range(steps):
        ctx.progress("sleep", i / steps, f"step {i + 1}/{steps}")
        time.sleep(sleep / steps)
    with atomic_job_folder(ctx.output_dir, force=True) as tmp:
        (tmp / "result.json").write_text(json.dumps(
            {"job_id": ctx.job_id, "attempt": ctx.attempt, "pid": os.getpid(), "slept": sleep}) + "\n")
    ctx.progress("done", 1.0, "selftest done")
    return ctx.output_dir
