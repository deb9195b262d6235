"""The studio's web front end: a Gradio Blocks page and Gradio's REST API over the job API.

The web process never runs a pipeline: it submits jobs to the job API (workers.api) and reads
their status and files. Entry points:

    build_app(api=None) -> gr.Blocks          the page and its REST endpoints
    create_server_app(api=None) -> FastAPI   + /download/{job_id}/{name}, the optional token gate
    launch(host, port, start_worker=True)     serve it (and the embedded worker process)

REST endpoints (Gradio API names, stable):
    /create_from_sliders  one JSON object string -> job id
        {"height": 0.9, "weight": 0.3, "motion": "walk", "preset": "preview", "seconds": 4, "loop": "auto"}
        ("motion": "" | "idle" | "wave" | "walk" | a description, "preset": a configs/ preset, "seconds"
         (0-60, 0 = as made) and "loop" (auto | on | off): the motion clip's length and loop, all optional;
         the sliders may also be nested: {"sliders": {"height": 0.9}, "motion": "walk"})
    /create_from_face_params  one JSON object string -> job id (web/face_edit.py: edit a photo result)
        {"source_job": "<photo job id>", "continuous": {"nose-scale-horiz-incr": 0.8}, "discrete": {"beard": "full"}}
    /create_from_photo    photo file, method, preset[, fixed attributes: one JSON object string] -> job id
        e.g. handle_file("me.jpg"), "auto", "preview", '{"gender": "female", "hair_style": "long"}'
        (web/photo_attributes.py; the three-argument form of earlier versions still works)
    /create_avatar        one JSON object string[, photo file] -> job id (web/create_tab.py: the Create tab)
        '{"body": "a very tall heavy man", "look": "grey hair, glasses, red jacket", "motion": "wave"}'
    /job_status           job id -> {job_id, kind, state, stage, progress, message, files, error, created}
        files: file name -> download URL (only when state is SUCCESS)
"""
from __future__ import annotations

import json

import contextlib
import logging
import mimetypes
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from avatarclip_core.config.limits import PHOTO_METHODS, UPLOAD_MAX_BYTES
from avatarclip_core.errors import UserInputError
from avatarclip_core.paths import data_dir_path
from web import jobs as J
from web.auth import TokenGate
from web.health import HEALTH_PATH, health_route
from web.sessions import ReapRawSessions
from web.uploads import UploadGate

log = logging.getLogger("avatar.web")

TITLE = "Avatar Studio"
POLL_SECONDS = 1.0
MEDIA_TYPES = {".glb": "model/gltf-binary", ".gltf": "model/gltf+json", ".fbx": "application/octet-stream",
               ".bvh": "text/plain; charset=utf-8", ".json": "application/json", ".npz": "application/octet-stream",
               ".png": "image/png"}
CSS = """
#job-status-box { font-size: 1rem; }
#job-downloads ul { margin: 4px 0 0 1.2em; }
"""


# ---- settings and collaborators ------------------------------------------------------------------

@dataclass
class WebSettings:
    upload_max_bytes: int = UPLOAD_MAX_BYTES
    api_token: str | None = None
    data_dir: Path | None = None

    def __repr__(self) -> str:  # never print the token
        return (f"WebSettings(upload_max_bytes={self.upload_max_bytes}, api_token={'set' if self.api_token else None},"
                f" data_dir={self.data_dir})")


def load_settings() -> Any:
    """workers.settings.get_settings() (the shared settings, from AVATAR_* variables) when the worker
    side is installed, else the web's own variables read the same way."""
    try:
        from workers.settings import get_settings
    except ImportError:
        return WebSettings(
            upload_max_bytes=int(os.environ.get("AVATAR_UPLOAD_MAX_BYTES") or UPLOAD_MAX_BYTES),
            api_token=os.environ.get("AVATAR_API_TOKEN") or None,
            data_dir=data_dir_path(),
        )
    return get_settings()


def default_file_resolver(settings: Any = None) -> Callable[[str, str], Path]:
    """workers.store.safe_job_file bound to the settings' data folder (no traversal, no symlinks)."""
    from workers.store import safe_job_file

    try:
        from workers.settings import Settings
    except ImportError:  # pragma: no cover
        Settings = ()  # noqa: N806
    bound = settings if isinstance(settings, Settings) else None
    return lambda job_id, name: Path(safe_job_file(job_id, name, bound))


def default_api(settings: Any = None) -> Any:
    """A JobAPI on the given settings (the process-wide one when they are the environment's)."""
    from workers.api import JobAPI, get_job_api
    from workers.settings import Settings

    return JobAPI(settings) if isinstance(settings, Settings) else get_job_api()


