"""What the web app does with jobs, without any Gradio: parse requests, call the job API, describe
status for people and for REST clients.

The web process never runs a pipeline: it only calls the job API (workers.api.JobAPI: submit,
status, list, result files). Body-slider metadata (names, ranges, groups) comes from the body
model's `sliders()`, loaded once per process.
"""
from __future__ import annotations

import difflib
import functools
import html
import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol
from urllib.parse import quote

from avatarclip_core.config.limits import BUILTIN_MOTIONS, JOB_ID_RE, MAX_PROMPT_CHARS
from avatarclip_core.errors import UserInputError
from avatarclip_core.user_text import check_number, check_text

MOTIONS = BUILTIN_MOTIONS  # built-in procedural motions ("" = none)
DEFAULT_PRESET = "preview"
RESERVED_KEYS = ("sliders", "motion", "preset", "formats", "profile", "seconds", "loop", "config")
MAX_REQUEST_CHARS = 64 * 1024
TERMINAL_STATES = ("SUCCESS", "FAILURE", "REVOKED")
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
FILE_ORDER = ("avatar.glb", "avatar.vrm", "avatar.fbx", "motion.vrma", "motion.bvh", "params.json", "motion.npz",
              "preview.png", "provenance.json")

PHENOTYPE_LABELS = {
    "gender": "Gender (male to female)",
    "age": "Age",
    "muscle": "Muscle",
    "weight": "Weight",
    "height": "Height",
    "proportions": "Proportions",
}

# Body-part groups of the local-change sliders, gathered into regions for the page.
REGIONS: dict[str, tuple[str, ...]] = {
    "Head and face": ("head", "forehead", "eyebrows", "eye", "ear", "nose", "cheek", "mouth", "chin", "neck"),
    "Torso": ("torso", "shoulder", "frontchest", "breast", "bust", "underbust", "nipple", "stomach", "waist",
              "napetowaist", "waisttohip", "hip", "hips", "pelvis", "buttocks", "bulge"),
    "Arms and hands": ("upperarm", "lowerarm", "wrist", "hand"),
    "Legs and feet": ("upperleg", "upperlegs", "thigh", "leg", "knee", "lowerleg", "lowerlegs", "calf", "ankle",
                      "foot"),
}


class JobAPILike(Protocol):  # workers.api.JobAPI, or a stand-in in tests
    def submit(self, kind: str, inputs: dict, config: dict | None = None) -> str: ...
    def status(self, job_id: str) -> Any: ...
    def list(self, limit: int = 50) -> list: ...


@dataclass(frozen=True)
class SliderInfo:
    name: str
    minimum: float
    maximum: float
    default: float
    group: str
    description: str = ""


_SPECS_SCRIPT = (
    "import json\n"
    "from avatarclip_core.body import create_body_model\n"
    "from avatarclip_core.child_json import MARKER\n"
    "rows = [[s.name, float(s.minimum), float(s.maximum), float(s.default), s.group,"
    " getattr(s, 'description', '') or ''] for s in create_body_model().sliders()]\n"
    "print(MARKER + json.dumps(rows))\n"
)


@functools.lru_cache(maxsize=1)
def body_slider_specs() -> tuple[SliderInfo, ...]:
    """The default body model's sliders (metadata only).

    Read once in a short-lived child process and cached as JSON in the data folder
    (cache/web/sliders-<key>.json): loading the body model here would cost the web process ~1 GB
    of memory and several seconds for 262 names and ranges.
    """
    from avatarclip_core.child_json import ROOT, cached_child_json, source_key
    from avatarclip_core.paths import cache_dir

    key = source_key([ROOT / "avatarclip_core" / "body"], ["anny"])
    rows = cached_child_json(cache_dir("web") / f"sliders-{key}.json", _SPECS_SCRIPT, "the body model's sliders")
    return tuple(SliderInfo(str(r[0]), float(r[1]), float(r[2]), float(r[3]), str(r[4]), str(r[5])) for r in rows)


def preset_choices() -> list[str]:
    try:
        from avatarclip_core.config.core import preset_names

        names = list(preset_names())
    except Exception:  # configs/ missing in an odd deployment: the default still works
        names = []
    return names or [DEFAULT_PRESET]


