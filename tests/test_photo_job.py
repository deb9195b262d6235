"""`avatar photo` / run_photo_job: a real photo (scikit-image's astronaut) end to end, the mean-face
baseline, method fallbacks, and bad input that writes nothing."""
from __future__ import annotations

import dataclasses
import json

import jsonschema
import numpy as np
import pytest
import skimage.data
from PIL import Image

from gltf_validation import validate_glb


@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(path)
    return path


@pytest.fixture(scope="module")
def fast_config():
    from avatar_studio.pipelines.photo import load_photo_config

    config = load_photo_config("preview")
    return dataclasses.replace(config, face_image_size=256,
                               iterative=dataclasses.replace(config.iterative, color_weight=0.0))


# stage -> whether the iterative job's photo (the array load_image returned) was still referenced
# when the stage began
PHOTO_ALIVE: dict[str, bool] = {}


@pytest.fixture(scope="module")
def iterative_job(tmp_path_factory, astronaut_png, fast_config):
    import weakref

    import face2param.faces.images as images
    from avatar_studio.pipelines.photo import run_photo_job

    loaded, load_image = [], images.load_image

    def watched_load_image(*args, **kwargs):
        pixels = load_image(*args, **kwargs)
        loaded.append(weakref.ref(pixels))
        return pixels

    def progress(stage, fraction, message=""):
        if loaded:
            PHOTO_ALIVE.setdefault(stage, loaded[0]() is not None)

    config = dataclasses.replace(fast_config, method="iterative")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(images, "load_image", watched_load_image)
        return run_photo_job(astronaut_png, config, tmp_path_factory.mktemp("jobs") / "iterative",
                             progress=progress)


def test_the_photo_is_freed_after_the_fit(iterative_job):
    """The job holds the photo until the fit (it may be 36 MB at 12 MP), not through the export."""
    assert PHOTO_ALIVE["analyse face"] and PHOTO_ALIVE["fit"]
    assert not any(PHOTO_ALIVE[stage] for stage in ("render face", "build avatar", "export glb"))


def test_mediapipe_keeps_no_frames_of_its_first_caller():
    """mediapipe keeps the error of its failed sounddevice import (no PortAudio, or no sounddevice);
    its traceback's frames reached back to the analysed photo of the first detection."""
    import sys

    from face2param.faces import models

    models.mediapipe_face_detector("short_range", 0.5)
    audio = sys.modules.get("mediapipe.tasks.python.audio.core.audio_record")
    error = getattr(audio, "sd_error", None)
    assert error is None or error.__traceback__ is None


def test_a_real_photo_gives_editable_parameters_a_face_and_a_rigged_glb(iterative_job):
    from face2param.methods.fit import load_engine

    assert {"params.json", "face.png", "avatar.glb", "provenance.json"} <= {p.name for p in iterative_job.iterdir()}
    params = json.loads((iterative_job / "params.json").read_text())
    assert params["engine"] and params["version"] == 1 and params["method"] == "iterative"
    spec = load_engine().spec
    assert set(params["continuous"]) == set(spec.continuous_names)
    assert all(0.0 <= v <= 1.0 for v in params["continuous"].values())
    for slot, option in params["discrete"].items():
        assert option in spec.slot(slot).options
    report = validate_glb(iterative_job / "avatar.glb")
    assert report["issues"]["numErrors"] == 0 and report["info"]["hasSkins"]
    face = np.asarray(Image.open(iterative_job / "face.png").convert("RGB"))
    assert face.shape == (256, 256, 3) and face.std() > 10  # a rendered face, not a blank image


def test_the_iterative_fit_beats_the_mean_face_on_the_photo(iterative_job, astronaut_png, fast_config):
    from face2param.methods.fit import fit

    mean = fit(astronaut_png, "mean", config=fast_config)
    fitted = json.loads((iterative_job / "params.json").read_text())["losses"]["landmark_nme"]
    assert fitted < mean.losses["landmark_nme"]


def test_params_json_reopens_as_engine_params(iterative_job):
    from face2param.engines import EngineParams
    from face2param.methods.fit import load_engine

    engine = load_engine()
    text = (iterative_job / "params.json").read_text()
    jsonschema.validate(json.loads(text), engine.spec.to_json_schema())  # what a game would check
    params = EngineParams.from_json(text).validated(engine.spec)
    assert params.continuous  # a game or the engine CLI can load it back


def test_auto_picks_a_method_and_says_why(astronaut_png, fast_config):
    from face2param.methods.fit import fit

    result = fit(astronaut_png, "auto", config=dataclasses.replace(
        fast_config, iterative=dataclasses.replace(fast_config.iterative, iterations=5)))
    assert result.method in ("iterative", "oneshot")
    assert any(w.startswith("auto chose") for w in result.warnings)


def test_oneshot_without_a_translator_falls_back_to_iterative_and_says_so(astronaut_png, fast_config, tmp_path):
    from face2param.methods.fit import fit

    config = dataclasses.replace(fast_config, oneshot=dataclasses.replace(fast_config.oneshot, artifact_dir=str(tmp_path)),
                                 iterative=dataclasses.replace(fast_config.iterative, iterations=2))
    result = fit(astronaut_png, "oneshot", config=config)
    assert result.method == "iterative" and "iterative" in result.timings
    assert any(w.endswith("used the iterative method instead") for w in result.warnings), result.warnings


def test_bad_photos_fail_with_specific_errors_and_write_nothing(tmp_path, fast_config):
    from face2param.faces import NoFaceError, NotAnImageError
    from avatar_studio.pipelines.photo import run_photo_job

    text = tmp_path / "face.jpg"
    text.write_text("not an image at all")
    with pytest.raises(NotAnImageError):
        run_photo_job(text, fast_config, tmp_path / "out1")
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 200, 3), 120, np.uint8)).save(blank)
    with pytest.raises(NoFaceError):
        run_photo_job(blank, fast_config, tmp_path / "out2")
    assert not (tmp_path / "out1").exists() and not (tmp_path / "out2").exists()


def test_cli_photo_reports_bad_input_in_one_line(tmp_path, capsys):
    from avatar_studio.cli import main

    missing = tmp_path / "nope.jpg"
    assert main(["photo", str(missing), "-q", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "nope.jpg" in err[-1]


def test_face_engine_cli_exports_the_schema_and_renders_a_params_file(iterative_job, tmp_path):
    from avatar_studio.cli import main

    schema = tmp_path / "schema.json"
    assert main(["face-engine", "spec", "--schema", "-o", str(schema)]) == 0
    document = json.loads(schema.read_text())
    assert document["required"] == ["continuous", "discrete"]
    assert len(document["properties"]["continuous"]["properties"]) >= 100
    png = tmp_path / "face.png"
    assert main(["face-engine", "render", "--params", str(iterative_job / "params.json"), "--size", "128",
                 "-o", str(png)]) == 0
    assert Image.open(png).size == (128, 128)
    bad = tmp_path / "bad.json"
    bad.write_text('{"continuous": {"nose-size": 3}}')
    assert main(["face-engine", "render", "--params", str(bad), "-o", str(tmp_path / "x.png")]) == 2
    assert not (tmp_path / "x.png").exists()
