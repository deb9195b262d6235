"""Choices by name: body models and face engines are registries (name -> class + config class)."""
import subprocess
import sys
import typing

import pytest

from avatarclip_core.errors import UserInputError
from avatarclip_core.registry import Registry


def test_registered_names_are_exactly_the_choices_the_configs_accept():
    from avatarclip_core.body.factory import BodyConfig
    from avatarclip_core.body.model import BODY_MODELS
    from face2param.config import Face2ParamConfig
    from face2param.engines.registry import ENGINES

    assert BODY_MODELS.names() == sorted(typing.get_args(typing.get_type_hints(BodyConfig)["model"]))
    assert ENGINES.names() == sorted(typing.get_args(typing.get_type_hints(Face2ParamConfig)["engine_kind"]))
    anny = BODY_MODELS.find("anny")
    assert anny.cls.__name__ == "AnnyBody" and anny.config.__name__ == "AnnyConfig"
    external = ENGINES.find("external")  # lazy: imported on first find
    assert external.cls.__name__ == "ExternalEngine" and external.config.__name__ == "ExternalEngineConfig"


def test_an_unknown_name_is_a_user_error_that_lists_the_choices_and_a_close_one():
    registry = Registry("widget", "thing.kind")
    registry.register("round")(type("Round", (), {}))
    registry.register_lazy("square", "fractions:Fraction")
    with pytest.raises(UserInputError, match=r"unknown widget 'rund' \(thing.kind\): choose one of round, square; "
                                             r"did you mean 'round'\?"):
        registry.find("rund")
    assert registry.find("square").cls.__name__ == "Fraction"
    with pytest.raises(ValueError, match="already registered"):
        registry.register("round")(type("Other", (), {}))


def test_engine_names_are_listed_without_importing_any_engine():
    script = ("import sys; from face2param.engines.registry import ENGINES; print(ENGINES.names(), "
              "'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["['anny',", "'external']", "False"]
