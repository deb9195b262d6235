"""The one table of renamed user-facing config keys: an old key still loads (from YAML presets,
dotted overrides, saved configs and the job API at submit, which all go through `apply_overrides`)
with a DeprecationWarning that names the new key; giving both is an error.

Keyed by the config class's name (not its module), so the torch-free stand-ins that
avatar_studio.config_schema rebuilds from a schema (same class names) read the same table.
Plain data, no imports: processes without torch read it too.
"""
from __future__ import annotations

# config class name -> {old field name: new field name}. One spelling: "color" (as in
# neus.lambda_color_clip, export.skin_color); British "colour" keys stay accepted for a while.
RENAMED_KEYS: dict[str, dict[str, str]] = {
    "IterativeConfig": {"colour_weight": "color_weight"},
}


def renamed_key(class_name: str, key: str) -> str | None:
    """The new name of `key` in config class `class_name`, or None when it was never renamed."""
    return RENAMED_KEYS.get(class_name, {}).get(key)
