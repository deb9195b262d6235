"""Evaluation helpers of face analysis: dlib-XML landmark scores, identity separation, reports.
Data comes from scikit-image (astronaut, LFW subset) and files the tests write."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from avatarclip_core.errors import OutputExistsError, UserInputError
from face2param.evaluation import (ImagePair, evaluate_face_analysis, evaluate_landmarks,
                                   identity_separation, normalised_errors, read_dlib_xml,
                                   write_report)
from face2param.faces.analysis import analyse_face
from face2param.faces.landmarks import dlib_predictor_box, mesh_to_68


@pytest.fixture(scope="module")
def astronaut():
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def annotated_astronaut(astronaut):
    """dlib's own points on its HOG box: a ground truth in the format of dlib's example sets."""
    analysis = analyse_face(astronaut)
    box = dlib_predictor_box(astronaut, mesh_to_68(analysis.landmarks_478))
    return box, analysis.landmarks_68


def _write_xml(folder, image_name, box, points) -> str:
    parts = "".join(f"<part name='{i:02d}' x='{x:.0f}' y='{y:.0f}'/>" for i, (x, y)
                    in enumerate(points))
    few = "".join(f"<part name='{i:02d}' x='1' y='1'/>" for i in range(5))
    xml = (f"<?xml version='1.0'?><dataset><images><image file='{image_name}'>"
           f"<box top='{box.top:.0f}' left='{box.left:.0f}' width='{box.width:.0f}' "
           f"height='{box.height:.0f}'>{parts}</box>"
           f"<box top='0' left='0' width='50' height='50'>{few}</box>"  # not 68 points: skipped
           f"</image></images></dataset>")
    path = folder / "set_with_face_landmarks.xml"
    path.write_text(xml)
    return path


def _shifted(image, scale, dx, dy):
    return cv2.warpAffine(image, np.float32([[scale, 0, dx], [0, scale, dy]]),
                          image.shape[1::-1], borderValue=(128, 128, 128))


def test_normalised_error_is_relative_to_the_outer_eye_corners():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 100, size=(68, 2))
    truth[36], truth[45] = [20, 40], [70, 40]  # 50 px apart
    moved = truth + [5.0, 0.0]
    np.testing.assert_allclose(normalised_errors(moved, truth), np.full(68, 0.1))


def test_landmark_scores_on_a_dlib_style_xml(tmp_path, astronaut, annotated_astronaut):
    box, points = annotated_astronaut
    Image.fromarray(astronaut).save(tmp_path / "astronaut.png")
    faces = read_dlib_xml(_write_xml(tmp_path, "astronaut.png", box, points))
    assert len(faces) == 1 and faces[0].image_path == tmp_path / "astronaut.png"
    scores, per_face = evaluate_landmarks(faces)
    assert all(s.faces == 1 and s.failures == 0 for s in scores.values())
    assert scores["dlib68"].mean_nme < 0.01  # the same predictor on the same box
    assert scores["dlib68_mesh_box"].mean_nme < 0.02
    assert 0.0 < scores["mesh68"].mean_nme < 0.1
    assert set(scores["mesh68"].part_nme) == {"jaw", "brows", "nose", "eyes", "mouth"}
    assert per_face[0]["predictions"]["mesh68"].shape == (68, 2)


def test_identity_separation_tells_two_people_apart(tmp_path, astronaut):
    lfw = skimage.data.lfw_subset()
    face = cv2.resize((lfw[0] * 255).astype(np.uint8), (200, 200), interpolation=cv2.INTER_CUBIC)
    other = np.full((300, 300), 128, np.uint8)
    other[50:250, 50:250] = face
    (tmp_path / "astronaut").mkdir()
    (tmp_path / "lfw0").mkdir()
    for index, (scale, dx, dy) in enumerate([(1.0, 0, 0), (0.85, 30, 20), (0.9, 10, 40)]):
        Image.fromarray(_shifted(astronaut, scale, dx, dy)).save(tmp_path / "astronaut" / f"{index}.png")
    for index, (scale, dx, dy) in enumerate([(1.0, 0, 0), (0.9, 20, 10)]):
        Image.fromarray(_shifted(other, scale, dx, dy)).save(tmp_path / "lfw0" / f"{index}.png")
    Image.fromarray(np.full((100, 100, 3), 90, np.uint8)).save(tmp_path / "lfw0" / "blank.png")
    (tmp_path / "lfw0" / "notes.txt").write_text("ignored: not an image suffix")

    result = identity_separation(tmp_path)
    assert (result.people, result.images) == (2, 6)
    assert list(result.failed) == [str(tmp_path / "lfw0" / "blank.png")]
    assert (result.genuine_pairs, result.impostor_pairs) == (3 + 1, 3 * 2)
    assert result.genuine_distance["max"] < result.impostor_distance["min"]
    assert result.roc_auc == 1.0 and result.best_accuracy == 1.0
    assert result.accuracy_at_dlib_threshold == 1.0 and result.d_prime > 2

    with pytest.raises(UserInputError, match="at least two subfolders"):
        identity_separation(tmp_path / "astronaut")


def test_report_writes_json_html_and_image_pairs(tmp_path):
    left = np.zeros((32, 48, 3), np.uint8)
    right = np.full((32, 48, 3), 200, np.uint8)
    paths = write_report(tmp_path, "A <title>", {"nme": float("nan"), "count": np.int64(3)},
                         [ImagePair("first", left, right, caption="a & b", metrics={"e": 0.5})])
    report = json.loads(paths["json"].read_text())
    assert report["summary"] == {"nme": None, "count": 3}
    pair = report["pairs"][0]
    assert np.asarray(Image.open(tmp_path / pair["right"])).shape == (32, 48, 3)
    page = paths["html"].read_text()
    assert "A &lt;title&gt;" in page and pair["left"] in page and "a &amp; b" in page


def test_face_analysis_evaluation_end_to_end(tmp_path, astronaut, annotated_astronaut):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(astronaut).save(photos / "astronaut.png")
    Image.fromarray(np.full((128, 128, 3), 90, np.uint8)).save(photos / "blank.png")
    _write_xml(photos, "astronaut.png", *annotated_astronaut)
    out = tmp_path / "report"
    summary = evaluate_face_analysis(photos, out)
    assert (out / "report.json").is_file() and (out / "index.html").is_file()
    assert summary["analysis"]["analysed"] == 1
    assert summary["analysis"]["per_photo"]["blank.png"]["error"] == "NoFaceError"
    assert summary["landmarks"]["set_with_face_landmarks.xml"]["mesh68"]["failures"] == 0
    assert len(list((out / "images").glob("*.png"))) >= 4
    with pytest.raises(OutputExistsError):
        evaluate_face_analysis(photos, out)