class _LazyAPI:
    """workers.api.get_job_api() on first use, so the page can be built before the worker side is up."""

    def __init__(self, api: Any = None, settings: Any = None):
        self._api = api
        self._settings = settings
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._api is None:
            with self._lock:
                if self._api is None:
                    self._api = default_api(self._settings)
        return self._api


def base_url(request: gr.Request | None, public_url: str | None = None) -> str:
    """The server's URL as the client sees it (for absolute download links)."""
    if public_url:
        return public_url.rstrip("/")
    if request is None:
        return ""
    headers = {k.lower(): v for k, v in dict(getattr(request, "headers", {}) or {}).items()}
    url = str(getattr(request, "url", "") or "")
    scheme = (headers.get("x-forwarded-proto") or url.split("://", 1)[0] or "http").split(",")[0].strip()
    host = (headers.get("x-forwarded-host") or headers.get("host") or "").split(",")[0].strip()
    if not host and "://" in url:
        host = url.split("://", 1)[1].split("/", 1)[0]
    return f"{scheme}://{host}" if host else ""


class UrlModel3D(gr.Model3D):
    """gr.Model3D that shows a model by URL (our /download route) instead of copying the file into
    Gradio's cache: the browser fetches it with the user's own session, through safe_job_file."""

    is_template = True  # the page uses the stock Model3D front end

    def postprocess(self, value):
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            from gradio.data_classes import FileData

            return FileData(path=value, url=value, orig_name=value.rsplit("/", 1)[-1])
        return super().postprocess(value)


class PhotoFile(gr.File):
    """gr.File for the photo endpoint: a request may name only a file Gradio's upload route received
    (gradio_client's handle_file, the page's upload) or one of the app's stored uploads by its name.
    Stock gr.File copies ANY server path or URL a FileData names into Gradio's cache (its own check
    is off when the app is mounted rather than launched), which would let a client run a job on any
    image on the server."""

    is_template = True  # the page uses the stock File front end
    uploads_dir: Path | None = None  # set after construction: an __init__ argument would reach the page config

    def _accepted(self, path: Any) -> tuple[str, bool]:
        """(the path to use, whether it is a stored upload that needs no copy) or gr.Error."""
        from gradio.context import LocalContext

        from web.uploads import received_upload, stored_upload_path

        text = str(path or "")
        if received_upload(text, LocalContext.blocks.get(None)):
            return text, False
        stored = stored_upload_path(text, self.uploads_dir) if self.uploads_dir and "://" not in text else None
        if stored is not None:
            return str(stored), True
        raise gr.Error("only a photo uploaded with this request (gradio_client handle_file, or the page's "
                       "upload) or a stored upload's name is accepted, not a server path or URL",
                       print_exception=False)

    async def async_move_resource_to_block_cache(self, url_or_file_path):
        if url_or_file_path is None:
            return None
        path, stored = self._accepted(url_or_file_path)
        return path if stored else await super().async_move_resource_to_block_cache(path)

    def move_resource_to_block_cache(self, url_or_file_path):
        if url_or_file_path is None:
            return None
        path, stored = self._accepted(url_or_file_path)
        return path if stored else super().move_resource_to_block_cache(path)

    def _process_single_file(self, f):
        # stock gr.File (Gradio 6.31) opens a NamedTemporaryFile here and never uses it: a 0-byte file
        # in Gradio's temp folder per call
        from gradio.utils import NamedString
        from gradio_client.utils import is_valid_file

        if self.file_types and not is_valid_file(f.path, self.file_types):
            raise gr.Error(f"the photo must be one of {', '.join(self.file_types)}", print_exception=False)
        return NamedString(f.path)


# trailing arguments an endpoint gained later, with the value an older caller's shorter request means
# create_from_photo: the fixed attributes and the config overrides (JSON objects; "" = none)
OPTIONAL_ARGUMENTS = {"create_from_photo": ("", ""), "create_avatar": (None,)}  # create_avatar: no photo


