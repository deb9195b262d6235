"""`avatar eval photo` on a folder whose labels.json names people: identity of the renders by dlib (AUC of
same- vs different-person render pairs, nearest-photo identification), the contact sheet, and the
plausibility of the fits (sliders at a bound, mesh check). The slow test runs the default method on
../shared/data/faces-identity (61 photos of 13 people) and holds the issue's targets."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from face2param.config import Face2ParamConfig
from face2param.evaluation import PhotoEvalConfig, evaluate_photo_methods
from face2param.evaluation.likeness import LikenessRow, nearest_photo_identification, render_separation

FACES_IDENTITY = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces-identity"


def _row(name, person, photo, render):
    blank = np.zeros((8, 8, 3), np.uint8)
    return LikenessRow(name, person, np.asarray(photo, float), None if render is None else np.asarray(render, float),
                       blank, blank)


def test_render_auc_and_nearest_photo_on_known_descriptors():
    rows = [_row("a1", "a", [0, 0], [0.1, 0]), _row("a2", "a", [0, 0.2], [0.1, 0.2]),
            _row("b1", "b", [1, 0], [0.45, 0]), _row("b2", "b", [1, 0.2], None)]
    separation = render_separation(rows)
    assert separation["photos"]["roc_auc"] == 1.0
    assert separation["renders"]["genuine_pairs"] == 1 and separation["renders"]["impostor_pairs"] == 2
    nearest = nearest_photo_identification(rows)
    assert nearest["renders"] == 3 and "b2" not in nearest["per_render"]
    assert nearest["per_render"]["b1"]["nearest_person"] == "a"  # 0.45 is closer to a's photos than to 1.0
    assert nearest["rate"] == pytest.approx(2 / 3)


def test_identity_term_compares_the_photo_moved_into_the_renders_place():
    """The render-domain identity term is 0 where the candidate's descriptor is the photo's minus the mean
    photo plus the mean render, not at the raw photo (every render sits apart from every photo)."""
    import torch

    from face2param.methods.identity_surrogate import (PHOTO_MEAN, load_photo_mean, photo_mean_descriptor,
                                                       render_domain_loss)

    embed = lambda x, probs: x * 2.0  # noqa: E731  (a linear stand-in for the surrogate)
    photo, photo_mean, render_mean = torch.tensor([[3.0, 1.0]]), torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    loss = render_domain_loss(embed, photo, photo_mean, render_mean)
    x = torch.tensor([[0.5, 1.5]], requires_grad=True)  # 2x = photo - photo_mean + render_mean = (1, 3)
    assert float(loss(x, {})) == pytest.approx(0.0)
    away = torch.tensor([[1.5, 0.5]], requires_grad=True)  # its descriptor is the raw photo's
    value = loss(away, {})
    value.sum().backward()
    assert float(value) == pytest.approx(8.0) and float(away.grad.abs().sum()) > 0
    # person-balanced: a person with three photos counts once
    mean = photo_mean_descriptor(np.array([[0.0], [0.0], [0.0], [3.0]]), ["a", "a", "a", "b"])
    assert mean == pytest.approx([1.5])
    assert load_photo_mean(PHOTO_MEAN).shape == (128,)


def test_distinct_term_pulls_along_the_photos_own_direction_and_stops_at_its_reach():
    """1 at the mean face, 0 once the render has moved from the mean face's descriptor along (photo - mean photo)
    as far as the photo lies from the mean photo; moving sideways does not count, moving further costs nothing."""
    import torch

    from face2param.methods.identity_surrogate import distinct_loss

    embed = lambda x, probs: x  # noqa: E731
    photo, photo_mean, render_mean = torch.tensor([[3.0, 4.0]]), torch.tensor([[3.0, 2.0]]), torch.tensor([[0.0, 0.0]])
    loss = distinct_loss(embed, photo, photo_mean, render_mean)  # direction (0, 1), reach 2
    at = lambda *v: float(loss(torch.tensor([list(v)]), {}))  # noqa: E731
    assert at(0.0, 0.0) == pytest.approx(1.0)
    assert at(0.0, 1.0) == pytest.approx(0.25) and at(5.0, 1.0) == pytest.approx(0.25)  # sideways: no credit
    assert at(0.0, 2.0) == pytest.approx(0.0) and at(0.0, 5.0) == pytest.approx(0.0)
    x = torch.zeros(1, 2, requires_grad=True)
    loss(x, {}).sum().backward()
    assert float(x.grad[0, 1]) < 0 and float(x.grad[0, 0]) == 0.0  # descent moves along the direction only


def _labelled_folder(tmp_path):
    import cv2

    skimage = pytest.importorskip("skimage.data")
    lfw = skimage.lfw_subset()
    other = np.full((300, 300, 3), 128, np.uint8)
    other[50:250, 50:250] = cv2.resize((lfw[0] * 255).astype(np.uint8), (200, 200),
                                       interpolation=cv2.INTER_CUBIC)[..., None]
    folder = tmp_path / "labelled"
    folder.mkdir()
    labels = {}
    for person, gender, image in (("astronaut", "female", skimage.astronaut()), ("lfw0", "male", other)):
        for index, (scale, dx, dy) in enumerate([(1.0, 0, 0), (0.9, 20, 15)]):
            moved = cv2.warpAffine(image, np.float32([[scale, 0, dx], [0, scale, dy]]), image.shape[1::-1],
                                   borderValue=(128, 128, 128))
            Image.fromarray(moved).save(folder / f"{person}{index}.png")
            labels[f"{person}{index}.png"] = {"person": person, "gender": gender}
    (folder / "labels.json").write_text(json.dumps({"photos": labels}))
    return folder


def test_labelled_folder_gets_likeness_section_and_contact_sheet(tmp_path):
    """The default method (here the mean face, for speed) is fitted even when not listed; every render is
    the same face, so same- and different-person render pairs tie (AUC 0.5) while the photos separate."""
    config = dataclasses.replace(Face2ParamConfig(), method="mean")
    out = tmp_path / "report"
    summary = evaluate_photo_methods(_labelled_folder(tmp_path), out, ("mean",), config, recovery_samples=0,
                                     eval_config=PhotoEvalConfig(render_size=256, tile_size=96))
    likeness = summary["likeness"]
    assert likeness["method"] == "mean" and likeness["photos"] == 4 and likeness["people"] == 2
    assert likeness["photo_auc"] == 1.0 and likeness["render_auc"] == 0.5
    assert (out / "contact_sheet.html").is_file() and "lfw01.png" in (out / "contact_sheet.html").read_text()
    sheet = np.asarray(Image.open(out / "contact_sheet.png"))
    assert sheet.shape[0] >= 128 and sheet.shape[1] == 4 * 3 * 128  # 4 photo|render|mean triplets a row
    assert summary["methods"]["mean"]["plausibility"]["at_bound_max"] == 0.0


@pytest.mark.slow
def test_default_method_on_faces_identity_keeps_fits_plausible_and_people_apart(tmp_path):
    """The issue's plausibility targets on the default method, and identity floors a margin below measured
    full runs (`avatar eval photo --dir faces-identity --methods auto`, 61 photos: render AUC 0.952 and 0.957,
    nearest photo 0.656 and 0.639 (interior slack 0 and 2 px); with the iterative fit's line search and early
    stop 0.967 / 0.672; the mean face gets AUC 0.5, chance is ~0.1). Fits on one torch thread, as the photo job
    (the same figures; two threads on a loaded 2-core machine took twice the wall time).

    The evaluation runs in a fresh process, as `avatar eval photo` does: after other test files in the same
    pytest process one borderline photo (img34, one-shot at 30 deg yaw) came out 13 % at bound (Mahalanobis
    220 against 74.7 in a fresh evaluation). The face caches keyed by id(engine) were one such leak (fixed);
    the other was the one-shot projection's mesh pass, whose full Newton steps turned 1e-7 differences into
    other fits (damped since: FacePriorConfig.constrain_halvings)."""
    import subprocess
    import sys

    if not (FACES_IDENTITY / "labels.json").is_file():
        pytest.skip(f"{FACES_IDENTITY} not found")
    config = Face2ParamConfig()
    script = (
        "import json, sys\n"
        "from avatarclip_core.device import torch_threads\n"
        "from face2param.config import Face2ParamConfig\n"
        "from face2param.evaluation import evaluate_photo_methods\n"
        "with torch_threads(1):\n"
        "    summary = evaluate_photo_methods(sys.argv[1], sys.argv[2], ('mean',), Face2ParamConfig(), recovery_samples=0)\n"
        "open(sys.argv[3], 'w').write(json.dumps(summary))\n")
    out = tmp_path / "summary.json"
    subprocess.run([sys.executable, "-c", script, str(FACES_IDENTITY), str(tmp_path / "report"), str(out)],
                   check=True, timeout=1800)
    summary = json.loads(out.read_text())
    default = summary["methods"][config.method]["plausibility"]
    assert default["fits_over_10%_at_bound"] == 0 and default["fits_with_inverted_triangles"] == 0
    assert default["max_edge_ratio_max"] <= 2.5
    assert default["fits_failing_mesh_check"] == 0  # no mouth interior through the skin either
    likeness = summary["likeness"]
    assert likeness["photos"] >= 55
    assert likeness["render_auc"] >= RENDER_AUC_FLOOR
    assert likeness["nearest_photo_rate"] >= NEAREST_FLOOR
    # what the default method's avatars show (measured: gender 1.0, hair length 0.984, beard 0.984, glasses 1.0)
    shown = summary["attributes"]["shown_by_fit"][config.method]["accuracy"]
    assert shown["gender"] >= 0.95 and shown["hair_length"] >= 0.9
    assert shown["beard"] >= 0.93 and shown["glasses"] >= 0.95
    assert summary["attributes"]["detector"]["skin"]["all_darker"]


RENDER_AUC_FLOOR = 0.90  # measured 0.952 (the mean face: 0.5; the target: 0.85)
NEAREST_FLOOR = 0.57  # measured 0.656 (40 of 61) and 0.639; chance over 13 people: about 0.1; the target: 0.6


def test_render_domain_runs_get_leave_one_person_out_photo_means(tmp_path):
    """With the render-domain identity term on, `avatar eval photo` fits each person's photos with a photo mean
    computed without that person (the packaged mean was computed on faces-identity itself)."""
    from face2param.evaluation.lopo_mean import lopo_photo_means, needs_lopo_photo_mean
    from face2param.methods.identity_surrogate import load_photo_mean

    folder = _labelled_folder(tmp_path)
    config = Face2ParamConfig()
    on = dataclasses.replace(config, iterative=dataclasses.replace(config.iterative, identity_render_domain=True))
    assert not needs_lopo_photo_mean(config, True) and not needs_lopo_photo_mean(on, False)
    assert needs_lopo_photo_mean(on, True)
    labels = json.loads((folder / "labels.json").read_text())["photos"]
    photos = sorted(folder.glob("*.png"))
    analyses, configs = lopo_photo_means(photos, labels, on, tmp_path / "report")
    assert set(analyses) == set(configs) == {p.name for p in photos}
    for name, person_config in configs.items():
        person = labels[name]["person"]
        others = [analyses[n].embedding for n in analyses if labels[n]["person"] != person]
        mean = load_photo_mean(Path(person_config.iterative.identity_photo_mean))
        assert person in person_config.iterative.identity_photo_mean
        np.testing.assert_allclose(mean, np.mean(others, 0), atol=1e-5)


def test_a_named_photo_mean_that_is_missing_is_the_users_error(tmp_path):
    from skimage import data

    from avatarclip_core.errors import UserInputError
    from face2param.methods.fit import fit

    config = Face2ParamConfig()
    config = dataclasses.replace(config, method="iterative", iterative=dataclasses.replace(
        config.iterative, identity_render_domain=True, identity_photo_mean=str(tmp_path / "none.npz"), iterations=1))
    with pytest.raises(UserInputError, match="identity_photo_mean: no file"):
        fit(data.astronaut(), "iterative", config=config)