def job_kinds(api: Any = None) -> set[str]:
    """Public job kinds: avatar_studio.kinds.public_kinds(), else `api.kinds` / workers.api.JOB_KINDS, else sliders."""
    try:
        from avatar_studio.kinds import public_kinds

        kinds = public_kinds()
        if kinds:
            return set(kinds)
    except Exception:
        pass
    for source in (api, None):
        if source is None:
            try:
                import workers.api as source  # noqa: PLW2901
            except Exception:
                continue
        for attr in ("kinds", "JOB_KINDS"):
            kinds = getattr(source, attr, None)
            if callable(kinds):
                kinds = kinds()
            if kinds:
                return {str(k) for k in kinds}
    return {"sliders"}


def slider_label(spec: SliderInfo) -> str:
    """'Left lower arm: scale depth' for 'l-lowerarm-scale-depth-incr'."""
    if spec.name in PHENOTYPE_LABELS:
        return PHENOTYPE_LABELS[spec.name]
    words = spec.name.split("-")
    side = ""
    if words[0] in ("l", "r"):
        side = "Left " if words[0] == "l" else "Right "
        words = words[1:]
    if words and words[0] == "measure":
        words = words[1:]
    if words and words[0] == spec.group:
        words = words[1:]
    if len(words) > 1 and words[-1] == "incr":
        words = words[:-1]
    part = group_title(spec.group).lower()
    what = " ".join(words) or "size"
    label = f"{side}{part}: {what}"
    return label[0].upper() + label[1:]


def group_title(group: str) -> str:
    """'lowerarm' -> 'Lower arm'."""
    words = {"upperarm": "upper arm", "lowerarm": "lower arm", "upperleg": "upper leg", "lowerleg": "lower leg",
             "upperlegs": "upper legs", "lowerlegs": "lower legs", "frontchest": "front chest",
             "underbust": "under bust", "napetowaist": "nape to waist", "waisttohip": "waist to hip"}
    text = words.get(group, group)
    return text[:1].upper() + text[1:]


def group_local_sliders(specs: Iterable[SliderInfo]) -> dict[str, dict[str, list[SliderInfo]]]:
    """region -> body-part group -> sliders, regions and groups in head-to-toe order; unknown groups in 'Other'."""
    order = {g: (r, i) for r, groups in REGIONS.items() for i, g in enumerate(groups)}
    out: dict[str, dict[str, list[SliderInfo]]] = {r: {} for r in REGIONS}
    for spec in specs:
        if spec.group == "phenotype":
            continue
        region = order.get(spec.group, ("Other", 0))[0]
        out.setdefault(region, {}).setdefault(spec.group, []).append(spec)
    for region, groups in out.items():
        out[region] = dict(sorted(groups.items(), key=lambda kv: (order.get(kv[0], ("", 99))[1], kv[0])))
    return {r: g for r, g in out.items() if g}


@dataclass
class SlidersRequest:
    sliders: dict[str, float] = field(default_factory=dict)
    motion: str = ""
    preset: str = DEFAULT_PRESET
    overrides: dict[str, Any] = field(default_factory=dict)  # REST's allowed keys (request_overrides)

    def submit_args(self) -> tuple[str, dict, dict]:
        return ("sliders", {"sliders": dict(self.sliders), "motion": self.motion},
                {"preset": self.preset, "overrides": dict(self.overrides)})


def _close(name: str, names: Iterable[str]) -> str:
    match = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


MOTION_MAX_CHARS = MAX_PROMPT_CHARS


def validate_motion(motion: Any) -> str:
    """A built-in motion (MOTIONS), a description the worker generates a motion from, or '' for none."""
    if motion is None or motion == "" or motion == "none":
        return ""
    if not isinstance(motion, str):
        raise UserInputError(f"motion must be text: one of {', '.join(MOTIONS)} or a description, got {json.dumps(motion)}")
    motion = check_text(" ".join(motion.split()), "the motion description", MOTION_MAX_CHARS)
    if motion.lower() in MOTIONS:
        return motion.lower()
    # one word close to a built-in name is a typo, not a description to generate a motion from
    typo = difflib.get_close_matches(motion.lower(), MOTIONS, n=1, cutoff=0.7) if " " not in motion else []
    if typo:
        raise UserInputError(f"unknown motion {json.dumps(motion)} (did you mean '{typo[0]}'? built-in: "
                             f"{', '.join(MOTIONS)}; or describe a motion in a few words)")
    return motion


def rest_overrides(kind: str, preset: str, overrides: Any) -> dict:
    """A REST request's "config" object: only the keys REST callers may set for this kind of job
    (avatar_studio.config_schema.REST_OVERRIDES), each checked like any override and within its
    REST bounds, before anything is stored."""
    from avatar_studio.config_schema import check_rest_overrides

    return check_rest_overrides(kind, preset, overrides)