def _strict_arguments(demo: gr.Blocks) -> None:
    """Refuse calls with more input values than the endpoint takes (Gradio ignores the extras, and
    reports too few in a multi-line message): one line, '<api> takes N arguments, got M'. A call
    without an endpoint's OPTIONAL_ARGUMENTS gets their defaults (callers of the older signature)."""
    stock = demo.validate_inputs

    def validate_inputs(block_fn, inputs):
        wanted, given = len(block_fn.inputs), len(inputs)
        if given != wanted and getattr(block_fn, "api_visibility", "public") == "public":
            optional = OPTIONAL_ARGUMENTS.get(block_fn.api_name or "", ())
            least = wanted - len(optional)
            if optional and least <= given < wanted:
                inputs.extend(optional[given - least:])  # the same list Gradio goes on to preprocess
            else:
                takes = f"{least} to {wanted} arguments" if optional else \
                    f"{wanted} argument{'' if wanted == 1 else 's'}"
                _discard_named_uploads(inputs, demo)  # a refused request leaves no upload behind
                raise gr.Error(f"{block_fn.api_name or block_fn.name} takes {takes}, got {given}",
                               print_exception=False)
        return stock(block_fn, inputs)

    demo.validate_inputs = validate_inputs


def _discard_named_uploads(inputs: list, blocks: gr.Blocks) -> None:
    """Delete the files Gradio's upload route received that a refused request names (FileData dicts)."""
    from web.uploads import discard_received_upload

    for value in inputs:
        if isinstance(value, dict) and isinstance(value.get("path"), str):
            discard_received_upload(value["path"], blocks)


def _gr_error(exc: BaseException) -> gr.Error:
    if not isinstance(exc, UserInputError):
        log.exception("unexpected error in a web handler")
    return gr.Error(J.user_message(exc), print_exception=False)


# ---- the page -----------------------------------------------------------------------------------

