"""Photo attributes (faces/attributes.py) on real labelled photos of ../shared/data/faces-identity, and
their use as constraints of the fit (methods/attribute_slots.py). The photos are read by path, as a user
gives them; without the folder the tests skip and say so."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from face2param.faces.attributes import (AttributeConfig, UnknownAttributeError, estimate_attributes,
                                         load_gender_model, palette_ita, validate_fixed)

IDENTITY = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces-identity"
needs_photos = pytest.mark.skipif(not (IDENTITY / "labels.json").is_file(),
                                  reason=f"labelled photos not found at {IDENTITY} (../shared/data/faces-identity)")
SKIN = {"light": 60.0, "medium": 40.0, "dark": 10.0}  # a 3-tone reference on the ITA scale


@pytest.fixture(scope="module")
def analysed():
    from face2param.faces.analysis import analyse_face

    # img2: a woman with long dark hair; img25: a bearded man with glasses and the darkest skin of the set
    return {name: analyse_face(IDENTITY / name) for name in ("img2.jpg", "img25.jpg")}


@needs_photos
def test_attributes_of_two_real_photos(analysed):
    woman = estimate_attributes(analysed["img2.jpg"].appearance, analysed["img2.jpg"].embedding,
                                skin_reference=SKIN)
    man = estimate_attributes(analysed["img25.jpg"].appearance, analysed["img25.jpg"].embedding,
                              skin_reference=SKIN)
    assert woman["gender"].value == "female" and woman["gender"].confidence > 0.9
    assert man["gender"].value == "male" and man["gender"].confidence > 0.9
    assert woman["hair_length"].value == "long" and woman["hair_length"].source == "photo"
    assert man["hair_length"].value == "short"
    assert woman["glasses"].value == "no" and man["glasses"].value == "yes"
    assert woman["beard"].value == "none" and woman["moustache"].value == "none"
    assert man["moustache"].value != "none"
    assert man.cues.skin_ita < woman.cues.skin_ita - 15  # darker skin, by ITA
    assert woman["hair_colour"].value in ("black", "dark_brown")
    for attrs in (woman, man):
        assert all(0.0 <= a.confidence <= 1.0 for a in attrs.attributes.values())
        assert attrs["age_band"].value == "adult"  # no grey hair: the neutral band, never an extreme


@needs_photos
def test_weak_evidence_keeps_neutral_values(analysed):
    """Without the descriptor and without a gender model, gender is not decided; a user-facing low
    confidence, not a guess."""
    view = analysed["img2.jpg"].appearance
    attrs = estimate_attributes(view, None, AttributeConfig(gender_artifact="/nonexistent"), SKIN)
    assert attrs["gender"].value is None and attrs["gender"].confidence == 0.5
    nothing = estimate_attributes(None, None)
    assert all(a.confidence == 0.0 for a in nothing.attributes.values())
    assert nothing["beard"].value == "none" and nothing["glasses"].value == "no"


def test_gender_artifact_is_small_and_documented():
    model = load_gender_model()
    assert model is not None and model["w"].shape == (128,)
    meta = (Path(__file__).resolve().parents[1] / "face2param" / "artifacts" / "attributes" / "meta.json").read_text()
    assert "leave-one-person-out" in meta or "lopo" in meta


def test_fixed_attributes_are_checked():
    slots = {"hair_style": ["bald", "short", "long"], "beard": ["none", "stubble", "full"]}
    assert validate_fixed({"gender": "female", "hair_style": "long", "beard": "none"}, slots) == \
        {"gender": "female", "hair_style": "long", "beard": "none"}
    assert validate_fixed({"beard": "short"}, slots) == {"beard": "short"}  # the attribute's vocabulary too
    with pytest.raises(UnknownAttributeError, match="unknown attribute 'hat'"):
        validate_fixed({"hat": "yes"}, slots)
    with pytest.raises(UnknownAttributeError, match="unknown value 'purple' for hair_style"):
        validate_fixed({"hair_style": "purple"}, slots)
    with pytest.raises(UnknownAttributeError, match="unknown value 'nonbinary' for gender"):
        validate_fixed({"gender": "nonbinary"}, slots)
    with pytest.raises(UnknownAttributeError, match="JSON object"):
        validate_fixed(["gender"], slots)


def test_fixable_attributes_name_every_key_and_value():
    from face2param.engines.base import DiscreteSlot, ParamSpec
    from face2param.methods.attribute_slots import fixable_attributes

    spec = ParamSpec([], [DiscreteSlot("hair_style", ["bald", "short", "long"], "short"),
                          DiscreteSlot("skin_tone", ["light", "dark"], "light")])
    form = fixable_attributes(spec)
    assert form["gender"] == ["male", "female"] and form["hair_style"] == ["bald", "short", "long"]
    assert form["skin_tone"] == ["light", "dark"] and "glasses" in form and "age_band" in form
    validate_fixed({k: v[0] for k, v in form.items()}, {"hair_style": form["hair_style"],
                                                         "skin_tone": form["skin_tone"]})


def test_palette_ita_orders_skin_tones_light_to_dark():
    from face2param.engines.assets.colours import SKIN_TONES

    itas = palette_ita(SKIN_TONES)
    values = [itas[k] for k in SKIN_TONES]
    assert values == sorted(values, reverse=True)


@needs_photos
@pytest.mark.slow
def test_fit_respects_attributes_and_user_overrides(analysed):
    """Detected attributes set phenotypes and slots (recorded with their source); what the user fixes wins."""
    from face2param.methods.fit import fit, load_engine

    engine = load_engine()
    man = fit(analysed["img25.jpg"], "oneshot", engine)
    assert man.params.continuous["gender"] < 0.2
    assert man.params.discrete["glasses"] != "none" and man.params.discrete["beard"] != "none"
    assert man.attributes["sources"]["gender"] == "attribute"
    assert man.attributes["detected"]["gender"]["value"] == "male"
    woman = fit(analysed["img2.jpg"], "oneshot", engine,
                fixed={"gender": "male", "hair_style": "bald", "beard": "full"})
    assert woman.params.continuous["gender"] == 0.0
    assert woman.params.discrete["hair_style"] == "bald" and woman.params.discrete["beard"] == "full"
    assert {woman.attributes["sources"][k] for k in ("gender", "hair_style", "beard")} == {"user"}
    with pytest.raises(UnknownAttributeError):
        fit(analysed["img2.jpg"], "oneshot", engine, fixed={"eye_size": "big"})


@needs_photos
@pytest.mark.slow
def test_attribute_accuracy_on_faces_identity():
    """The issue's targets, held with margins below the measured values (61 photos, 13 people; gender
    leave-one-person-out). Measured: gender 1.0, hair length 0.98, beard yes/no 1.0, glasses 1.0."""
    from face2param.evaluation.attribute_eval import analyse_labelled, evaluate_attributes

    photos, failed = analyse_labelled(IDENTITY)
    assert not failed
    report = evaluate_attributes(photos, skin_reference=SKIN)
    accuracy = report["accuracy"]
    assert accuracy["gender"] >= 0.95
    assert accuracy["hair_length"] >= 0.88
    assert accuracy["beard"] >= 0.93
    assert accuracy["glasses"] >= 0.96
    assert report["skin"]["all_darker"], report["skin"]
    assert np.isfinite(report["seconds_per_photo"])


@needs_photos
@pytest.mark.slow
def test_eval_photo_reports_attribute_accuracy_with_labels(tmp_path):
    """`avatar eval photo` on a labelled folder adds the attributes section: detector accuracy (gender
    leave-one-person-out) and what each method's avatar shows."""
    import json

    from face2param.config import Face2ParamConfig
    from face2param.evaluation.methods_eval import evaluate_photo_methods

    labels = json.loads((IDENTITY / "labels.json").read_text())["photos"]
    chosen = ("img2.jpg", "img22.jpg", "img25.jpg", "img17.jpg")  # 2 women, 2 men: LOPO keeps both genders
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in chosen:
        (folder / name).symlink_to(IDENTITY / name)
    (folder / "labels.json").write_text(json.dumps({"photos": {n: labels[n] for n in chosen}}))
    summary = evaluate_photo_methods(folder, tmp_path / "report", ("oneshot",), Face2ParamConfig(),
                                     recovery_samples=0)
    section = summary["attributes"]
    assert section["detector"]["photos"] == 4 and not section["failed"]
    assert section["detector"]["accuracy"]["glasses"] == 1.0
    shown = section["shown_by_fit"]["oneshot"]["accuracy"]
    assert shown["gender"] == 1.0 and shown["beard"] == 1.0
    assert set(section["shown_by_fit"]) == {"mean", "oneshot"}