def validate_preset(preset: Any, presets: Iterable[str]) -> str:
    presets = list(presets)
    if preset is None or preset == "":
        return DEFAULT_PRESET
    if not isinstance(preset, str) or preset not in presets:
        raise UserInputError(f"unknown preset {json.dumps(preset)}: use one of {', '.join(presets)}")
    return preset


def validate_sliders(values: Any, specs: Iterable[SliderInfo]) -> dict[str, float]:
    """Names and ranges checked against the body model; one clear message per problem."""
    if not isinstance(values, dict):
        raise UserInputError("'sliders' must be a JSON object of slider name -> number")
    by_name = {s.name: s for s in specs}
    out: dict[str, float] = {}
    for name, value in values.items():
        spec = by_name.get(name)
        if spec is None:
            raise UserInputError(
                f"unknown slider '{name}'{_close(name, by_name)}; `avatar sliders` lists the {len(by_name)} names")
        value = as_number(value, f"slider '{name}'")
        if not spec.minimum <= value <= spec.maximum:
            raise UserInputError(
                f"slider '{name}' = {value:g} is out of range [{spec.minimum:g}, {spec.maximum:g}]")
        out[name] = float(value)
    return out


as_number = check_number  # the one JSON-number check (avatarclip_core.user_text), as the job kinds use it


MAX_JSON_DEPTH = 16  # REST objects are at most 3 levels deep; the job store and broker re-encode them