def build_app(api: Any = None, settings: Any = None, public_url: str | None = None) -> gr.Blocks:
    """The Blocks page with the REST endpoints /create_from_sliders and /job_status.

    `api` is a workers.api.JobAPI (default, on first use: JobAPI(settings), or get_job_api() when
    settings are not workers.settings.Settings). Slider metadata is read once per process.
    """
    settings = settings or load_settings()
    holder = _LazyAPI(api, settings)
    specs = J.body_slider_specs()
    presets = J.preset_choices()
    kinds = J.job_kinds(api)
    phenotype = [s for s in specs if s.group == "phenotype"]
    local_groups = J.group_local_sliders(specs)
    slider_order: list[J.SliderInfo] = []
    face_spec = None
    if "face" in kinds:  # the face engine's spec, torch-free (a child process once, cached as JSON)
        from face2param.spec_cache import default_engine_spec

        face_spec = default_engine_spec()

    def current_status(job_id: str, request: gr.Request | None) -> dict:
        job_id = J.check_job_id(job_id)
        return J.public_status(holder.get().status(job_id), base_url(request, public_url))

    # REST: /create_from_sliders
    def create_from_sliders(sliders_json: str) -> str:
        """Submit a `sliders` job. Input: ONE JSON object string of slider values plus the optional
        keys "motion" ("" | "idle" | "wave" | "walk" | a description), "preset" (e.g. "preview"), "seconds"
        (the clip's length, 0-60, 0 = as made) and "loop" (auto | on | off), e.g.
        '{"height": 0.9, "motion": "walk", "seconds": 4}'. Returns the job id."""
        try:
            req = J.parse_sliders_request(sliders_json, specs, presets)
            return J.submit_sliders(holder.get(), req)
        except Exception as e:
            raise _gr_error(e) from None

    # REST: /create_from_text
    def create_from_text(request_json: str) -> str:
        """Submit a `text` job. Input: ONE JSON object string with "shape" and/or "appearance"
        prompts and the optional "motion", "preset", "seconds" and "loop" (the motion clip's length and
        loop, as on /create_from_sliders), e.g. '{"shape": "a tall and fat man", "motion": "walk"}'.
        Returns the job id."""
        try:
            request = J.parse_text_request(request_json)
            return holder.get().submit("text", request["inputs"], request["config"])
        except Exception as e:
            raise _gr_error(e) from None

    # REST: /create_from_face_params
    def create_from_face_params(request_json: str) -> str:
        """Submit a `face` job (engine parameters -> avatar). Input: ONE JSON object string with
        "continuous" (slider -> [0, 1]) and/or "discrete" (slot -> option), optionally "source_job" (a
        photo or face job whose params.json the values go on top of) and "preset", e.g.
        '{"source_job": "<id>", "discrete": {"beard": "full"}}'. Returns the job id."""
        from web.face_edit import parse_face_request

        try:
            inputs, config = parse_face_request(request_json, holder.get())
            return holder.get().submit("face", inputs, config)
        except Exception as e:
            raise _gr_error(e) from None

    # REST: /job_status
    def job_status(job_id: str, request: gr.Request) -> dict:
        """Status of a job: state (PENDING/STARTED/PROGRESS/SUCCESS/FAILURE/REVOKED), stage, progress
        (0..1), message, error, and files (name -> download URL, when SUCCESS)."""
        try:
            return current_status(job_id, request)
        except Exception as e:
            raise _gr_error(e) from None

    # UI handlers
    def ui_create(motion: str, motion_text: str, preset: str, clip_seconds: float | None, clip_loop: str,
                  *values: float):
        from web.clip_controls import clip_request

        sliders = {}
        for spec, value in zip(slider_order, values):
            if value is not None and abs(float(value) - spec.default) > 1e-6:
                sliders[spec.name] = float(value)
        try:
            name, preset = J.validate_motion(motion_text or motion), J.validate_preset(preset, presets)
            overrides = J.request_overrides("sliders", preset, clip_request(name, clip_seconds, clip_loop))
            req = J.SlidersRequest(J.validate_sliders(sliders, specs), name, preset, overrides)
            job_id = J.submit_sliders(holder.get(), req)
        except Exception as e:
            raise _gr_error(e) from None
        pending = {"job_id": job_id, "kind": "sliders", "state": "PENDING", "stage": "", "progress": 0.0,
                   "message": "submitted", "files": {}, "error": None, "created": ""}
        return job_id, J.status_html(pending), None, J.links_html(None), gr.Timer(active=True)

    def ui_poll(job_id: str, request: gr.Request):
        if not job_id:
            return gr.skip(), gr.skip(), gr.skip(), gr.Timer(active=False), gr.skip()
        try:
            pub = current_status(job_id, request)
        except UserInputError as e:  # e.g. an unknown job id: stop polling
            err = {"job_id": job_id, "kind": "", "state": "FAILURE", "stage": "", "progress": 0.0, "message": "",
                   "files": {}, "error": J.user_message(e), "created": ""}
            return J.status_html(err), gr.skip(), gr.skip(), gr.Timer(active=False), gr.skip()
        except Exception:  # a hiccup reading the status (database busy, ...): try again next tick
            log.warning("status of job %s unavailable", job_id, exc_info=True)
            return gr.skip(), gr.skip(), gr.skip(), gr.Timer(active=True), gr.skip()
        if pub["state"] not in J.TERMINAL_STATES:
            return J.status_html(pub), gr.skip(), gr.skip(), gr.Timer(active=True), gr.skip()
        glb = pub["files"].get("avatar.glb")
        return (J.status_html(pub), glb, J.links_html(pub), gr.Timer(active=False),
                J.history_rows(holder.get()))

    def ui_cancel(job_id: str):
        """The page's Cancel button: a queued job never runs, a running one stops at its next
        progress report; the poll that follows shows it cancelled."""
        if not job_id:
            return gr.skip()
        try:
            if not holder.get().cancel(J.check_job_id(job_id)):
                gr.Info("the job had already finished")
        except Exception as e:
            raise _gr_error(e) from None
        return gr.Timer(active=True)

    def ui_workers() -> str:
        """One line on the page: the workers' heartbeats (jobs wait when none is alive)."""
        try:
            store = getattr(holder.get(), "store", None)
            rows = store.workers() if store is not None else []
        except Exception:  # noqa: BLE001  (a busy store: the line says so, the page works on)
            return "Workers: unknown (the job store did not answer)"
        lost_after = float(getattr(settings, "worker_lost_after", 30.0))
        alive = [w for w in rows if w["state"] == "alive" and w["age"] < lost_after]
        if not alive:
            return "Workers: none alive; new jobs wait in the queue"
        return f"Workers: {len(alive)} alive (last heartbeat {min(w['age'] for w in alive):.0f} s ago)"

    def ui_history():
        try:
            return J.history_rows(holder.get())
        except Exception as e:
            raise _gr_error(e) from None

    def ui_open(evt: gr.SelectData, request: gr.Request):
        row = evt.row_value or []
        job_id = row[1] if len(row) > 1 else ""
        if not job_id:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return job_id, J.status_html({"job_id": job_id, "kind": "", "state": "PENDING", "stage": "", "progress": 0,
                                      "message": "loading", "files": {}, "error": None, "created": ""}), None, \
            J.links_html(None), gr.Timer(active=True)

    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        gr.Markdown(f"# {TITLE}\nRigged, animated GLB avatars. Jobs run on the worker; this page follows them.")
        job_state = gr.State("")
        timer = gr.Timer(POLL_SECONDS, active=False)
        with gr.Row(equal_height=False):
            with gr.Column(scale=5):
                with gr.Tabs() as tabs:
                    if "create" in kinds:  # one avatar from everything: photo, body and look words, motion
                        with gr.Tab("Create", id="create"):
                            _create_tab(holder, job_state, timer, settings, demo)
                    with gr.Tab("Create from sliders", id="sliders"):
                        ui_inputs = _sliders_tab(phenotype, local_groups, presets, slider_order)
                        create_btn = gr.Button("Create", variant="primary", elem_id="create-btn")
                    if "text" in kinds:  # appears once the worker side registers the kind
                        with gr.Tab("From text", id="text"):
                            _text_tab(holder, job_state, timer)
                    photo_panel = None
                    if "photo" in kinds:
                        with gr.Tab("From photo", id="photo"):
                            photo_panel = _photo_tab(holder, job_state, timer, settings,
                                                     photo_submitter(holder, settings, demo), face_spec)
                            edit_photo_btn = gr.Button("Edit this result", elem_id="photo-edit-btn",
                                                       visible=face_spec is not None)
                    if face_spec is not None:
                        with gr.Tab("Edit photo result", id="face-edit"):
                            from web.face_edit import face_edit_tab

                            _, open_face_job, open_outputs = face_edit_tab(holder, job_state, timer, face_spec,
                                                                           _gr_error)
                        if "photo" in kinds:  # the photo tab's button opens the shown job here
                            edit_photo_btn.click(lambda: gr.Tabs(selected="face-edit"), outputs=[tabs],
                                                 api_visibility="private").then(
                                open_face_job, inputs=[job_state, job_state], outputs=open_outputs,
                                api_visibility="private")
            with gr.Column(scale=6):
                status = gr.HTML(J.status_html(None), elem_id="job-status")
                cancel_btn = gr.Button("Cancel job", size="sm", variant="stop", elem_id="cancel-btn")
                model = UrlModel3D(label="Preview", clear_color=(0.93, 0.93, 0.93, 1.0), height=420,
                                   elem_id="preview-3d", interactive=False)
                links = gr.HTML(J.links_html(None), elem_id="job-links")
        with gr.Accordion("Job history (click a row to open that job)", open=True):
            history = gr.Dataframe(headers=J.HISTORY_HEADERS, value=None, interactive=False, wrap=True,
                                   elem_id="job-history", max_height=320)
            refresh_btn = gr.Button("Refresh", size="sm")
            workers_line = gr.Markdown("", elem_id="worker-status")

        create_btn.click(ui_create, inputs=ui_inputs, outputs=[job_state, status, model, links, timer],
                         api_visibility="private", concurrency_limit=None)
        timer.tick(ui_poll, inputs=[job_state], outputs=[status, model, links, timer, history],
                   api_visibility="private", concurrency_limit=None, show_progress="hidden")
        refresh_btn.click(ui_history, outputs=[history], api_visibility="private", concurrency_limit=None)
        cancel_btn.click(ui_cancel, inputs=[job_state], outputs=[timer], api_visibility="private",
                         concurrency_limit=None)
        history.select(ui_open, outputs=[job_state, status, model, links, timer], api_visibility="private")
        if photo_panel is not None:  # a finished photo job's attributes, editable (web/photo_attributes.py)
            load_attributes, panel_inputs, panel_outputs = photo_panel
            status.change(load_attributes, inputs=panel_inputs, outputs=panel_outputs, api_visibility="private",
                          concurrency_limit=None, show_progress="hidden")
        demo.load(ui_history, outputs=[history], api_visibility="private", concurrency_limit=None)
        for trigger in (demo.load, refresh_btn.click):
            trigger(ui_workers, outputs=[workers_line], api_visibility="private", concurrency_limit=None)

        if "photo" in kinds:  # REST /create_from_photos: one photo job per photo (web/photo_batch.py)
            from web.photo_batch import photo_batch_endpoint

            photo_batch_endpoint(photo_submitter(holder, settings, demo), _uploads_dir(settings))
        gr.api(create_from_sliders, api_name="create_from_sliders", concurrency_limit=None)
        if "text" in kinds:
            gr.api(create_from_text, api_name="create_from_text", concurrency_limit=None)
        if face_spec is not None:
            gr.api(create_from_face_params, api_name="create_from_face_params", concurrency_limit=None)
        gr.api(job_status, api_name="job_status", concurrency_limit=None)
    demo.queue(default_concurrency_limit=8)
    _strict_arguments(demo)
    return demo


