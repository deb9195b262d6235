"""Users correct what a photo job detected (issue 11 item 5): the photo job kind's `attributes` input
(checked at submit), `avatar photo --fix KEY=VALUE`, /create_from_photo's fourth argument, and the
photo tab's re-fit request. The fit itself (fit(fixed=...)) is tested in test_face_attributes.py."""
from __future__ import annotations

import json
from pathlib import Path

import gradio_client
import pytest

from avatar_studio.errors import InvalidJobInputError
from avatar_studio.kinds import validate_photo
from web.testing import studio

FACES = Path("/work/shared/data/faces-identity")
MAN = FACES / "img13.jpg"  # labels.json: p05, male, short hair, no beard
UPLOAD = "0123456789abcdef0123456789abcdef.png"
needs_photos = pytest.mark.skipif(not MAN.is_file(), reason=f"{MAN} is not here")


# ---- the job kind -----------------------------------------------------------------------------------
def test_the_photo_kind_keeps_checked_attributes_and_omits_none():
    from face2param.spec_cache import default_engine_spec

    hair = default_engine_spec().slot("hair_style").options
    inputs, _ = validate_photo({"photo": UPLOAD, "attributes": {"gender": "female", "hair_style": hair[-1],
                                                                 "beard": "short"}}, {})
    assert inputs["attributes"] == {"gender": "female", "hair_style": hair[-1], "beard": "short"}
    for empty in (None, {}):  # nothing fixed: the stored inputs look like before the feature
        inputs, _ = validate_photo({"photo": UPLOAD, "attributes": empty}, {})
        assert "attributes" not in inputs


@pytest.mark.parametrize("attributes, match", [
    ({"hat": "yes"}, r"^inputs.attributes: unknown attribute 'hat'; choose from .*gender.*hair_style"),
    ({"gender": "nonbinary"}, r"^inputs.attributes: unknown value 'nonbinary' for gender; choose one of male, female$"),
    ({"hair_style": "purple"}, r"^inputs.attributes: unknown value 'purple' for hair_style; choose one of "),
    ({"skin_tone": "green"}, r"unknown value 'green' for skin_tone"),
    ({"glasses": True}, r"unknown value True for glasses"),
    ({"gender": ["female"]}, r"unknown value \['female'\] for gender"),
    (["gender"], r"inputs.attributes must be a mapping"),
    ({str(i): "x" for i in range(65)}, r"too many fixed attributes \(65; at most 64\)"),
])
def test_the_photo_kind_refuses_unknown_keys_and_values_with_one_line(attributes, match):
    with pytest.raises(InvalidJobInputError, match=match) as info:
        validate_photo({"photo": UPLOAD, "attributes": attributes}, {})
    assert "\n" not in str(info.value)


def test_another_engines_slots_are_left_to_the_worker_but_attributes_are_checked():
    external = {"overrides": {"engine_kind": "external"}}
    try:
        inputs, _ = validate_photo({"photo": UPLOAD, "attributes": {"hairdo": "mohawk", "gender": "male"}}, external)
    except InvalidJobInputError as exc:  # an install without an external engine configured
        pytest.skip(str(exc))
    assert inputs["attributes"] == {"hairdo": "mohawk", "gender": "male"}
    with pytest.raises(InvalidJobInputError, match="unknown value 'x' for gender"):
        validate_photo({"photo": UPLOAD, "attributes": {"gender": "x"}}, external)


