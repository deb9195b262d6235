"""The job configs' shapes without their imports: what lets the job kinds resolve and check a WHOLE
config at submit (unknown keys, types, Literal choices, devices) in a process that never imports torch.

The job configs nest the libraries' component configs, and several of those still live in modules
that import torch (body, render, NeuS, face analysis). So their shapes (field names, types, defaults)
are read once in a short-lived child process, cached as JSON in the data folder (keyed by the source
of the packages that define them), and rebuilt here as plain dataclasses; `load_config` then applies
the preset and the overrides to them with the very conversions the worker uses, so submit and worker
reject the same configs with the same message. Once every component config is torch-free this module
can give way to importing the job configs directly.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from typing import Any, Literal

from avatarclip_core.config.ranges import Range

JOB_CONFIGS = {  # preset section -> the job config class a worker loads for it
    "sliders": "avatar_studio.pipelines.sliders:SlidersJobConfig",
    "text": "avatar_studio.pipelines.text:TextJobConfig",
    "photo": "avatar_studio.pipelines.photo:PhotoJobConfig",
    "create": "avatar_studio.pipelines.create:CreateJobConfig",
}


def type_spec(annotation: Any) -> Any:
    """A JSON description of a config field's type (what `_annotation` turns back into a type)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:  # a number with a declared Range (avatarclip_core.config.ranges)
        ranges = [m.as_dict() for m in annotation.__metadata__ if isinstance(m, Range)]
        return {"annotated": type_spec(args[0]), "ranges": ranges}
    if origin in (typing.Union, types.UnionType):
        return {"union": [type_spec(a) for a in args]}
    if origin is Literal:
        return {"literal": list(args)}
    if origin in (tuple, list):
        ellipsis = len(args) == 2 and args[1] is Ellipsis
        return {origin.__name__: [type_spec(a) for a in (args[:1] if ellipsis else args)], "variadic": ellipsis}
    if dataclasses.is_dataclass(annotation):
        return {"dataclass": schema_of(annotation)}
    if annotation is type(None):
        return "None"
    if annotation in (int, float, bool, str, dict):
        return annotation.__name__
    return "Any"


def schema_of(cls: type) -> dict:
    hints = typing.get_type_hints(cls, include_extras=True)
    instance = cls()
    fields = []
    for f in dataclasses.fields(cls):
        value = getattr(instance, f.name)
        default = None if dataclasses.is_dataclass(value) else value
        fields.append({"name": f.name, "type": type_spec(hints[f.name]), "default": default})
    return {"name": cls.__name__, "fields": fields}


_SIMPLE = {"int": int, "float": float, "bool": bool, "str": str, "dict": dict, "None": type(None), "Any": Any}


def _annotation(spec: Any) -> Any:
    if isinstance(spec, str):
        return _SIMPLE[spec]
    if "annotated" in spec:
        return typing.Annotated[(_annotation(spec["annotated"]), *[Range(**r) for r in spec["ranges"]])]
    if "union" in spec:
        return functools.reduce(lambda a, b: a | b, [_annotation(s) for s in spec["union"]])
    if "literal" in spec:
        return Literal[tuple(spec["literal"])]
    if "dataclass" in spec:
        return dataclass_from_schema(spec["dataclass"])
    kind = "tuple" if "tuple" in spec else "list"
    inner = tuple(_annotation(s) for s in spec[kind])
    if kind == "list":
        return list[inner[0]] if inner else list
    return tuple[inner[0], ...] if spec["variadic"] else (tuple[inner] if inner else tuple)


def _default(spec: Any, value: Any) -> Any:
    if isinstance(spec, dict) and "tuple" in spec and isinstance(value, list):
        return tuple(value)  # JSON has no tuples
    return value


def dataclass_from_schema(schema: dict) -> type:
    """A plain dataclass with the schema's fields, types and defaults (nested configs included)."""
    fields = []
    for f in schema["fields"]:
        annotation = _annotation(f["type"])
        if dataclasses.is_dataclass(annotation):
            default = dataclasses.field(default_factory=annotation)
        else:
            value = _default(f["type"], f["default"])
            default = dataclasses.field(default_factory=lambda v=value: v) if isinstance(value, (list, dict)) \
                else dataclasses.field(default=value)
        fields.append((f["name"], annotation, default))
    return dataclasses.make_dataclass(schema["name"], fields)


_SCHEMA_SCRIPT = (
    "import importlib, json\n"
    "from avatarclip_core.child_json import MARKER\n"
    "from avatar_studio.config_schema import JOB_CONFIGS, schema_of\n"
    "out = {}\n"
    "for section, target in JOB_CONFIGS.items():\n"
    "    module, _, name = target.partition(':')\n"
    "    out[section] = schema_of(getattr(importlib.import_module(module), name))\n"
    "print(MARKER + json.dumps(out))\n"
)