def test_the_pixel_grid_in_the_face_frame_is_to_frame_of_every_pixel_bit_for_bit():
    """`pixel_grid_to_frame` (a row and a column, broadcast) gives exactly `to_frame` of the grid of pixel
    centres that the cues and the asset descriptors used to build: the same floats, so the same cues."""
    from face2param.faces.appearance import pixel_grid_to_frame, to_frame

    rng = np.random.default_rng(0)
    for _ in range(50):
        height, width = (int(v) for v in rng.integers(1, 300, 2))
        origin = rng.uniform(-50, 350, 2)
        angle = rng.uniform(0, 2 * np.pi)
        axis, iod = np.array([np.cos(angle), np.sin(angle)]), float(rng.uniform(1, 200))
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
        expected = to_frame(np.stack([xx, yy], -1), origin, axis, iod)
        found = pixel_grid_to_frame(height, width, origin, axis, iod)
        assert found.dtype == expected.dtype and np.array_equal(found, expected)


def test_colour_distance_is_the_norm_bit_for_bit_in_its_dtype():
    """The per-plane, in-place sum gives np.linalg.norm(pixels - colour, axis=-1) exactly, in the dtype
    that subtraction has, for every kind of colour the cues pass (tuples, float32 / float64 / int arrays)."""
    from face2param.faces.appearance import colour_distance

    rng = np.random.default_rng(1)
    pixels = (rng.random((40, 50, 3)) * 255).astype(np.float32)
    for colour in ([10, 20, 30], (1.5, 2.5, 3.5), np.array([5, 6, 7], np.float32), np.array([5.1, 6.2, 7.3]),
                   np.array([9, 8, 7], np.int64)):
        expected = np.linalg.norm(pixels - colour, axis=-1)
        found = colour_distance(pixels, colour)
        assert found.dtype == expected.dtype and np.array_equal(found, expected), colour
