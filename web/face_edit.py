"""Editing photo results: open a finished `photo` job (or an earlier edit) in the face engine's controls,
change sliders and asset choices, and make a new avatar through a `face` job that keeps everything else
(face/head sliders, phenotypes, hair, brows, beard, glasses and colours) exactly as the source had it.

REST (Gradio API name, stable):
    /create_from_face_params  one JSON object string -> job id
        {"source_job": "<a photo or face job id>", "continuous": {"nose-scale-horiz-incr": 0.8},
         "discrete": {"beard": "full"}, "preset": "preview"}
        With "source_job" the given values go on top of that job's params.json; without it the
        unnamed entries take the engine's defaults (a whole params.json is accepted as it is).

The engine's spec (slider names, groups, slots and options) comes from face2param.spec_cache: a child
process once, cached as JSON, so this process never imports torch.
"""
from __future__ import annotations

import json
from typing import Any

import gradio as gr

from avatarclip_core.errors import UserInputError
from face2param.engines.base import PARAMS_FILE_METADATA, ContinuousParam, EngineParams, ParamSpec
from web import jobs as J

EDITABLE_KINDS = ("photo", "face")
REQUEST_KEYS = ("source_job", "continuous", "discrete", "preset", "config")
STEP = 0.01  # the sliders' resolution; an unmoved slider keeps the source's exact value (see edited_params)
# head-to-toe order of the engine's slider groups on the page (unknown groups follow)
GROUP_ORDER = ("phenotype", "forehead", "brows", "eyes", "ears", "nose", "cheeks", "mouth", "jaw", "head", "neck")


# ---- without Gradio ------------------------------------------------------------------------------

def load_job_params(api: Any, job_id: Any) -> dict:
    """{"continuous", "discrete"} of a finished photo or face job (its params.json)."""
    job_id = J.check_job_id(job_id)
    st = J.status_fields(api.status(job_id))
    if st.get("kind") not in EDITABLE_KINDS:
        raise UserInputError(f"job {job_id} is a {st.get('kind') or 'unknown'} job: only photo results "
                             "(and their edits) have face parameters to edit")
    if st.get("state") != "SUCCESS":
        raise UserInputError(f"job {job_id} is {st.get('state')}: open it once it has succeeded")
    try:
        data = json.loads(api.file(job_id, "params.json").read_text())
    except (OSError, ValueError):
        raise UserInputError(f"job {job_id} has no readable params.json") from None
    return EngineParams.from_json(data).to_json()


def parse_face_request(text: Any, api: Any) -> tuple[dict, dict]:
    """/create_from_face_params's JSON -> submit() inputs and config of a `face` job. The values are
    checked against the engine's spec by the job kind at submit (nothing is stored when they fail)."""
    data = J.json_object(text, '{"source_job": "<photo job id>", "discrete": {"beard": "full"}}')
    unknown = sorted(set(data) - set(REQUEST_KEYS) - set(PARAMS_FILE_METADATA))
    if unknown:
        raise UserInputError(f"unknown field {json.dumps(unknown[0])}: use {', '.join(REQUEST_KEYS)}")
    changes = EngineParams.from_json({k: data[k] for k in ("continuous", "discrete") if k in data})
    for name, value in changes.continuous.items():  # JSON numbers only, as on /create_from_sliders
        J.as_number(value, f"parameter {json.dumps(name)}")
    source_job = data.get("source_job") or ""
    base = load_job_params(api, source_job) if source_job else {"continuous": {}, "discrete": {}}
    params = {"continuous": {**base["continuous"], **changes.continuous},
              "discrete": {**base["discrete"], **changes.discrete}}
    preset = J.validate_preset(data.get("preset"), J.preset_choices())
    overrides = J.rest_overrides("face", preset, data.get("config"))
    return {"params": params, "source_job": source_job}, {"preset": preset, "overrides": overrides}


def edited_params(spec: ParamSpec, loaded: dict | None, values: list, options: list) -> dict:
    """The page's controls -> params: `values` in page_order(spec), `options` in spec order. A slider
    within half a step of the loaded value was not moved (the browser may round to the step): it keeps
    the loaded value exactly."""
    loaded = loaded or {"continuous": {}, "discrete": {}}
    continuous = {}
    for p, value in zip(page_order(spec), values):
        before = float(loaded["continuous"].get(p.name, p.default))
        value = before if value is None else float(value)
        continuous[p.name] = before if abs(value - before) <= STEP / 2 + 1e-9 else value
    discrete = {s.name: option for s, option in zip(spec.discrete, options)}
    return {"continuous": continuous, "discrete": discrete}


