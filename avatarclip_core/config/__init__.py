"""One config system: typed dataclasses, YAML presets in configs/, dotted overrides.

`load_config(cls, preset="preview", overrides={"motion.fps": "24"})` builds the dataclass, applies
the preset's values, then the overrides, converting strings to each field's declared type.
Unknown keys and bad values raise `ConfigError` naming the key.
"""
from avatarclip_core.config.core import (
    ConfigError,
    apply_overrides,
    config_to_dict,
    describe_fields,
    load_config,
    parse_override,
    preset_names,
    preset_section,
    presets_dir,
)

__all__ = [
    "ConfigError",
    "apply_overrides",
    "config_to_dict",
    "describe_fields",
    "load_config",
    "parse_override",
    "preset_names",
    "preset_section",
    "presets_dir",
]
