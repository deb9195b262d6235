"""Face engines by name (`engine_kind`) and the one `load_engine`. A new engine is one module with a
class that has `from_config(config: Face2ParamConfig)`, plus one line here (and its name in the
`engine_kind` Literal of face2param.config, which the job API checks at submit)."""
from __future__ import annotations

from avatarclip_core.registry import Registry

ENGINES = Registry("face engine", "engine_kind")
ENGINES.register_lazy("anny", "face2param.engines.anny_engine:AnnyFaceEngine",
                      "face2param.engines.anny_engine:AnnyEngineConfig")
ENGINES.register_lazy("external", "face2param.engines.external:ExternalEngine", "face2param.config:ExternalEngineConfig")


def load_engine(config=None):
    """The configured engine (Face2ParamConfig.engine_kind): the bundled AnnyFaceEngine (built once per
    process and configuration), or a game's renderer as a black box (engine_external: spec + command or url)."""
    from face2param.config import Face2ParamConfig

    config = config or Face2ParamConfig()
    return ENGINES.find(config.engine_kind).cls.from_config(config)