def _sliders_tab(phenotype, local_groups, presets, slider_order) -> list:
    """The sliders tab's inputs: [motion, motion description, preset, clip length, loop, *sliders]
    (slider_order filled in the same order)."""
    from web.clip_controls import clip_controls

    with gr.Group():
        sliders = []
        for spec in phenotype:
            sliders.append(gr.Slider(spec.minimum, spec.maximum, value=spec.default, step=0.01,
                                     label=J.slider_label(spec), info=spec.description or None,
                                     elem_id=f"slider-{spec.name}"))
            slider_order.append(spec)
    with gr.Row():
        motion = gr.Radio(["none", *J.MOTIONS], value="walk", label="Motion", elem_id="motion")
        motion_text = gr.Textbox(label="...or describe a motion", placeholder="raise both arms", lines=1,
                                 elem_id="motion-text", info="generated by the motion model; replaces the choice")
        preset = gr.Dropdown(presets, value=J.DEFAULT_PRESET if J.DEFAULT_PRESET in presets else presets[0],
                             label="Preset", elem_id="preset")
    seconds, loop = clip_controls("motion")
    with gr.Accordion("Local changes (face and body parts)", open=False, elem_id="local-changes"):
        for region, groups in local_groups.items():
            with gr.Accordion(region, open=False):
                for group, specs in groups.items():
                    with gr.Accordion(f"{J.group_title(group)} ({len(specs)})", open=False):
                        for spec in specs:
                            sliders.append(gr.Slider(spec.minimum, spec.maximum, value=spec.default, step=0.01,
                                                     label=J.slider_label(spec), info=spec.name))
                            slider_order.append(spec)
    return [motion, motion_text, preset, seconds, loop, *sliders]


