"""The "Create" tab and REST /create_avatar: one avatar from everything a user gives -- an optional
photo (the face), body words, look words (hair, beard, glasses, colours, outfit), a motion, a preset.

REST: /create_avatar takes ONE JSON object string and an optional photo file (FileData; null for
none), e.g. '{"body": "a very tall heavy man", "look": "grey hair, glasses, red jacket, blue jeans",
"motion": "wave", "seconds": 4, "loop": "auto", "preset": "preview", "formats": ["glb", "vrm"],
"profile": "unity"}' ("seconds", "loop": the motion clip's length and loop, web.clip_controls; "config":
the overrides REST callers may set, avatar_studio.config_schema.REST_OVERRIDES); it returns the job id.
The photo passes the same upload gate as /create_from_photo (received in this request, size cap,
content sniffing, a cheap decode)."""
from __future__ import annotations

import json
from typing import Callable

import gradio as gr

from avatarclip_core.errors import UserInputError
from web import jobs as J
from web.clip_controls import clip_controls, clip_request

CREATE_KEYS = ("body", "look", "motion", "preset", "formats", "profile", "seconds", "loop", "config")
EXAMPLE = '{"body": "a very tall heavy man", "look": "grey hair, glasses, red jacket, blue jeans", "motion": "wave"}'


def parse_create_request(request_json: str) -> tuple[dict, str, dict]:
    """The JSON request -> (inputs without the photo, preset, config overrides); unknown keys, non-text
    values and overrides outside REST's allow-list refused."""
    data = J.json_object(request_json, EXAMPLE)
    unknown = sorted(set(data) - set(CREATE_KEYS))
    if unknown:
        raise UserInputError(f"unknown key {unknown[0]!r} in the create request (expected: {', '.join(CREATE_KEYS)})")
    for key in ("body", "look", "motion", "preset"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise UserInputError(f"'{key}' must be text, got {type(data[key]).__name__}")
    preset = J.validate_preset(data.get("preset") or J.DEFAULT_PRESET, J.preset_choices())
    overrides = J.request_overrides("create", preset, data)  # "config", "formats", "profile", "seconds", "loop"
    return {k: (data.get(k) or "").strip() for k in ("body", "look", "motion")}, preset, overrides


def create_submitter(holder, uploads_dir, upload_max_bytes: int, blocks, gr_error: Callable) -> Callable[..., str]:
    from web.uploads import discard_received_upload, store_upload

    def create_avatar(request_json: str, photo_path: str | None = None) -> str:
        try:
            inputs, preset, overrides = parse_create_request(request_json)
            if photo_path:
                inputs["photo"] = store_upload(photo_path, uploads_dir, upload_max_bytes)
            elif not any(inputs.values()):
                raise UserInputError("give a photo, a body description, a look description or a motion")
            return holder.get().submit("create", inputs, {"preset": preset, "overrides": overrides})
        except Exception as e:
            discard_received_upload(photo_path, blocks)
            raise gr_error(e) from None

    return create_avatar


def create_tab(holder, job_state, timer, photo_file: gr.File, submit: Callable[..., str]) -> None:
    """The tab's inputs; its button is the REST endpoint /create_avatar (JSON + photo)."""
    gr.Markdown("One avatar from everything you give: a photo for the face, words for the body and the look "
                "(hair, beard, glasses, clothes and their colours), a motion. Any of them may be left empty.")
    body = gr.Textbox(label="Body", placeholder="a very tall heavy man", lines=1, elem_id="create-body")
    look = gr.Textbox(label="Look and outfit", placeholder="grey hair, glasses, red jacket, blue jeans, white sneakers",
                      lines=2, elem_id="create-look")
    with gr.Row():
        motion = gr.Dropdown(["", *J.MOTIONS], value="wave", label="Motion (a built-in one, or type a description)",
                             allow_custom_value=True, elem_id="create-motion")
        preset = gr.Dropdown(J.preset_choices(), value=J.DEFAULT_PRESET, label="Preset", elem_id="create-preset")
    seconds, loop = clip_controls("create")
    with gr.Row():
        from avatarclip_core.export.profiles import FILE_FORMATS, PROFILES  # torch-free

        formats = gr.CheckboxGroup(list(FILE_FORMATS), value=["glb", "bvh"], label="Files (avatar.glb always)",
                                   elem_id="create-formats")
        profile = gr.Dropdown(list(PROFILES), value="generic", label="Engine profile", elem_id="create-profile",
                              info="bone names, rest pose, influences: unity/threejs/vrm get T-pose and 4")
    go = gr.Button("Create avatar", variant="primary", elem_id="create-avatar-btn")
    request = gr.Textbox(visible=False)
    job_id = gr.Textbox(visible=False)

    def as_request(body_text: str, look_text: str, motion_name: str, preset_name: str, files: list, engine: str,
                   clip_seconds: float | None, clip_loop: str) -> str:
        return json.dumps({"body": body_text or "", "look": look_text or "", "motion": motion_name or "",
                           "preset": preset_name or "", "formats": sorted(set(files or []) | {"glb"}),
                           "profile": engine or "generic", **clip_request(motion_name, clip_seconds, clip_loop)})

    go.click(as_request, inputs=[body, look, motion, preset, formats, profile, seconds, loop], outputs=[request],
             api_visibility="private").then(
        submit, inputs=[request, photo_file], outputs=[job_id], api_name="create_avatar",
        concurrency_limit=None).then(lambda j: (j, gr.Timer(active=True)), inputs=[job_id],
                                     outputs=[job_state, timer], api_visibility="private")


