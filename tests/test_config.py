import json
from pathlib import Path

import pytest

from avatarclip_core.config import ConfigError, apply_overrides, describe_fields, load_config, preset_names
from avatar_studio.pipelines.sliders import SlidersJobConfig, load_sliders_config


def test_presets_exist_and_load():
    assert {"preview", "standard", "paper"} <= set(preset_names())
    for name in ("preview", "standard", "paper"):
        cfg = load_sliders_config(name)
        assert isinstance(cfg, SlidersJobConfig)
    assert load_sliders_config("standard").preview.size == 512


def test_dotted_overrides_convert_types():
    cfg = load_sliders_config("preview", {"motion.fps": "24", "preview.enabled": "false", "body.anny.rig": "anny",
                                          "export.skin_color": "0.1,0.2,0.3"})
    assert cfg.motion.fps == 24.0 and isinstance(cfg.motion.fps, float)
    assert cfg.preview.enabled is False
    assert cfg.body.anny.rig == "anny"
    assert cfg.export.skin_color == (0.1, 0.2, 0.3)
    # the default object is untouched
    assert SlidersJobConfig().motion.fps == 30.0


@pytest.mark.parametrize("key,value,fragment", [
    ("motion.nope", "1", "unknown config key 'motion.nope'"),
    ("motion.fps", "fast", "motion.fps needs a number"),
    ("motion.cycles", "2.5", "motion.cycles needs an integer"),
    ("preview.enabled", "maybe", "true or false"),
    ("motion", "x", "section"),
])
def test_bad_overrides_name_the_key(key, value, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        apply_overrides(SlidersJobConfig(), {key: value})


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        load_config(SlidersJobConfig, "nope")


def test_describe_fields_lists_every_leaf():
    keys = [k for k, _, _ in describe_fields(SlidersJobConfig)]
    assert "motion.fps" in keys and "body.anny.rig" in keys and "seed" in keys


def test_every_preset_has_a_photo_section_and_paper_carries_the_papers_values():
    from face2param.config import Face2ParamConfig
    from avatar_studio.pipelines.photo import load_photo_config

    defaults = Face2ParamConfig()
    preview = load_photo_config("preview")
    assert preview.iterative == defaults.iterative and preview.train == defaults.train
    standard = load_photo_config("standard")
    assert standard.train.samples > preview.train.samples and standard.imitator.image_size > preview.imitator.image_size
    paper = load_photo_config("paper")
    assert (paper.iterative.iterations, paper.iterative.lr_decay, paper.iterative.lr_decay_every) == (50, 0.8, 5)
    assert (paper.oneshot.hidden, paper.oneshot.blocks, paper.oneshot.beta, paper.iterative.beta) == (512, 3, 1.0, 100.0)
    assert (paper.imitator.image_size, paper.imitator.base_channels, paper.imitator.samples) == (512, 512, 20000)
    assert (paper.imitator.optimizer, paper.imitator.learning_rate, paper.imitator.momentum) == ("sgd", 0.01, 0.9)
    # overrides still apply on top of a preset
    assert load_photo_config("paper", {"iterative.iterations": "7"}).iterative.iterations == 7


def test_one_device_resolver_auto_follows_cuda_and_explicit_cuda_fails_clearly(monkeypatch):
    import torch

    from avatarclip_core.device import check_device, resolve_device
    from avatarclip_core.errors import UserInputError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"
    with pytest.raises(UserInputError, match="'cuda:1' requested but CUDA is not available"):
        resolve_device("cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda" and resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(UserInputError, match="auto, cpu, cuda or cuda:N, got 'gpu'"):
        check_device("gpu")


def test_the_paper_preset_sculpts_on_cuda_when_the_worker_has_it(monkeypatch):
    """Every device of the paper preset is `auto`, NeuS's included (it ran 30k iterations on the CPU)."""
    import torch

    from avatar_studio.pipelines.text import load_text_config
    from avatarclip_core.device import resolve_device

    config = load_text_config("paper")
    devices = {"neus": config.neus.device, "body": config.body.device, "clip": config.clip.device}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert {k: resolve_device(v) for k, v in devices.items()} == {"neus": "cuda", "body": "cuda", "clip": "cuda"}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert {k: resolve_device(v) for k, v in devices.items()} == {"neus": "cpu", "body": "cpu", "clip": "cpu"}


def test_one_data_dir_reading_expands_home_and_treats_empty_as_unset(monkeypatch, tmp_path):
    from avatarclip_core.paths import data_dir_path
    from workers.settings import Settings

    monkeypatch.setenv("HOME", str(tmp_path))
    assert data_dir_path({"AVATAR_DATA_DIR": "~/avatars"}) == tmp_path / "avatars"
    assert data_dir_path({"AVATAR_DATA_DIR": ""}) == data_dir_path({}) == (Path.cwd() / "data").resolve()
    assert Settings.from_env({"AVATAR_DATA_DIR": "~/avatars"}).data_dir == tmp_path / "avatars"


@pytest.mark.parametrize("section", ["sliders", "text", "photo"])
def test_the_torch_free_job_config_stand_ins_match_the_real_classes(section):
    """avatar_studio.config_schema rebuilds each job config from its schema for the checks at submit:
    same keys, types and defaults, and the same values after every preset."""
    import importlib

    from avatar_studio.config_schema import JOB_CONFIGS, dataclass_from_schema, schema_of
    from avatarclip_core.config import config_to_dict

    module, _, name = JOB_CONFIGS[section].partition(":")
    real = getattr(importlib.import_module(module), name)
    stand_in = dataclass_from_schema(json.loads(json.dumps(schema_of(real))))  # through JSON, as cached
    assert describe_fields(stand_in) == describe_fields(real)
    for preset in preset_names():
        assert config_to_dict(load_config(stand_in, preset, section=section)) == \
            config_to_dict(load_config(real, preset, section=section)), preset


def test_a_renamed_key_loads_with_a_warning_naming_the_new_one_and_both_together_fail(monkeypatch, tmp_path):
    """config/aliases.py is the one table of renamed keys: dotted overrides, YAML presets and the job
    API's check at submit all read it (iterative.colour_weight -> iterative.color_weight)."""
    import warnings

    from avatar_studio.kinds import resolve_config
    from avatar_studio.errors import InvalidJobInputError
    from face2param.config import Face2ParamConfig

    with pytest.warns(DeprecationWarning, match="'iterative.colour_weight' is deprecated; use 'iterative.color_weight'"):
        cfg = apply_overrides(Face2ParamConfig(), {"iterative.colour_weight": "0.25"})
    assert cfg.iterative.color_weight == 0.25
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new key: no warning
        assert apply_overrides(Face2ParamConfig(), {"iterative.color_weight": "0.5"}).iterative.color_weight == 0.5
    with pytest.raises(ConfigError, match="both 'iterative.colour_weight' and 'iterative.color_weight'.*give only"):
        apply_overrides(Face2ParamConfig(), {"iterative": {"colour_weight": 0.1, "color_weight": 0.2}})

    (tmp_path / "old.yaml").write_text("photo:\n  iterative: {colour_weight: 0.75}\n")
    monkeypatch.setenv("AVATAR_CONFIGS_DIR", str(tmp_path))
    with pytest.warns(DeprecationWarning, match="use 'iterative.color_weight'"):
        assert load_config(Face2ParamConfig, "old", section="photo").iterative.color_weight == 0.75
    monkeypatch.delenv("AVATAR_CONFIGS_DIR")

    # at submit, on the torch-free stand-in of the photo job config
    with pytest.warns(DeprecationWarning, match="use 'iterative.color_weight'"):
        assert resolve_config("photo", {"overrides": {"iterative.colour_weight": "0"}}).iterative.color_weight == 0.0
    with pytest.raises(InvalidJobInputError, match="give only 'iterative.color_weight'"):
        resolve_config("photo", {"overrides": {"iterative.colour_weight": "0", "iterative.color_weight": "1"}})
    with pytest.raises(ConfigError, match="unknown config key 'iterative.colour_wait'"):
        apply_overrides(Face2ParamConfig(), {"iterative.colour_wait": "1"})


@pytest.mark.parametrize("section,key,value,message", [
    ("text", "neus.mc_resolution", "100000", "neus.mc_resolution must be >= 8 and <= 512; got '100000'"),
    ("text", "neus.iterations", "-1", "neus.iterations must be >= 0"),
    ("text", "neus.lr", "0", "neus.lr must be > 0"),
    ("text", "neus.lr", "nan", "neus.lr needs a finite number"),
    ("text", "motion_gen.fps", "inf", "motion_gen.fps needs a finite number"),
    ("photo", "iterative.render_size", "65536", "iterative.render_size must be >= 8 and <= 4096"),
    ("photo", "faces.detection.min_confidence", "1.5", "must be >= 0 and <= 1"),
    ("sliders", "preview.size", "3", "preview.size must be >= 8"),
    ("sliders", "seed", "-3", "seed must be >= 0"),
])
def test_out_of_range_numbers_are_refused_alike_at_submit_and_in_the_worker(section, key, value, message):
    """Ranges live in the field types (avatarclip_core/config/ranges.py): the worker's load_config and the
    torch-free check at submit (the stand-in rebuilt from the cached schema) refuse with one message."""
    import importlib

    from avatar_studio.config_schema import JOB_CONFIGS, dataclass_from_schema, schema_of

    module, _, name = JOB_CONFIGS[section].partition(":")
    real = getattr(importlib.import_module(module), name)
    stand_in = dataclass_from_schema(json.loads(json.dumps(schema_of(real))))
    for cls in (real, stand_in):
        with pytest.raises(ConfigError) as caught:
            load_config(cls, "preview", {key: value}, section=section)
        assert message in str(caught.value), (cls, str(caught.value))


def test_ranges_show_in_the_field_listing_and_in_range_values_pass():
    from avatar_studio.pipelines.text import TextJobConfig

    listed = {key: type_name for key, type_name, _ in describe_fields(TextJobConfig)}
    assert listed["neus.mc_resolution"] == "int >= 8 and <= 512"
    assert listed["neus.lr"] == "float > 0"
    config = load_config(TextJobConfig, "preview", {"neus.mc_resolution": "512", "neus.iterations": "0",
                                                    "neus.texture_size": "0"}, section="text")
    assert (config.neus.mc_resolution, config.neus.iterations, config.neus.texture_size) == (512, 0, 0)