def slider_label(p: ContinuousParam) -> str:
    """'Left cheek: trans up' for 'l-cheek-trans-up' (the body's labels, with the part as the group)."""
    if p.group == "phenotype":
        return J.PHENOTYPE_LABELS.get(p.name, p.name.title())
    words = [w for w in p.name.split("-") if w not in ("l", "r", "measure")]
    return J.slider_label(J.SliderInfo(p.name, p.minimum, p.maximum, p.default, words[0] if words else p.group))


def grouped(spec: ParamSpec) -> dict[str, list[ContinuousParam]]:
    rank = {g: i for i, g in enumerate(GROUP_ORDER)}
    groups: dict[str, list[ContinuousParam]] = {}
    for p in spec.continuous:
        groups.setdefault(p.group, []).append(p)
    return dict(sorted(groups.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


def page_order(spec: ParamSpec) -> list[ContinuousParam]:
    """The sliders in the order the tab shows them (grouped), which is the order of its values."""
    return [p for params in grouped(spec).values() for p in params]


def _title(name: str) -> str:
    text = name.replace("_", " ")
    return text[:1].upper() + text[1:]


# ---- the tab -------------------------------------------------------------------------------------

def face_edit_tab(holder: Any, job_state: gr.State, timer: gr.Timer, spec: ParamSpec, gr_error) -> tuple:
    """The 'Edit photo result' tab. Returns (job id box, open function, its outputs) so that other
    tabs can open a job here."""
    gr.Markdown("Open a finished **photo** job (or an earlier edit), change face sliders and assets, and "
                "create a new avatar: everything you leave alone is kept exactly.")
    with gr.Row():
        job_box = gr.Textbox(label="Job id (empty: the job shown on the right)", lines=1, scale=4,
                             elem_id="face-edit-job")
        open_btn = gr.Button("Open", scale=1, elem_id="face-edit-open")
    loaded = gr.State(None)  # {"job_id", "params"} of the opened job
    info = gr.Markdown("Nothing opened yet: the controls show the engine's defaults.", elem_id="face-edit-info")
    dropdowns = []
    with gr.Row():
        for slot in spec.discrete:
            dropdowns.append(gr.Dropdown([(o.replace("_", " "), o) for o in slot.options], value=slot.default,
                                         label=_title(slot.name), elem_id=f"face-slot-{slot.name}"))
    sliders = []
    for group, params in grouped(spec).items():
        with gr.Accordion(f"{_title(group)} ({len(params)})", open=group == "phenotype",
                          elem_id=f"face-group-{group}"):
            for p in params:
                sliders.append(gr.Slider(p.minimum, p.maximum, value=p.default, step=STEP, label=slider_label(p),
                                         info=p.name, elem_id=f"face-slider-{p.name}"))
    preset = gr.Dropdown(J.preset_choices(), value=J.DEFAULT_PRESET, label="Preset")
    go = gr.Button("Create edited avatar", variant="primary", elem_id="face-edit-create")

    def open_job(typed: str, shown: str):
        job_id = (typed or "").strip() or (shown or "").strip()
        try:
            if not job_id:
                raise UserInputError("type a photo job's id, or open one from the history first")
            params = load_job_params(holder.get(), job_id)
        except Exception as e:
            raise gr_error(e) from None
        values = [params["continuous"].get(p.name, p.default) for p in page_order(spec)]
        options = [params["discrete"].get(s.name, s.default) for s in spec.discrete]
        note = f"Editing job `{job_id}`: move sliders or pick assets, then press *Create edited avatar*."
        return (job_id, {"job_id": job_id, "params": params}, note, *values, *options)

    def submit(opened: dict | None, preset_name: str, *controls):
        values, options = list(controls[:len(sliders)]), list(controls[len(sliders):])
        opened = opened or {}
        try:
            params = edited_params(spec, opened.get("params"), values, options)
            job_id = holder.get().submit("face", {"params": params, "source_job": opened.get("job_id") or ""},
                                         {"preset": J.validate_preset(preset_name, J.preset_choices())})
        except Exception as e:
            raise gr_error(e) from None
        return job_id, gr.Timer(active=True)

    open_outputs = [job_box, loaded, info, *sliders, *dropdowns]
    open_btn.click(open_job, inputs=[job_box, job_state], outputs=open_outputs, api_visibility="private")
    go.click(submit, inputs=[loaded, preset, *sliders, *dropdowns], outputs=[job_state, timer],
             api_visibility="private")
    return job_box, open_job, open_outputs
