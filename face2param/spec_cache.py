"""The bundled face engine's ParamSpec without importing torch (for the web app's editing controls and
the `face` job kind's check at submit): built once in a child process, cached as JSON under
cache/face2param/ and keyed by the engine's and the body's code and Anny's version.
"""
from __future__ import annotations

import functools

from face2param.engines.base import ParamSpec

_SPEC_SCRIPT = (
    "import json\n"
    "from avatarclip_core.child_json import MARKER\n"
    "from face2param.methods.fit import load_engine\n"
    "print(MARKER + json.dumps(load_engine().spec.to_json()))\n"
)


@functools.lru_cache(maxsize=1)
def default_engine_spec() -> ParamSpec:
    """AnnyFaceEngine's spec: 4 phenotypes + 139 face/head sliders in [0, 1] and its discrete slots."""
    from avatarclip_core.child_json import ROOT, cached_child_json, source_key
    from avatarclip_core.paths import cache_dir

    key = source_key([ROOT / "face2param" / "engines", ROOT / "avatarclip_core" / "body"], ["anny"])
    data = cached_child_json(cache_dir("face2param") / f"engine-spec-{key}.json", _SPEC_SCRIPT,
                             "the face engine's parameter spec")
    return ParamSpec.from_json(data)
