"""Job kinds: what `JobAPI.submit(kind, inputs, config)` accepts and how a worker runs it.

A kind is registered once (`register_kind`) with
  * `validate(inputs, config) -> (inputs, config)`: cheap checks at the API boundary, in the web
    process: no torch, no body model. Raises UserInputError subclasses naming the bad field, and
    returns the normalised JSON-able inputs/config that are stored and sent to the worker;
  * `runner`: "module:function" run in the worker as `function(ctx: JobContext) -> Path`, writing
    one complete job folder at ctx.output_dir (atomically, replacing a crashed attempt's output);
  * `route(inputs, config) -> "cpu" | "gpu"`: which queue it goes to;
  * `preload`: modules a worker imports before forking its job processes (faster first job).

Kinds now: `sliders`, `text`, `photo`, `face`, `create` (public) and `selftest` (internal: queue round trips, benchmarks, fault tests;
not for users - the web app lists `public_kinds()`).

Slider validation (decision): submit() checks types only (names are strings, values finite numbers,
motion and preset known); slider NAMES and RANGES are checked by the worker, which owns the body
model, so a bad slider is a FAILURE with the body model's own message ("unknown slider 'hieght'; did
you mean height?"), never retried. Checking names in the web process would mean importing torch
and loading the body model there (~10 s and ~1 GB on first use) for a check the worker makes ~1 s
later anyway. The rest of the config is resolved here in full (preset section, then overrides:
unknown keys, types, Literal choices, devices; avatar_studio.config_schema, torch-free), and the
queue is chosen from that resolved config.
"""
from __future__ import annotations

import functools
import importlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from avatar_studio.config_schema import resolve_job_config
from avatar_studio.errors import InvalidJobInputError, UnknownJobKindError
from avatarclip_core.config.limits import JOB_ID_RE, MAX_PROMPT_CHARS, PHOTO_METHODS
from avatarclip_core.device import check_device
from avatarclip_core.errors import UserInputError
from avatarclip_core.user_text import check_number, check_text

MAX_INPUT_BYTES = 64 * 1024
_CONFIG_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass
class JobContext:
    """What a runner gets in the worker."""

    job_id: str
    kind: str
    inputs: dict
    config: dict
    output_dir: Path  # <data>/jobs/<job_id>; must appear only when complete (atomic_job_folder)
    progress: Callable[[str, float, str], None]  # raises JobCancelled once the job is cancelled
    attempt: int  # 1 for the first run; re-deliveries and retries count up
    data_dir: Path


@dataclass(frozen=True)
class JobKind:
    name: str
    description: str
    validate: Callable[[Any, Any], tuple[dict, dict]]
    runner: str  # "module:function"
    route: Callable[[dict, dict], str] = lambda inputs, config: "cpu"
    preload: tuple[str, ...] = ()
    public: bool = True
    extra: dict = field(default_factory=dict)

    def load_runner(self) -> Callable[[JobContext], Path]:
        module, _, attr = self.runner.partition(":")
        return getattr(importlib.import_module(module), attr)


_KINDS: dict[str, JobKind] = {}


def register_kind(kind: JobKind, replace: bool = False) -> JobKind:
    if kind.name in _KINDS and not replace:
        raise ValueError(f"job kind {kind.name!r} is already registered")
    _KINDS[kind.name] = kind
    return kind


def get_kind(name: object) -> JobKind:
    if not isinstance(name, str) or name not in _KINDS:
        raise UnknownJobKindError(
            f"unknown job kind {str(name)[:60]!r} (available: {', '.join(public_kinds()) or 'none'})")
    return _KINDS[name]


def all_kinds() -> list[str]:
    return sorted(_KINDS)


def public_kinds() -> list[str]:
    return sorted(k for k, v in _KINDS.items() if v.public)