def _text_tab(holder, job_state, timer) -> None:
    """The `text` job kind (AvatarCLIP): shape and appearance prompts, a motion, a preset."""
    shape = gr.Textbox(label="Body shape", placeholder="a tall and fat man", lines=1, elem_id="text-shape")
    appearance = gr.Textbox(label="Appearance (sculpted with CLIP when the worker has CLIP weights)",
                            placeholder="Iron Man", lines=1, elem_id="text-appearance")
    from web.clip_controls import clip_controls, clip_request

    motion = gr.Dropdown(["", *J.MOTIONS], value="", label="Motion (a built-in one, or type a description)",
                         allow_custom_value=True, elem_id="text-motion")
    seconds, loop = clip_controls("text")
    preset = gr.Dropdown(J.preset_choices(), value=J.DEFAULT_PRESET, label="Preset")
    go = gr.Button("Create from text", variant="primary", elem_id="create-text-btn")

    def submit(shape_text: str, appearance_text: str, motion_name: str, preset_name: str,
               clip_seconds: float | None, clip_loop: str):
        try:
            request = J.parse_text_request(json.dumps({"shape": shape_text or "", "appearance": appearance_text or "",
                                                       "motion": motion_name or "", "preset": preset_name or "",
                                                       **clip_request(motion_name, clip_seconds, clip_loop)}))
            return holder.get().submit("text", request["inputs"], request["config"]), gr.Timer(active=True)
        except Exception as e:
            raise _gr_error(e) from None

    go.click(submit, inputs=[shape, appearance, motion, preset, seconds, loop], outputs=[job_state, timer],
             api_visibility="private")


def _create_tab(holder, job_state, timer, settings, demo) -> None:
    """The `create` kind's tab (web/create_tab.py); its button is REST /create_avatar (JSON + optional photo)."""
    from web.create_tab import create_submitter, create_tab

    photo = PhotoFile(label="Photo for the face (optional: PNG, JPEG or WebP)", type="filepath",
                      file_types=[".png", ".jpg", ".jpeg", ".webp"], elem_id="create-photo")
    photo.uploads_dir = _uploads_dir(settings)
    submit = create_submitter(holder, _uploads_dir(settings),
                              int(getattr(settings, "upload_max_bytes", UPLOAD_MAX_BYTES)), demo, _gr_error)
    create_tab(holder, job_state, timer, photo, submit)


