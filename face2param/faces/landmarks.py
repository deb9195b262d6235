"""Dense and sparse landmarks of one chosen face.

`face_mesh_478`: mediapipe Face Mesh (static image mode, refined eyes/lips/irises) on a square
crop around the face box, so the mesh follows the face we chose even in a group photo and small
faces are upsampled. Output (478, 3): x, y in image pixels; z in the same pixel scale as x
(mediapipe's relative depth, negative towards the camera, origin near the head's centre).

`dlib_landmarks_68`: dlib's 68-point shape predictor (iBUG 300-W scheme). It was trained on boxes
from dlib's HOG detector, so a mediapipe box is first converted with `dlib_style_box`.

`MESH_TO_68`: which mesh point stands for each of the 68 points (a group is averaged): a
hand-made, left-right symmetric correspondence on mediapipe's canonical face, whose jaw,
nostril and inner-lip points were then re-picked on dlib's training XML (the 2-D jaw contour
lies inside the 3-D mesh's outline) and checked on its testing XML: mean NME 0.054 -> 0.046.
"""
from __future__ import annotations

import cv2
import numpy as np

from face2param.faces import models
from face2param.faces.config import LandmarkConfig
from face2param.faces.detect import FaceBox
from face2param.faces.errors import NoFaceError


# fmt: off
MESH_TO_68: tuple[tuple[int, ...], ...] = (
    # jaw 0-16, from the subject's right ear (image left) round the chin
    (127,), (227,), (177,), (215,), (172,), (136,), (149,), (148,), (152,), (377,), (378,),
    (365,), (397,), (435,), (401,), (454,), (356,),
    # brows 17-21 (subject's right), 22-26 (left)
    (70,), (63,), (105,), (66,), (107,), (336,), (296,), (334,), (293,), (300,),
    # nose bridge 27-30, nostrils 31-35
    (168,), (197,), (5,), (4,), (75,), (97,), (2,), (326,), (305,),
    # right eye 36-41 (outer corner first), left eye 42-47 (inner corner first)
    (33,), (160,), (158,), (133,), (153,), (144,), (362,), (385,), (387,), (263,), (373,), (380,),
    # outer lips 48-59, inner lips 60-67
    (61,), (40,), (37,), (0,), (267,), (270,), (291,), (321,), (314,), (17,), (84,), (91,),
    (78,), (38,), (13,), (268,), (308,), (317,), (14,), (87,),
)
# fmt: on
# Useful mesh groups (mediapipe's own index lists, in its canonical face topology).
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
             377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67,
             109)
RIGHT_EYE_CONTOUR = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
LEFT_EYE_CONTOUR = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390,
                    249)
RIGHT_IRIS = (468, 469, 470, 471, 472)  # centre first; the subject's right eye (image left)
LEFT_IRIS = (473, 474, 475, 476, 477)

# dlib-style box from the 68 points' bounding box (side s, centre c): side 1.07 s, centre
# 0.074 s above c. Measured on the 43 annotated faces of dlib's example XMLs (std 0.10 / 0.05).
_DLIB_BOX_SCALE = 1.07
_DLIB_BOX_RAISE = 0.074
_HOG_FACE_PX = 100  # HOG's window is 80 px: faces are brought to about this size


def face_mesh_478(image: np.ndarray, box: FaceBox,
                  config: LandmarkConfig = LandmarkConfig()) -> np.ndarray:
    """(478, 3) mesh points of the face in `box`; NoFaceError if Face Mesh finds none there."""
    side = max(box.width, box.height) * config.mesh_crop_scale
    scale = config.mesh_crop_px / side
    center = box.center
    to_crop = np.array([[scale, 0.0, config.mesh_crop_px / 2 - scale * center[0]],
                        [0.0, scale, config.mesh_crop_px / 2 - scale * center[1]]])
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    crop = cv2.warpAffine(image, to_crop, (config.mesh_crop_px, config.mesh_crop_px),
                          flags=interpolation, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(128, 128, 128))
    mesh = models.mediapipe_face_mesh(config.mesh_min_confidence)
    # its first-face warning comes with the first landmarks found, not with the first call
    result = mesh.process(crop, answered=lambda r: bool(r.multi_face_landmarks))
    if not result.multi_face_landmarks:
        raise NoFaceError(
            f"a face was detected at x={box.left:.0f}, y={box.top:.0f} ({box.width:.0f} px wide) "
            "but its landmarks could not be found: use a sharper, more frontal photo")
    points = np.array([[p.x, p.y, p.z] for p in result.multi_face_landmarks[0].landmark],
                      dtype=np.float64) * config.mesh_crop_px
    points[:, 0] = (points[:, 0] - to_crop[0, 2]) / scale
    points[:, 1] = (points[:, 1] - to_crop[1, 2]) / scale
    points[:, 2] = points[:, 2] / scale
    return points


