"""REST /create_from_photos: several photos in one call -> one `photo` job each.

    client.predict([handle_file("a.jpg"), handle_file("b.png")], "oneshot", "preview",
                   api_name="/create_from_photos")
    -> {"jobs": [{"photo": "a.jpg", "job_id": "..."}], "failed": [{"photo": "b.png", "error": "..."}]}

Each photo goes through exactly what /create_from_photo does (web.app.photo_submitter: upload checks,
content-addressed storage, the job kind's checks at submit); a refused photo is listed with its
one-line reason and the others are still submitted. The jobs run on the workers as any photo job
(each worker process keeps its models loaded), spread over as many workers as there are.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

MAX_BATCH_PHOTOS = 100
PHOTO_FILE_TYPES = [".png", ".jpg", ".jpeg", ".webp"]


def batch_submitter(submit_photo: Callable[..., str]) -> Callable[..., dict]:
    """The endpoint's handler around the single-photo submitter (which raises gr.Error per photo)."""
    import gradio as gr

    from avatarclip_core.config.limits import PHOTO_METHODS

    def create_from_photos(paths: list | None, method: str = "auto", preset: str = "") -> dict:
        """Submit one `photo` job per uploaded photo. Inputs: the photos (gradio_client.handle_file
        each), the method (auto | iterative | oneshot | mean) and the preset. Returns {"jobs": [{photo,
        job_id}], "failed": [{photo, error}]}."""
        paths = list(paths or [])
        if not paths:
            raise gr.Error("upload one or more photos", print_exception=False)
        if len(paths) > MAX_BATCH_PHOTOS:
            raise gr.Error(f"at most {MAX_BATCH_PHOTOS} photos per call, got {len(paths)}", print_exception=False)
        if method not in PHOTO_METHODS:  # the whole call is wrong, not one photo
            raise gr.Error(f"unknown method {method!r} (choose from {', '.join(PHOTO_METHODS)})",
                           print_exception=False)
        jobs, failed = [], []
        for path in paths:
            name = Path(str(path)).name
            try:
                args = (str(path), method) + ((preset,) if preset else ())
                jobs.append({"photo": name, "job_id": submit_photo(*args)})
            except gr.Error as exc:  # this photo only: the others are still submitted
                failed.append({"photo": name, "error": str(exc.message)})
        return {"jobs": jobs, "failed": failed}

    return create_from_photos


def photo_batch_endpoint(submit_photo: Callable[..., str], uploads_dir: Path) -> None:
    """Add /create_from_photos to the Blocks being built (hidden components: it is an API call only)."""
    import gradio as gr

    from web.app import PhotoFile

    files = PhotoFile(file_count="multiple", type="filepath", file_types=PHOTO_FILE_TYPES, visible=False,
                      label="Photos")
    files.uploads_dir = uploads_dir
    method = gr.Textbox(value="auto", visible=False, label="Method")
    preset = gr.Textbox(value="", visible=False, label="Preset")
    result = gr.JSON(visible=False)
    trigger = gr.Button(visible=False)
    trigger.click(batch_submitter(submit_photo), inputs=[files, method, preset], outputs=[result],
                  api_name="create_from_photos", concurrency_limit=None)