def _photo_tab(holder, job_state, timer, settings, submit_photo, face_spec=None):
    """The `photo` job kind (Face-to-Parameter): a photo, a method and a preset. The same handler is
    the REST endpoint /create_from_photo (file + method + preset [+ fixed attributes JSON] -> job id).
    With the engine's spec, the panel of detected attributes (returns its load hook, else None)."""
    # gr.File, not gr.Image: the web process never decodes the upload (no pixel-flood risk here), and
    # the sniffing sees the bytes as sent, not Gradio's re-encoding
    photo = PhotoFile(label="Photo (PNG, JPEG or WebP)", type="filepath", file_types=[".png", ".jpg", ".jpeg", ".webp"],
                      elem_id="photo-file")
    photo.uploads_dir = _uploads_dir(settings)
    with gr.Row():
        method = gr.Dropdown(list(PHOTO_METHODS), value="auto", label="Method", elem_id="photo-method",
                             info="auto: iterative for frontal high-resolution faces, one-shot otherwise")
        preset = gr.Dropdown(J.preset_choices(), value=J.DEFAULT_PRESET, label="Preset")
    go = gr.Button("Create from photo", variant="primary", elem_id="create-photo-btn")
    job_id = gr.Textbox(visible=False)
    # REST's fourth argument; a new photo from the page starts with nothing fixed (the panel re-fits)
    attributes = gr.Textbox(value="", visible=False, label="Fixed attributes (JSON)")
    overrides = gr.Textbox(value="", visible=False, label="Config overrides (JSON)")  # REST's fifth argument
    go.click(submit_photo, inputs=[photo, method, preset, attributes, overrides], outputs=[job_id],
             api_name="create_from_photo",
             concurrency_limit=None).then(lambda j: (j, gr.Timer(active=True)), inputs=[job_id],
                                          outputs=[job_state, timer], api_visibility="private")
    if face_spec is None:
        return None
    from web.photo_attributes import attributes_panel

    return attributes_panel(holder, job_state, timer, face_spec, _uploads_dir(settings), _gr_error)


def _uploads_dir(settings) -> Path:
    return Path(getattr(settings, "data_dir", None) or "data") / "uploads"


def photo_submitter(holder, settings, blocks: gr.Blocks | None = None) -> Callable[..., str]:
    """Checks an upload (size cap, content sniffing, a cheap decode: web.uploads.store_upload), stores
    it content-addressed in the shared data folder's uploads/ and submits a `photo` job naming it. A
    refused upload is deleted from Gradio's temp folder at once (an accepted one stays there for a
    while, so that the page can submit it again with another method)."""
    from avatar_studio.kinds import photo_attributes
    from web.photo_attributes import parse_attributes
    from web.uploads import discard_received_upload, store_upload

    def submit_photo(path: str | None, method: str = "auto", preset: str = J.DEFAULT_PRESET,
                     attributes: str | None = "", config: str | None = "") -> str:
        try:
            if not path:
                raise UserInputError("upload a photo first")
            if method not in PHOTO_METHODS:
                raise UserInputError(f"unknown method {method!r} (choose from {', '.join(PHOTO_METHODS)})")
            preset = J.validate_preset(preset or J.DEFAULT_PRESET, J.preset_choices())
            # checked before the upload is stored (the job kind checks them again at submit)
            fixed = photo_attributes(parse_attributes(attributes))
            overrides = J.rest_overrides("photo", preset, J.json_object(config, '{"seed": 3}') if config else None)
            # Gradio rejects uploads over max_file_size already; this also covers files it did not check
            name = store_upload(path, _uploads_dir(settings), int(getattr(settings, "upload_max_bytes", UPLOAD_MAX_BYTES)))
            inputs = {"photo": name, "method": method, **({"attributes": fixed} if fixed else {})}
            return holder.get().submit("photo", inputs, {"preset": preset, "overrides": overrides})
        except Exception as e:
            discard_received_upload(path, blocks)
            raise _gr_error(e) from None

    return submit_photo


# ---- the server ---------------------------------------------------------------------------------

def download_route(resolver: Callable[[str, str], Path]):
    """GET /download/{job_id}/{name}: one file of one job folder, nothing else."""
    from fastapi import HTTPException
    from fastapi.responses import FileResponse

    def download(job_id: str, name: str):
        if not J.safe_download_name(job_id, name):
            raise HTTPException(404, "no such file")
        try:
            path = Path(resolver(job_id, name))
            ok = path.is_file()
        except Exception:  # traversal, unknown job, ...: the same answer, no details
            ok = False
        if not ok:
            raise HTTPException(404, "no such file")
        media = MEDIA_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media, filename=name,
                            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"})

    return download


def create_server_app(api: Any = None, settings: Any = None, file_resolver: Callable[[str, str], Path] | None = None,
                      public_url: str | None = None, blocks: gr.Blocks | None = None, retention: Any = None):
    """FastAPI app: the Gradio page at /, downloads at /download/{job_id}/{name}, the token gate.
    `retention`: a web.retention.RetentionRounds whose latest disk usage /healthz reports."""
    from fastapi import FastAPI

    settings = settings or load_settings()
    blocks = blocks or build_app(api, settings=settings, public_url=public_url)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.get(HEALTH_PATH)(health_route(settings, retention))
    app.get("/download/{job_id}/{name:path}")(download_route(file_resolver or default_file_resolver(settings)))
    max_bytes = int(getattr(settings, "upload_max_bytes", UPLOAD_MAX_BYTES))
    app = gr.mount_gradio_app(app, blocks, path="/", max_file_size=max_bytes, footer_links=["api"],
                              run_history=False, show_error=False, css=CSS, ssr_mode=False)
    # raw REST calls would leave ~1 MB of Gradio session state each behind (web/sessions.py)
    app.add_middleware(ReapRawSessions, blocks=blocks)
    # one photo per upload request, size-capped before Gradio writes it; unused uploads swept (web/uploads.py)
    app.add_middleware(UploadGate, max_bytes=max_bytes, blocks=blocks)
    token = getattr(settings, "api_token", None)
    if token:
        app.add_middleware(TokenGate, token=token)
    return app


