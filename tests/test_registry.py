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
    from avatarclip_core.body.anny_body import load_anny_body  # SliderBody.load: one instance per config + device

    assert anny.cls.load(anny.config(), "cpu") is load_anny_body(None, "cpu")
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


def test_fit_methods_shape_and_motion_queries_are_registries_of_the_configs_choices():
    from avatarclip_core.config.limits import PHOTO_METHODS
    from avatarclip_core.motion.gen_config import MotionGenConfig
    from avatarclip_core.motion.generate import MOTION_QUERIES
    from avatarclip_core.shape.config import ShapeQueryConfig
    from avatarclip_core.shape.query import SHAPE_QUERIES
    from face2param.methods.registry import FIT_METHODS

    literal = lambda cls, name: sorted(typing.get_args(typing.get_type_hints(cls)[name]))
    assert FIT_METHODS.names() == sorted(PHOTO_METHODS)
    assert SHAPE_QUERIES.names() == literal(ShapeQueryConfig, "method")
    assert MOTION_QUERIES.names() == literal(MotionGenConfig, "query_method")
    assert FIT_METHODS.find("mean").cls.__name__ == "run_mean"  # lazy: imported on first find
    for registry, what, names in ((FIT_METHODS, "fitting method", "auto, iterative, mean, oneshot"),
                                  (SHAPE_QUERIES, "shape query method", "auto, clip, text"),
                                  (MOTION_QUERIES, "motion query method", "auto, clip, offline")):
        with pytest.raises(UserInputError, match=f"unknown {what} 'telepathy' .*: choose one of {names}$"):
            registry.find("telepathy")


def test_a_new_fit_method_is_one_function_and_one_registration():
    """fit() runs whatever FIT_METHODS finds under the name (no if/elif to edit)."""
    from face2param.methods.registry import FIT_METHODS, MethodJob, MethodOutcome, run_method

    def constant(job: MethodJob) -> MethodOutcome:
        return MethodOutcome({"x": job.config}, {"loss": 0.0}, "constant", ["ran"])

    FIT_METHODS.register("constant")(constant)
    try:
        outcome = run_method("constant", MethodJob(target=None, engine=None, config=7, device="cpu"))
        assert (outcome.params, outcome.method, outcome.warnings) == ({"x": 7}, "constant", ["ran"])
        assert "constant" in FIT_METHODS.names()
    finally:
        FIT_METHODS._entries.pop("constant")


def test_fit_methods_are_listed_without_importing_torch():
    script = ("import sys; from face2param.methods.registry import FIT_METHODS; print(FIT_METHODS.names(), "
              "'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["['auto',", "'iterative',", "'mean',", "'oneshot']", "False"]
