"""Correcting what a photo job detected: the photo tab shows a finished photo job's attributes (gender,
age band, skin tone, hair colour and length, beard, moustache, glasses), each with its confidence, as
dropdowns; "Re-fit with these" submits a new photo job on the same stored upload with what the user
changed fixed (inputs.attributes -> fit(fixed=...), source 'user' in params.json).

REST: /create_from_photo's fourth argument is the same thing as one JSON object string, e.g.
'{"gender": "female", "hair_style": "long"}' (checked by the photo job kind at submit, before the
upload is stored). The allowed keys and values come from face2param.faces.attribute_values on the
engine spec of face2param.spec_cache: nothing here imports torch.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gradio as gr

from avatarclip_core.errors import UserInputError
from face2param.faces.attribute_values import fixable_attributes
from web import jobs as J

# what the panel shows, in this order (params.json's attributes.detected keys)
SHOWN = ("gender", "age_band", "skin_tone", "hair_colour", "hair_length", "beard", "moustache", "glasses")
LABELS = {"gender": "Gender", "age_band": "Age band", "skin_tone": "Skin tone", "hair_colour": "Hair colour",
          "hair_length": "Hair length", "beard": "Beard", "moustache": "Moustache", "glasses": "Glasses"}
EXAMPLE = '{"gender": "female", "hair_style": "long"}'
WAITING = "Detected attributes appear here when a photo job has finished; correct them and re-fit."


def parse_attributes(text: Any) -> dict:
    """/create_from_photo's attributes argument: '' or null (none fixed) or ONE JSON object string.
    Names and values are the photo job kind's to check (avatar_studio.kinds.photo_attributes)."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return {}
    return J.json_object(text, EXAMPLE)


def shown_choices(spec) -> dict[str, list[str]]:
    """The panel's keys and their choices (skin tone: the engine's palette; absent without that slot)."""
    allowed = fixable_attributes(spec)
    return {k: allowed[k] for k in SHOWN if allowed.get(k)}


def load_photo_attributes(api: Any, job_id: str, uploads_dir: Path) -> dict | None:
    """What the panel needs of a finished photo job, or None when the job is not one (or not done):
    {"job_id", "photo", "method", "config", "fixed", "detected": {key: {value, confidence, source}}}."""
    record = api.record(J.check_job_id(job_id))
    if record.kind != "photo" or record.state != "SUCCESS":
        return None
    try:
        params = json.loads(api.file(record.job_id, "params.json").read_text())
    except (OSError, ValueError, UserInputError):
        return None
    detected = (params.get("attributes") or {}).get("detected") or {}
    return {"job_id": record.job_id, "photo": record.inputs.get("photo", ""),
            "method": record.inputs.get("method") or "auto", "config": dict(record.config),
            "fixed": dict(record.inputs.get("attributes") or {}),
            "detected": {k: v for k, v in detected.items() if k in SHOWN and isinstance(v, dict)},
            "photo_stored": (uploads_dir / str(record.inputs.get("photo", ""))).is_file()}


def refit_inputs(loaded: dict | None, values: dict[str, Any]) -> tuple[dict, dict]:
    """The panel's values -> a new photo job's (inputs, config): the source job's fixed values, plus
    every dropdown the user moved off the detected value. Unmoved ones are detected again."""
    if not loaded:
        raise UserInputError("no finished photo job is shown: create one from a photo first")
    if not loaded.get("photo_stored"):
        raise UserInputError(f"the photo of job {loaded['job_id']} is no longer stored on the server; upload it again")
    fixed = dict(loaded.get("fixed") or {})
    for key, value in values.items():
        if value and value != (loaded["detected"].get(key) or {}).get("value"):
            fixed[key] = value
    if not fixed:
        raise UserInputError("nothing to re-fit: change at least one attribute from what was detected")
    return ({"photo": loaded["photo"], "method": loaded["method"], "attributes": fixed},
            {"preset": loaded["config"].get("preset") or J.DEFAULT_PRESET,
             "overrides": dict(loaded["config"].get("overrides") or {})})


def describe(item: dict | None) -> str:
    """'detected: female, confidence 0.87' / 'fixed by you' / 'not detected'."""
    if not item or item.get("value") is None:
        return "not detected (the engine's default)"
    if item.get("source") == "user":
        return f"fixed by you: {item['value']}"
    weak = " (weak: a neutral value)" if item.get("source") == "prior" else ""
    return f"detected: {item['value']}, confidence {float(item.get('confidence') or 0):.2f}{weak}"


def attributes_panel(holder: Any, job_state: gr.State, timer: gr.Timer, spec, uploads_dir: Path, gr_error):
    """The photo tab's panel. Returns (load function, its inputs, its outputs) for the caller to run
    when the job status changes (the status box lives outside the tab)."""
    choices = shown_choices(spec)
    loaded = gr.State(None)
    info = gr.Markdown(WAITING, elem_id="photo-attributes-info")
    with gr.Group(visible=False, elem_id="photo-attributes") as group:
        dropdowns = [gr.Dropdown([(v.replace("_", " "), v) for v in options], value=None, label=LABELS[key],
                                 info="", elem_id=f"photo-attr-{key}") for key, options in choices.items()]
        refit_btn = gr.Button("Re-fit with these", variant="secondary", elem_id="photo-refit-btn")

    def load(job_id: str, current: dict | None):
        if not job_id or (current or {}).get("job_id") == job_id:
            return gr.skip(), gr.skip(), gr.skip(), *[gr.skip()] * len(dropdowns)
        try:
            shown = load_photo_attributes(holder.get(), job_id, uploads_dir)
        except Exception:  # noqa: BLE001  (an unknown or odd job: the panel waits for the next one)
            shown = None
        if shown is None:  # another kind, or not finished yet: hide the last job's values
            return None, WAITING, gr.Group(visible=False), *[gr.skip()] * len(dropdowns)
        note = (f"Attributes of photo job `{job_id}`: correct what is wrong and press *Re-fit with these* "
                "(unchanged values are detected again).")
        updates = [gr.Dropdown(value=(shown["detected"].get(k) or {}).get("value"),
                               info=describe(shown["detected"].get(k))) for k in choices]
        return shown, note, gr.Group(visible=True), *updates

    def refit(current: dict | None, *values):
        try:
            inputs, config = refit_inputs(current, dict(zip(choices, values)))
            job_id = holder.get().submit("photo", inputs, config)
        except Exception as e:
            raise gr_error(e) from None
        return job_id, gr.Timer(active=True)

    refit_btn.click(refit, inputs=[loaded, *dropdowns], outputs=[job_state, timer], api_visibility="private")
    return load, [job_state, loaded], [loaded, info, group, *dropdowns]