def serve_app(api: Any, settings: Any, public_url: str | None = None, retention_interval: float | None = None):
    """What `avatar serve` serves: (the FastAPI app, its web.retention.RetentionRounds, not started;
    `retention_interval` overrides AVATAR_RETENTION_INTERVAL)."""
    from web.retention import RetentionRounds

    blocks = build_app(api, settings=settings, public_url=public_url)
    retention = RetentionRounds(api, settings, blocks, interval=retention_interval)
    app = create_server_app(api, settings=settings, public_url=public_url, blocks=blocks, retention=retention)
    return app, retention


@dataclass
class RunningServer:
    url: str
    server: Any
    thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def free_port(host: str = "127.0.0.1") -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def start_server(app, host: str = "127.0.0.1", port: int | None = None, timeout: float = 30.0) -> RunningServer:
    """Serve `app` with uvicorn in a background thread (tests, embedding); stop() ends it."""
    import uvicorn

    port = port or free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="avatar-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the web server did not start on {host}:{port}")
        time.sleep(0.05)
    return RunningServer(f"http://{host}:{port}", server, thread)


def launch(host: str = "127.0.0.1", port: int = 7860, start_worker: bool = True, api: Any = None,
           settings: Any = None, public_url: str | None = None, worker_concurrency: int = 1,
           access_log: bool = False) -> None:
    """Serve the studio until interrupted (Ctrl-C / SIGTERM). With start_worker, the embedded worker
    process (workers.embedded) runs beside the server and is stopped on exit; without it, a worker
    must be started separately on the same settings (broker, data folder)."""
    import uvicorn

    from web.uploads import human_size

    settings = settings or load_settings()
    token = getattr(settings, "api_token", None)
    if host not in ("127.0.0.1", "localhost", "::1") and not token:
        print(f"warning: serving on {host} without AVATAR_API_TOKEN: anyone who can reach this port can use it",
              flush=True)
    from web.retention import own_gradio_temp_dir

    # Gradio's temp files in the data folder, where the retention rounds may sweep them (read when
    # the Blocks are built); a GRADIO_TEMP_DIR set by the user is left alone and never swept
    if getattr(settings, "data_dir", None):
        os.environ.setdefault("GRADIO_TEMP_DIR", str(own_gradio_temp_dir(settings.data_dir)))
    from web.warmup import warming_app

    started: dict[str, Any] = {}

    def build():  # in the background: the page (a notice while it warms) answers from the first second
        app, started["retention"] = serve_app(api if api is not None else default_api(settings), settings, public_url)
        started["retention"].start()
        return app

    app = warming_app(build, HEALTH_PATH)
    supervisor = None
    if start_worker:  # restarted within seconds whenever it dies (workers.embedded.WorkerSupervisor)
        from workers.embedded import WorkerSupervisor

        supervisor = WorkerSupervisor(settings, concurrency=worker_concurrency).start()
    # uvicorn re-raises SIGTERM after its graceful shutdown; turn it into SystemExit so that the
    # `finally` below runs and the worker is stopped cleanly (SIGINT already raises KeyboardInterrupt)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _sigterm_to_exit)
    try:
        print(f"Avatar Studio on http://{host}:{port}/  (API token {'required' if token else 'off'}; "
              f"upload limit {human_size(int(getattr(settings, 'upload_max_bytes', 0)))})", flush=True)
        try:
            uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log, proxy_headers=False,
                        timeout_graceful_shutdown=3)
        except (KeyboardInterrupt, SystemExit):  # Ctrl-C / SIGTERM: a normal way to stop the server
            pass
    finally:
        if "retention" in started:
            started["retention"].stop()
        if supervisor is not None:
            print("stopping the embedded worker ...", flush=True)
            supervisor.stop()
            print("worker stopped", flush=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _sigterm_to_exit(signum, frame):
    raise SystemExit(128 + signum)