def _too_deep(data: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    stack = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return False


def json_object(text: Any, example: str) -> dict:
    """ONE JSON object string (a REST input) -> dict, with a specific error for each way it is not one."""
    if not isinstance(text, str) or not text.strip():
        raise UserInputError(f"expected one JSON object string, e.g. {example}")
    if len(text) > MAX_REQUEST_CHARS:
        raise UserInputError(f"request too long ({len(text)} characters; the limit is {MAX_REQUEST_CHARS})")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserInputError(f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise UserInputError(f"the JSON is nested too deeply (at most {MAX_JSON_DEPTH} levels)") from None
    except ValueError:  # Python's guard against quadratic int parsing (sys.get_int_max_str_digits)
        raise UserInputError(f"a number in the JSON has more than {sys.get_int_max_str_digits()} digits") from None
    if not isinstance(data, dict):
        raise UserInputError(f"expected a JSON object, e.g. {example}")
    if _too_deep(data):
        raise UserInputError(f"the JSON is nested too deeply (at most {MAX_JSON_DEPTH} levels)")
    return data


def export_overrides(data: dict) -> dict[str, str]:
    """The optional REST keys "formats" (["glb", "vrm"] or "glb,vrm") and "profile" ("unity", ...) as
    config overrides (popped from `data`); the job kind checks them again at submit."""
    from avatarclip_core.export.profiles import FILE_FORMATS, PROFILES  # torch-free

    overrides: dict[str, str] = {}
    formats = data.pop("formats", None)
    if formats not in (None, "", []):
        items = formats.split(",") if isinstance(formats, str) else formats
        if not isinstance(items, list) or not all(isinstance(f, str) for f in items):
            raise UserInputError(f'"formats" must be a list of names from {", ".join(FILE_FORMATS)}, e.g. ["glb", "vrm"]')
        names = [f.strip().lower() for f in items if f.strip()]
        unknown = [f for f in names if f not in FILE_FORMATS + ("auto",)]
        if unknown:
            raise UserInputError(f"unknown format {json.dumps(unknown[0])}: use {', '.join(FILE_FORMATS)} or auto")
        overrides["export.formats"] = ",".join(names)
    profile = data.pop("profile", None)
    if profile not in (None, ""):
        if profile not in PROFILES:
            raise UserInputError(f"unknown profile {json.dumps(profile)}: use one of {', '.join(PROFILES)}")
        overrides["export.profile"] = profile
    return overrides


def clip_overrides(data: dict) -> dict[str, Any]:
    """The optional REST keys "seconds" (the motion clip's length, a JSON number; 0 = as made) and "loop"
    (auto, on, off) as the config overrides motion.seconds and motion.loop (popped from `data`), as the
    page's clip controls send them; their range and choices are the config's own (MotionConfig: checked
    by rest_overrides like any override)."""
    overrides: dict[str, Any] = {}
    seconds = data.pop("seconds", None)
    if seconds is not None:
        overrides["motion.seconds"] = as_number(seconds, '"seconds"')
    loop = data.pop("loop", None)
    if loop not in (None, ""):
        overrides["motion.loop"] = loop
    return overrides


def request_overrides(kind: str, preset: str, data: dict) -> dict:
    """A REST request's config overrides (popped from `data`): its "config" object plus "formats" and
    "profile" (export_overrides), "seconds" and "loop" (clip_overrides), checked against REST's
    allow-list (rest_overrides). {} when none."""
    config = data.pop("config", None)
    export = {**export_overrides(data), **clip_overrides(data)}
    if config is None and not export:
        return {}
    if isinstance(config, dict):
        twice = sorted(set(config) & set(export))
        if twice:
            raise UserInputError(f'{twice[0]} is given twice ("config" and "{twice[0].split(".")[-1]}"): give it once')
        config = {**config, **export}
    return rest_overrides(kind, preset, export if config is None else config)


def parse_sliders_request(text: Any, specs: Iterable[SliderInfo], presets: Iterable[str]) -> SlidersRequest:
    """The REST input: ONE JSON object string.

    Either flat, slider names plus the optional keys "motion", "preset", "formats", "profile", "seconds",
    "loop" and "config" (the overrides REST may set, request_overrides):
        {"height": 0.9, "weight": 0.3, "motion": "walk", "preset": "preview", "formats": ["glb", "vrm"],
         "seconds": 4, "loop": "on", "config": {"motion.fps": 24}}
    or nested: {"sliders": {"height": 0.9}, "motion": "walk"}.
    """
    data = dict(text if isinstance(text, dict) else json_object(text, '{"height": 0.9, "motion": "walk"}'))
    motion = validate_motion(data.pop("motion", ""))
    preset = validate_preset(data.pop("preset", None), presets)
    overrides = request_overrides("sliders", preset, data)
    if "sliders" in data:
        nested = data.pop("sliders")
        if data:
            raise UserInputError(f"with a 'sliders' object, put every slider inside it (found {', '.join(data)})")
        data = nested
    return SlidersRequest(validate_sliders(data, specs), motion, preset, overrides)


TEXT_KEYS = ("shape", "appearance", "motion", "preset", "formats", "profile", "seconds", "loop", "config")


def parse_text_request(text: Any) -> dict:
    """/create_from_text's JSON: {"shape", "appearance", "motion", "preset", "formats", "profile", "seconds",
    "loop", "config"}
    -> submit() arguments.
    Prompts are checked again (lengths, control characters) by the job kind at submit()."""
    data = json_object(text, '{"shape": "a tall and fat man", "motion": "walk"}')
    unknown = sorted(set(data) - set(TEXT_KEYS))
    if unknown:
        raise UserInputError(f"unknown field {json.dumps(unknown[0])}: use {', '.join(TEXT_KEYS)}")
    for key in ("shape", "appearance"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise UserInputError(f"{json.dumps(key)} must be text")
        check_text(data.get(key) or "", f"the {key} prompt")
    inputs = {"shape": (data.get("shape") or "").strip(), "appearance": (data.get("appearance") or "").strip(),
              "motion": validate_motion(data.get("motion"))}
    if not inputs["shape"] and not inputs["appearance"] and not inputs["motion"]:
        raise UserInputError('give "shape", "appearance" and/or "motion", e.g. {"shape": "a tall and fat man"}')
    preset = validate_preset(data.get("preset"), preset_choices())
    return {"inputs": inputs, "config": {"preset": preset, "overrides": request_overrides("text", preset, data)}}


def submit_sliders(api: JobAPILike, request: SlidersRequest) -> str:
    kind, inputs, config = request.submit_args()
    return api.submit(kind, inputs, config)


# ---- status ------------------------------------------------------------------------------------

def check_job_id(job_id: Any) -> str:
    if not isinstance(job_id, str) or not JOB_ID_RE.match(job_id.strip()):
        raise UserInputError("invalid job id")
    return job_id.strip()


def ordered_files(names: Iterable[str]) -> list[str]:
    rank = {n: i for i, n in enumerate(FILE_ORDER)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


def safe_download_name(job_id: Any, name: Any) -> bool:
    """A first filter before workers.store.safe_job_file: plain names, '/'-separated, no dot parts."""
    if not isinstance(job_id, str) or not JOB_ID_RE.match(job_id) or not isinstance(name, str) or len(name) > 255:
        return False
    return all(FILE_NAME_RE.match(part) and ".." not in part for part in name.split("/"))


def download_path(job_id: str, name: str) -> str:
    return f"/download/{quote(job_id, safe='')}/{quote(name, safe='/')}"


def status_fields(st: Any) -> dict[str, Any]:
    if hasattr(st, "to_dict"):
        d = dict(st.to_dict())
    elif isinstance(st, dict):
        d = dict(st)
    else:
        d = {k: getattr(st, k, None) for k in ("job_id", "kind", "state", "stage", "progress", "message", "files",
                                                "created", "error")}
    d["progress"] = float(d.get("progress") or 0.0)
    d["files"] = dict(d.get("files") or {})
    return d


def public_status(st: Any, base_url: str = "") -> dict[str, Any]:
    """What REST clients see: files as download URLs (never server paths)."""
    d = status_fields(st)
    job_id = d.get("job_id") or ""
    files = {}
    if d.get("state") == "SUCCESS":
        files = {n: base_url.rstrip("/") + download_path(job_id, n) for n in ordered_files(d["files"])}
    return {
        "job_id": job_id,
        "kind": d.get("kind") or "",
        "state": d.get("state") or "",
        "stage": d.get("stage") or "",
        "progress": round(min(max(d["progress"], 0.0), 1.0), 4),
        "message": d.get("message") or "",
        "files": files,
        "error": d.get("error"),
        "created": d.get("created") or "",
    }


def status_html(pub: dict[str, Any] | None) -> str:
    """The status panel: state, stage and percent, and a bar; data-state for scripts and tests."""
    if not pub:
        return '<div id="job-status-box" data-state="">No job yet: set sliders and press Create.</div>'
    state = pub["state"]
    pct = int(round(100 * pub["progress"]))
    if state == "SUCCESS":
        pct = 100
    text = {"PENDING": "Queued", "STARTED": "Started", "PROGRESS": "Working", "SUCCESS": "Done",
            "FAILURE": "Failed", "REVOKED": "Cancelled"}.get(state, state.title())
    detail = pub["stage"] or pub["message"]
    if state == "FAILURE" and pub.get("error"):
        detail = pub["error"]
    colour = {"SUCCESS": "#2e7d32", "FAILURE": "#c62828", "REVOKED": "#6d6d6d"}.get(state, "#1565c0")
    esc = html.escape
    return (
        f'<div id="job-status-box" data-state="{esc(state)}" data-job="{esc(pub["job_id"])}">'
        f'<div><b>{esc(state)}</b> &middot; {esc(text)} &middot; <span class="job-pct">{pct}%</span>'
        f'{" &middot; " + esc(detail) if detail else ""}</div>'
        f'<div style="background:#e0e0e0;border-radius:4px;height:8px;margin-top:6px">'
        f'<div style="background:{colour};width:{pct}%;height:8px;border-radius:4px"></div></div>'
        f'<div style="font-size:0.8em;opacity:0.7;margin-top:4px">job {esc(pub["job_id"])}</div></div>'
    )


def links_html(pub: dict[str, Any] | None) -> str:
    if not pub or not pub.get("files"):
        return '<div id="job-downloads"></div>'
    items = "".join(
        f'<li><a class="job-download" href="{html.escape(download_path(pub["job_id"], name))}" '
        f'download="{html.escape(name)}">{html.escape(name)}</a></li>' for name in pub["files"])
    return f'<div id="job-downloads"><b>Downloads</b><ul>{items}</ul></div>'


HISTORY_HEADERS = ["created", "job id", "kind", "state", "stage", "progress", "message"]


def history_rows(api: JobAPILike, limit: int = 50) -> list[list[Any]]:
    rows = []
    for st in api.list(limit=limit):
        d = status_fields(st)
        rows.append([str(d.get("created") or "")[:19].replace("T", " "), d.get("job_id") or "", d.get("kind") or "",
                     d.get("state") or "", d.get("stage") or "", f"{int(round(100 * d['progress']))}%",
                     (d.get("error") or d.get("message") or "")[:200]])
    return rows


def user_message(exc: BaseException) -> str:
    """The message a user sees for a UserInputError; anything else is reported without internals."""
    if isinstance(exc, UserInputError):
        return str(exc)
    if type(exc).__name__ == "QueueUnavailableError":  # workers.errors: broker down; the message is redacted
        return str(exc)
    return "internal error (see the server log)"