def mesh_to_68(mesh: np.ndarray) -> np.ndarray:
    """(478 or 468, D) mesh points -> (68, D) in the iBUG 300-W scheme via MESH_TO_68."""
    return np.stack([mesh[list(group)].mean(axis=0) for group in MESH_TO_68])


def dlib_style_box(points_68: np.ndarray, source: str = "landmarks") -> FaceBox:
    """The box dlib's HOG detector would give for a face with these 68 points (2-D or 3-D)."""
    low, high = points_68[:, :2].min(axis=0), points_68[:, :2].max(axis=0)
    extent = float((high - low).max())
    side = _DLIB_BOX_SCALE * extent
    cx, cy = (low + high) / 2
    cy -= _DLIB_BOX_RAISE * extent
    return FaceBox(cx - side / 2, cy - side / 2, side, side, 1.0, source)


def dlib_predictor_box(image: np.ndarray, mesh_68: np.ndarray) -> FaceBox:
    """The box to run dlib's predictor on: dlib's own HOG box when the HOG detector, run on a
    small crop around the face (~15 ms), finds the same face; else `dlib_style_box`. The
    predictor is sensitive to box placement on small faces: on dlib's 37 px training faces the
    derived box alone gave 0.13 mean NME against 0.03 on annotated HOG boxes."""
    derived = dlib_style_box(mesh_68)
    scale = _HOG_FACE_PX / derived.width
    side = int(round(derived.width * scale * 2.2))
    cx, cy = derived.center
    to_crop = np.array([[scale, 0.0, side / 2 - scale * cx], [0.0, scale, side / 2 - scale * cy]])
    crop = cv2.warpAffine(np.ascontiguousarray(image), to_crop, (side, side),
                          flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    detector = models.dlib_hog_detector()
    with detector.lock:
        rects, scores, _ = detector.model.run(crop, 0, -0.5)
    best, best_overlap = derived, 0.5  # a HOG box must overlap the derived one this well
    for rect in rects:
        box = FaceBox((rect.left() - to_crop[0, 2]) / scale, (rect.top() - to_crop[1, 2]) / scale,
                      rect.width() / scale, rect.height() / scale, 1.0, "dlib_hog")
        overlap = _iou(box, derived)
        if overlap > best_overlap:
            best, best_overlap = box, overlap
    return best


def _iou(a: FaceBox, b: FaceBox) -> float:
    width = max(0.0, min(a.right, b.right) - max(a.left, b.left))
    height = max(0.0, min(a.bottom, b.bottom) - max(a.top, b.top))
    return width * height / max(1e-9, a.area + b.area - width * height)


def dlib_landmarks_68(image: np.ndarray, box: FaceBox) -> np.ndarray:
    """(68, 2) dlib shape-predictor points (pixels) for the face in a dlib-style box."""
    import dlib

    rect = _dlib_rect(box)
    predictor = models.dlib_shape_predictor_68()
    with predictor.lock:
        shape = predictor.model(np.ascontiguousarray(image), rect)
    return np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)],
                    dtype=np.float64)


def dlib_full_object_detection(image: np.ndarray, points_68: np.ndarray, box: FaceBox):
    """dlib's shape object for given points (what the identity network's face chip needs)."""
    import dlib

    rect = _dlib_rect(box)
    parts = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in points_68[:, :2]])
    return dlib.full_object_detection(rect, parts)


def _dlib_rect(box: FaceBox):
    import dlib

    return dlib.rectangle(int(round(box.left)), int(round(box.top)), int(round(box.right)),
                          int(round(box.bottom)))
