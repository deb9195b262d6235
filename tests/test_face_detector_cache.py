"""dlib's frontal HOG detector comes from a copy saved in the user cache folder (a cold start saves
~0.65 s CPU): the copy finds the same boxes with the same scores as dlib's built-in detector, is written
once, and a damaged copy or an unwritable folder falls back to the built-in one."""
from __future__ import annotations

import numpy as np
import skimage.data


def _run(detector, image):
    rects, scores, kinds = detector.run(image, 1, -0.5)
    return [(r.left(), r.top(), r.right(), r.bottom()) for r in rects], list(scores), list(kinds)


def test_the_saved_detector_finds_what_dlibs_own_finds(tmp_path, monkeypatch):
    import dlib

    from face2param.faces import models

    monkeypatch.setenv("AVATAR_CACHE_DIR", str(tmp_path))
    built = models._frontal_face_detector()  # no copy yet: built, then saved
    saved = tmp_path / "dlib" / f"frontal_face_detector-{dlib.__version__}.svm"
    assert saved.is_file() and not [p for p in saved.parent.iterdir() if p.name.endswith(".tmp")]
    stamp = saved.stat().st_mtime_ns
    loaded = models._frontal_face_detector()  # the copy, not written again
    assert saved.stat().st_mtime_ns == stamp
    reference = dlib.get_frontal_face_detector()
    image = np.ascontiguousarray(skimage.data.astronaut())
    expected = _run(reference, image)
    assert expected[0] and len(set(expected[1])) == len(expected[1])  # boxes, scores: things that could differ
    assert _run(built, image) == expected and _run(loaded, image) == expected


def test_a_damaged_copy_or_an_unwritable_folder_falls_back_to_dlibs_detector(tmp_path, monkeypatch):
    import dlib

    from face2param.faces import models

    monkeypatch.setenv("AVATAR_CACHE_DIR", str(tmp_path))
    saved = tmp_path / "dlib" / f"frontal_face_detector-{dlib.__version__}.svm"
    saved.parent.mkdir(parents=True)
    saved.write_bytes(b"not a detector")
    image = np.ascontiguousarray(skimage.data.astronaut())
    expected = _run(dlib.get_frontal_face_detector(), image)
    assert _run(models._frontal_face_detector(), image) == expected
    assert _run(dlib.fhog_object_detector(str(saved)), image) == expected  # rebuilt and saved again

    blocker = tmp_path / "a-file"  # a cache folder that cannot be made, even by root
    blocker.write_text("x")
    monkeypatch.setenv("AVATAR_CACHE_DIR", str(blocker / "cache"))
    assert _run(models._frontal_face_detector(), image) == expected
    assert blocker.read_text() == "x"