@functools.lru_cache(maxsize=1)
def job_config_schemas() -> dict[str, dict]:
    """Section -> schema of its job config (a child process once per source version, then cached JSON)."""
    from avatarclip_core.child_json import ROOT, cached_child_json, source_key
    from avatarclip_core.paths import cache_dir

    key = source_key([ROOT / "avatarclip_core", ROOT / "face2param", ROOT / "avatar_studio"])
    return cached_child_json(cache_dir("web") / f"job-configs-{key}.json", _SCHEMA_SCRIPT, "the job configs' fields")


@functools.lru_cache(maxsize=None)
def job_config_class(section: str) -> type:
    """A torch-free stand-in for the job config class of a preset section ("sliders", "text", "photo")."""
    return dataclass_from_schema(job_config_schemas()[section])


def resolve_job_config(section: str, preset: str, overrides: dict) -> Any:
    """The whole config a worker will run: the preset's section, then the overrides, checked field by
    field (ConfigError names the key: unknown, wrong type, not one of a Literal's choices)."""
    from avatarclip_core.config import load_config

    return load_config(job_config_class(section), preset, overrides, section=section)


# ---- config overrides from REST callers ------------------------------------------------------------
# A REST caller may override only these keys of a job's config (per job kind), within these bounds
# (None: the config's own type/Range check is enough). Everything else (paths, devices, engines, model
# sizes, iteration counts beyond these bounds) stays with the server's presets: a caller could
# otherwise read server files, pin the GPU queue, or hold a worker for the whole time limit. Values are
# checked like any override (types, Literal choices, Ranges: resolve_job_config); the bounds apply to
# the resolved value, so "4096" given as text is bounded too. README "Web studio and REST API" lists them.
_EXPORT_KEYS = {"export.formats": None, "export.profile": None, "export.bone_names": None,
                "export.rest_pose": None, "export.max_influences": (0, 8), "export.root_motion": None,
                "export.fbx": None, "preview.enabled": None, "preview.size": (64, 1024), "seed": (0, 2**31 - 1)}
_MOTION_KEYS = {"motion.fps": (1, 120), "motion.cycles": (1, 10), "motion.speed": (0.1, 4.0),
                "motion.amplitude": (0.0, 2.0), "motion_gen.frames": (0, 300), "motion_gen.seed": (0, 2**31 - 1),
                "motion.seconds": None, "motion.loop": None, "motion.loop_blend": None}
REST_OVERRIDES: dict[str, dict[str, tuple[float, float] | None]] = {
    "sliders": {**_EXPORT_KEYS, **_MOTION_KEYS, "body.anny.rig": None},
    "text": {**_EXPORT_KEYS, **_MOTION_KEYS, "body.anny.rig": None, "shape.query.method": None, "sculpt": None},
    "photo": {**_EXPORT_KEYS, "iterative.iterations": (0, 200)},
    "face": {**_EXPORT_KEYS},
    "create": {**_EXPORT_KEYS, **_MOTION_KEYS, "iterative.iterations": (0, 200), "default_outfit": None},
}
_REST_SECTIONS = {"sliders": "sliders", "text": "text", "photo": "photo", "face": "photo", "create": "create"}


def check_rest_overrides(kind: str, preset: str, overrides: Any) -> dict:
    """A REST caller's config overrides for a `kind` job, checked: a JSON object of allowed dotted keys
    (REST_OVERRIDES), values that resolve like any override and sit within the REST bounds. Returns
    them unchanged; UserInputError (one line naming the key) otherwise."""
    from avatarclip_core.errors import UserInputError

    allowed = REST_OVERRIDES[kind]
    if overrides is None:
        return {}
    if not isinstance(overrides, dict):
        raise UserInputError('"config" must be a JSON object of dotted keys, e.g. {"seed": 3, "preview.size": 256}')
    for key in overrides:
        if key not in allowed:
            raise UserInputError(f"config key {json.dumps(key)} cannot be set over REST for {kind} jobs "
                                 f"(allowed: {', '.join(sorted(allowed))})")
    resolved = resolve_job_config(_REST_SECTIONS[kind], preset, dict(overrides))
    for key in overrides:
        bounds = allowed[key]
        value = functools.reduce(getattr, key.split("."), resolved)
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            raise UserInputError(f"config {key} = {value:g} is out of the range REST callers may set "
                                 f"[{bounds[0]:g}, {bounds[1]:g}]")
    return dict(overrides)