# ---- the CLI --------------------------------------------------------------------------------------
@pytest.mark.parametrize("pair", ["gender", "=female", "gender=", " = "])
def test_fix_needs_key_equals_value(tmp_path, capsys, pair):
    from avatar_studio.cli import main

    assert main(["photo", str(tmp_path / "none.jpg"), "--fix", pair, "-o", str(tmp_path / "out"), "-q"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"error: --fix needs KEY=VALUE, e.g. --fix gender=female, got {pair!r}"]
    assert not (tmp_path / "out").exists()


@needs_photos
@pytest.mark.slow
def test_cli_fixes_gender_on_a_real_photo(tmp_path, capsys):
    """A man's photo with --fix gender=female: the fit holds Anny's female end, params.json says the user set it."""
    from avatar_studio.cli import main

    out = tmp_path / "fixed"
    assert main(["photo", str(MAN), "--method", "oneshot", "--fix", "gender=female", "-o", str(out), "-q"]) == 0
    params = json.loads((out / "params.json").read_text())
    attributes = params["attributes"]
    assert attributes["detected"]["gender"] == {"value": "female", "confidence": 1.0, "source": "user"}
    assert attributes["sources"]["gender"] == "user" and attributes["set"]["gender"] == 1.0
    assert params["continuous"]["gender"] == 1.0  # Anny: 1 = female
    assert json.loads((out / "provenance.json").read_text())["inputs"]["fixed_attributes"] == {"gender": "female"}
    # the same photo without the fix: detected male, not from the user
    free = tmp_path / "free"
    assert main(["photo", str(MAN), "--method", "oneshot", "-o", str(free), "-q"]) == 0
    detected = json.loads((free / "params.json").read_text())["attributes"]
    assert detected["detected"]["gender"]["value"] == "male" and detected["sources"]["gender"] == "attribute"
    # an unknown value: one line, nothing written
    capsys.readouterr()
    bad = tmp_path / "bad"
    assert main(["photo", str(MAN), "--method", "oneshot", "--fix", "gender=robot", "-o", str(bad), "-q"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error: ")]
    assert err == ["error: unknown value 'robot' for gender; choose one of male, female"] and not bad.exists()


# ---- the page's re-fit request -------------------------------------------------------------------
def test_refit_sends_what_the_user_moved_plus_what_was_fixed_before():
    from avatarclip_core.errors import UserInputError
    from web.photo_attributes import refit_inputs

    loaded = {"job_id": "j1", "photo": UPLOAD, "method": "oneshot", "photo_stored": True,
              "config": {"preset": "preview", "overrides": {"seed": 3}}, "fixed": {"hair_style": "bald"},
              "detected": {"gender": {"value": "male", "confidence": 0.9, "source": "photo"},
                           "beard": {"value": "none", "confidence": 0.8, "source": "photo"}}}
    inputs, config = refit_inputs(loaded, {"gender": "female", "beard": "none", "glasses": None})
    assert inputs == {"photo": UPLOAD, "method": "oneshot", "attributes": {"hair_style": "bald", "gender": "female"}}
    assert config == {"preset": "preview", "overrides": {"seed": 3}}
    with pytest.raises(UserInputError, match="change at least one attribute"):
        refit_inputs({**loaded, "fixed": {}}, {"gender": "male", "beard": "none"})
    with pytest.raises(UserInputError, match="no longer stored on the server; upload it again"):
        refit_inputs({**loaded, "photo_stored": False}, {"gender": "female"})
    with pytest.raises(UserInputError, match="create one from a photo first"):
        refit_inputs(None, {})


# ---- REST through the real app ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory):
    from PIL import Image
    from skimage import data

    path = tmp_path_factory.mktemp("photos") / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


def test_create_from_photo_takes_fixed_attributes_and_the_old_three_arguments(tmp_path, astronaut_png):
    with studio(tmp_path / "data", worker=False) as s:
        c = gradio_client.Client(s.url, verbose=False, download_files=False)
        photo = gradio_client.handle_file(str(astronaut_png))
        job = c.predict(photo, "oneshot", "preview", '{"gender": "female", "beard": "full"}',
                        api_name="/create_from_photo")
        assert s.api.record(job).inputs["attributes"] == {"gender": "female", "beard": "full"}
        old = c.predict(photo, "oneshot", "preview", api_name="/create_from_photo")  # a caller of the old API
        assert "attributes" not in s.api.record(old).inputs
        jobs = len(s.api.list(100))
        with pytest.raises(Exception, match="unknown value 'purple' for hair_style"):
            c.predict(photo, "oneshot", "preview", '{"hair_style": "purple"}', api_name="/create_from_photo")
        assert len(s.api.list(100)) == jobs


@needs_photos
@pytest.mark.slow
def test_rest_fix_and_the_panels_refit_through_a_worker(tmp_path):
    """REST with a fixed gender, then what the photo tab's panel loads and re-fits from that job."""
    from web.photo_attributes import load_photo_attributes, refit_inputs

    with studio(tmp_path / "data", worker=True) as s:
        c = gradio_client.Client(s.url, verbose=False, download_files=False)
        job = c.predict(gradio_client.handle_file(str(MAN)), "oneshot", "preview", '{"gender": "female"}',
                        api_name="/create_from_photo")
        assert s.api.wait(job, timeout=600).state == "SUCCESS", s.api.status(job)
        params = json.loads(s.api.file(job, "params.json").read_text())
        assert params["attributes"]["sources"]["gender"] == "user" and params["continuous"]["gender"] == 1.0
        loaded = load_photo_attributes(s.api, job, s.settings.uploads_dir)
        assert loaded["detected"]["gender"]["source"] == "user" and loaded["fixed"] == {"gender": "female"}
        assert loaded["detected"]["hair_length"]["value"] in ("bald", "short", "long")
        inputs, config = refit_inputs(loaded, {"gender": "female", "glasses": "yes"})
        refit = s.api.submit("photo", inputs, config)
        assert s.api.wait(refit, timeout=600).state == "SUCCESS", s.api.status(refit)
        again = json.loads(s.api.file(refit, "params.json").read_text())
    assert s.api.record(refit).inputs["attributes"] == {"gender": "female", "glasses": "yes"}
    assert again["attributes"]["sources"]["gender"] == "user" and again["attributes"]["sources"]["glasses"] == "user"
    assert again["discrete"]["glasses"] != "none"