# -- validation helpers ----------------------------------------------------------------------------
def _mapping(value: Any, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidJobInputError(f"{what} must be a mapping (JSON object), got {type(value).__name__}")
    bad = [k for k in value if not isinstance(k, str)]
    if bad:
        raise InvalidJobInputError(f"{what} keys must be strings, got {bad[0]!r}")
    return dict(value)


def _only_keys(value: dict, allowed: tuple[str, ...], what: str) -> None:
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise InvalidJobInputError(f"unknown {what} field '{unknown[0]}' (expected: {', '.join(allowed)})")


def _number(value: Any, what: str) -> float:
    """A JSON number (user_text.check_number, as the REST endpoints check it): "0.5" is refused, not coerced."""
    try:
        return check_number(value, what)
    except UserInputError as exc:
        raise InvalidJobInputError(str(exc)) from None


def _size_check(inputs: dict, config: dict) -> None:
    size = len(json.dumps(inputs)) + len(json.dumps(config))
    if size > MAX_INPUT_BYTES:
        raise InvalidJobInputError(f"job inputs are too large ({size} bytes; at most {MAX_INPUT_BYTES})")


def _overrides(value: Any) -> dict:
    overrides = _mapping(value, "config.overrides")
    for key, val in overrides.items():
        if not _CONFIG_KEY_RE.match(key):
            raise InvalidJobInputError(f"config override key {key!r} must be a dotted name like 'motion.fps'")
        scalars = (str, int, float, bool, type(None))
        if not (isinstance(val, scalars) or (isinstance(val, list) and all(isinstance(v, scalars) for v in val))):
            raise InvalidJobInputError(f"config override {key!r} needs a number, text or true/false, got {val!r}")
        if isinstance(val, float) and not math.isfinite(val):
            raise InvalidJobInputError(f"config override {key!r} needs a finite number, got {val!r}")
    return overrides


def _preset(value: Any) -> str:
    from avatarclip_core.config import preset_names

    if not isinstance(value, str) or value not in preset_names():
        raise InvalidJobInputError(f"unknown preset {value!r} (available: {', '.join(preset_names())})")
    return value


def _preset_config(config: Any, what: str) -> dict:
    """{"preset", "overrides"}: the config of the kinds that run a configs/ preset."""
    config = _mapping(config, "config")
    _only_keys(config, ("preset", "overrides"), f"{what} config")
    config_out = {"preset": _preset(config.get("preset") or "preview"), "overrides": _overrides(config.get("overrides"))}
    resolved_devices(what, config_out)  # the whole config resolves (a bad key or device fails here, not in the worker)
    return config_out


# the device fields of each kind's job config, and the configs/<preset>.yaml section it reads
_DEVICE_KEYS = {"sliders": ("body.device", "motion_gen.device"),
                "text": ("body.device", "clip.device", "neus.device", "motion_gen.device"),
                "photo": ("device", "engine.device"), "face": ("device", "engine.device"),
                "create": ("device", "engine.device", "motion_gen.device")}
_SECTIONS = {"sliders": "sliders", "text": "text", "photo": "photo", "face": "photo", "create": "create"}


def resolve_config(kind: str, config: dict) -> Any:
    """The whole config the worker will run (preset section, then overrides), checked here at submit
    without torch: unknown keys, types, Literal choices (config_schema); InvalidJobInputError names the key."""
    try:
        return resolve_job_config(_SECTIONS[kind], config.get("preset") or "preview", config.get("overrides") or {})
    except UserInputError as exc:
        raise InvalidJobInputError(f"config: {exc}") from None


def resolved_devices(kind: str, config: dict) -> dict[str, str]:
    """Every device field of the resolved config (checked: auto | cpu | cuda | cuda:N)."""
    resolved = resolve_config(kind, config)
    devices = {}
    for key in _DEVICE_KEYS[kind]:
        value = functools.reduce(getattr, key.split("."), resolved)
        try:
            devices[key] = check_device(value, key)
        except UserInputError as exc:
            raise InvalidJobInputError(f"config: {exc}") from None
    return devices


def device_route(kind: str) -> Callable[[dict, dict], str]:
    """The queue of a kind's jobs: 'gpu' when the RESOLVED config (preset, then overrides) asks for
    CUDA anywhere, else 'cpu'. `auto` runs where it lands: on CUDA when that worker has it."""
    def route(inputs: dict, config: dict) -> str:
        return "gpu" if any(d.startswith("cuda") for d in resolved_devices(kind, config).values()) else "cpu"

    return route


def app_kind(name: str, description: str, validate: Callable[[Any, Any], tuple[dict, dict]],
             preload: tuple[str, ...]) -> JobKind:
    """Register a public kind of this package: its runner is avatar_studio.jobs:run_<name> and its queue
    follows its resolved config's devices (device_route)."""
    return register_kind(JobKind(name, description, validate, f"avatar_studio.jobs:run_{name}",
                                 device_route(name), preload))


def _prompt(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidJobInputError(f"{what} must be text, got {type(value).__name__}")
    try:  # lone surrogates and control characters (C0, DEL, C1) fail here, not in the worker's tokenizer
        return check_text(value.strip(), what, MAX_PROMPT_CHARS)
    except UserInputError as exc:
        raise InvalidJobInputError(str(exc)) from None


def _motion(value: Any) -> str:
    """A built-in motion name, a motion description (generated by the worker) or '' for none."""
    return _prompt(value, "the motion")


# -- sliders -----------------------------------------------------------------------------------
def validate_sliders(inputs: Any, config: Any) -> tuple[dict, dict]:
    inputs = _mapping(inputs, "inputs")
    _only_keys(inputs, ("sliders", "motion"), "sliders input")
    sliders_in = _mapping(inputs.get("sliders"), "inputs.sliders")
    if len(sliders_in) > 1000:
        raise InvalidJobInputError(f"too many sliders ({len(sliders_in)})")
    sliders: dict[str, float] = {}
    for name, value in sliders_in.items():
        if not name or len(name) > 100:
            raise InvalidJobInputError(f"invalid slider name {name[:100]!r}")
        sliders[name] = _number(value, f"slider '{name}'")
    motion = _motion(inputs.get("motion"))

    config = _mapping(config, "config")
    _only_keys(config, ("preset", "overrides"), "sliders config")
    preset = _preset(config.get("preset") or "preview")
    overrides = _overrides(config.get("overrides"))
    if motion and overrides.get("motion.name") not in (None, motion):
        raise InvalidJobInputError(
            f"inputs.motion {motion!r} and config override motion.name {overrides['motion.name']!r} disagree")
    inputs_out = {"sliders": sliders, "motion": motion}
    config_out = {"preset": preset, "overrides": overrides}
    resolved_devices("sliders", config_out)
    _size_check(inputs_out, config_out)
    return inputs_out, config_out


app_kind("sliders", "rigged avatar from named body sliders, optionally with a built-in motion", validate_sliders,
         ("avatar_studio.pipelines.sliders", "avatarclip_core.export.gltf", "avatarclip_core.motion.procedural",
          "avatarclip_core.render.preview"))


# -- text (AvatarCLIP) ---------------------------------------------------------------------------
def validate_text(inputs: Any, config: Any) -> tuple[dict, dict]:
    inputs = _mapping(inputs, "inputs")
    _only_keys(inputs, ("shape", "appearance", "motion"), "text input")
    shape = _prompt(inputs.get("shape"), "the shape prompt")
    appearance = _prompt(inputs.get("appearance"), "the appearance prompt")
    motion = _motion(inputs.get("motion"))
    if not shape and not appearance and not motion:
        raise InvalidJobInputError("give a shape prompt, an appearance prompt, a motion or any of them together")
    config_out = _preset_config(config, "text")
    inputs_out = {"shape": shape, "appearance": appearance, "motion": motion}
    _size_check(inputs_out, config_out)
    return inputs_out, config_out


app_kind("text", "avatar from text (AvatarCLIP): shape and appearance prompts, optionally a built-in motion",
         validate_text, ("avatar_studio.pipelines.text",))


# -- photo (Face-to-Parameter) ----------------------------------------------------------------------
# the name web.uploads.store_upload gives a stored photo (no path: the worker joins it to its uploads dir)
_UPLOAD_NAME_RE = re.compile(r"^[0-9a-f]{32}\.(png|jpeg|webp)$")


def photo_attributes(value: Any, overrides: dict | None = None) -> dict[str, str]:
    """inputs.attributes of a photo job: what the user fixed of the detected attributes or the engine's
    slots, e.g. {"gender": "female", "hair_style": "long"} (fit(fixed=...) wins over detection). Checked
    here against the attribute vocabulary and the bundled engine's slots (torch-free: spec_cache); with
    engine_kind=external the slot names and options are that engine's, checked by the worker."""
    from face2param.faces.attribute_values import ATTRIBUTE_VALUES, fixed_slot_options, validate_fixed

    fixed = _mapping(value, "inputs.attributes")
    if not fixed:
        return {}
    try:
        if (overrides or {}).get("engine_kind", "anny") == "anny":
            from face2param.spec_cache import default_engine_spec

            slots = fixed_slot_options(default_engine_spec())
        else:  # another engine's slots: any option name here, the worker checks it against that engine
            slots = {k: [v] for k, v in fixed.items() if k not in ATTRIBUTE_VALUES and isinstance(v, str)}
        return validate_fixed(fixed, slots)
    except UserInputError as exc:
        raise InvalidJobInputError(f"inputs.attributes: {exc}") from None


def validate_photo(inputs: Any, config: Any) -> tuple[dict, dict]:
    inputs = _mapping(inputs, "inputs")
    _only_keys(inputs, ("photo", "method", "attributes"), "photo input")
    photo = inputs.get("photo")
    if not isinstance(photo, str) or not _UPLOAD_NAME_RE.match(photo):
        raise InvalidJobInputError("inputs.photo must name a stored upload (as returned by the web app's upload)")
    method = inputs.get("method") or "auto"
    if method not in PHOTO_METHODS:
        raise InvalidJobInputError(f"unknown method {method!r} (choose from {', '.join(PHOTO_METHODS)})")
    config_out = _preset_config(config, "photo")
    inputs_out = {"photo": photo, "method": method}
    attributes = photo_attributes(inputs.get("attributes"), config_out["overrides"])
    if attributes:  # absent when none are fixed: earlier jobs' stored inputs look the same
        inputs_out["attributes"] = attributes
    _size_check(inputs_out, config_out)
    return inputs_out, config_out


app_kind("photo", "game-engine parameters and a rigged avatar from a face photo (Face-to-Parameter)",
         validate_photo, ("avatar_studio.pipelines.photo",))


# -- create (one avatar from everything: photo face + body words + look words + motion) -----------
def validate_create(inputs: Any, config: Any) -> tuple[dict, dict]:
    inputs = _mapping(inputs, "inputs")
    _only_keys(inputs, ("photo", "body", "look", "motion"), "create input")
    photo = inputs.get("photo")
    if photo is not None and (not isinstance(photo, str) or not _UPLOAD_NAME_RE.match(photo)):
        raise InvalidJobInputError("inputs.photo must name a stored upload (as returned by the web app's upload)")
    body, look = _prompt(inputs.get("body"), "the body description"), _prompt(inputs.get("look"), "the look description")
    motion = _motion(inputs.get("motion"))
    if not (photo or body or look or motion):
        raise InvalidJobInputError("give a photo, a body description, a look description or a motion")
    config_out = _preset_config(config, "create")
    inputs_out = {"photo": photo, "body": body, "look": look, "motion": motion}
    _size_check(inputs_out, config_out)
    return inputs_out, config_out


app_kind("create", "one avatar from everything: a photo's face, body and look words (outfit), a motion",
         validate_create, ("avatar_studio.pipelines.create",))


# -- face (engine parameters, e.g. an edited photo result) -----------------------------------------
# A kind of its own rather than a `params` input of `photo`: no upload, no method, no fitting; the
# history says what happened; and game integrations can submit parameters they stored themselves.
def validate_face(inputs: Any, config: Any) -> tuple[dict, dict]:
    """inputs: {"params": {"continuous": {name: [0, 1]}, "discrete": {slot: option}}, "source_job": id or ""};
    checked against the bundled face engine's spec (unnamed entries take its defaults) and stored in full;
    with the override engine_kind=external the worker checks them against that engine's spec."""
    from face2param.engines.base import EngineParams
    from face2param.spec_cache import default_engine_spec

    inputs = _mapping(inputs, "inputs")
    _only_keys(inputs, ("params", "source_job"), "face input")
    if "params" not in inputs:
        raise InvalidJobInputError('inputs.params is missing: {"continuous": {...}, "discrete": {...}}')
    params = _mapping(inputs["params"], "inputs.params")
    source_job = inputs.get("source_job") or ""
    if source_job and not (isinstance(source_job, str) and JOB_ID_RE.match(source_job)):
        raise InvalidJobInputError(f"inputs.source_job {str(source_job)[:60]!r} is not a job id")
    config_out = _preset_config(config, "face")
    try:
        given = EngineParams.from_json(params)
        for name, value in given.continuous.items():  # JSON numbers only: "0.5" is refused, not coerced
            _number(value, f"inputs.params: parameter {name!r}")
        # another engine (engine_kind=external): its spec is the worker's to check, against that engine
        bundled = config_out["overrides"].get("engine_kind", "anny") == "anny"
        full = given.validated(default_engine_spec()) if bundled else given
    except UserInputError as exc:
        raise InvalidJobInputError(f"inputs.params: {exc}") from None
    inputs_out = {"params": full.to_json(), "source_job": source_job}
    _size_check(inputs_out, config_out)
    return inputs_out, config_out


app_kind("face", "a rigged avatar from face-engine parameters (an edited photo result, or a game's stored ones)",
         validate_face, ("avatar_studio.pipelines.photo",))


# -- selftest (internal) -----------------------------------------------------------------------
SELFTEST_FAILURES = ("", "user", "transient", "bug", "crash", "hang")  # hang: sleeps through the soft time limit


def validate_selftest(inputs: Any, config: Any) -> tuple[dict, dict]:
    inputs = _mapping(inputs, "inputs")
    _only_keys(inputs, ("sleep", "fail", "fail_attempts"), "selftest input")
    sleep = _number(inputs.get("sleep", 0.0), "sleep")
    if not 0 <= sleep <= 60:
        raise InvalidJobInputError(f"sleep must be within [0, 60] seconds, got {sleep:g}")
    fail = inputs.get("fail") or ""
    if fail not in SELFTEST_FAILURES:
        raise InvalidJobInputError(f"fail must be one of {', '.join(map(repr, SELFTEST_FAILURES))}, got {fail!r}")
    fail_attempts = inputs.get("fail_attempts", 1)
    if isinstance(fail_attempts, bool) or not isinstance(fail_attempts, int) or not 0 <= fail_attempts <= 10:
        raise InvalidJobInputError(f"fail_attempts must be a whole number in [0, 10], got {fail_attempts!r}")
    config = _mapping(config, "config")
    _only_keys(config, ("queue",), "selftest config")
    queue = config.get("queue", "cpu")
    if queue not in ("cpu", "gpu"):
        raise InvalidJobInputError(f"queue must be 'cpu' or 'gpu', got {queue!r}")
    return {"sleep": sleep, "fail": fail, "fail_attempts": fail_attempts}, {"queue": queue}


register_kind(JobKind(
    name="selftest",
    description="internal: sleeps, reports progress, optionally fails; writes result.json",
    validate=validate_selftest,
    runner="avatar_studio.jobs:run_selftest",
    route=lambda inputs, config: config.get("queue", "cpu"),
    public=False,
))
