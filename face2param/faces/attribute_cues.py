"""Measurements behind the photo attributes (faces/attributes.py decides from them).

Everything is measured on the face analysis's own crop, person mask and mesh (faces/regions.py,
faces/appearance.py): nothing is detected twice. Zones are placed in the face-aligned frame of
appearance.py (origin between the eyes, x along the eye line, units of the eye distance), on the crop
rescaled so the eye distance is `iod_px` pixels: a selfie and a small face in a group photo give
texture and edge measures on the same scale. Ratios are taken against the upper cheeks of the same
face, so exposure and skin tone cancel to first order.

Measured on the 61 photos of ../shared/data/faces-identity (13 people) when written; the thresholds
that read these cues live in AttributeConfig with those numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from face2param.faces import appearance as ap
from face2param.faces.config import CueConfig
from face2param.faces.landmarks import FACE_OVAL

CHIN, FOREHEAD_TOP = 152, 10
JAW_CORNERS = (172, 397)
FACE_SIDES = (234, 454)


@dataclass
class AttributeCues:
    skin_rgb: tuple[float, float, float]  # white-balanced cheek/forehead median, 0-255
    skin_ita: float  # individual typology angle (degrees) of skin_rgb: > 55 very light ... < 10 brown/dark
    skin_lightness: float  # L* of skin_rgb
    hair_lab: tuple[float, float, float] | None  # L*, a*, b* of the white-balanced hair median (None: no hair seen)
    hair_like_skin: bool  # the "hair" above the face is skin-coloured (a bald scalp, or very fair hair)
    hair_below_jaw: float  # hair-like fraction beside the neck, from just above the chin to 0.8 below
    hair_beside_face: float  # hair-like fraction just outside the face oval between the eyes and the chin
    hair_view: float  # fraction of the below-jaw zone inside the photo (a tight crop cannot show length)
    scalp_texture: float  # Laplacian energy above the forehead / cheeks (smooth scalp ~0.5, hair > 0.8)
    beard_darkness: dict[str, float]  # zone -> 1 - luma(zone) / luma(upper cheeks): moustache, chin, jaw
    glasses_edges: dict[str, float]  # bridge / under-eye: strongest straight horizontal edge / cheek gradient
    white_balance_gains: tuple[float, float, float]
    greyscale: bool

    def to_json(self) -> dict:
        def r(v):
            if isinstance(v, dict):
                return {k: round(float(x), 4) for k, x in v.items()}
            if isinstance(v, (tuple, list)):
                return [round(float(x), 4) for x in v]
            return round(float(v), 4) if isinstance(v, float) else v
        return {k: r(v) for k, v in vars(self).items()}


def _lab(rgb) -> np.ndarray:
    pixel = np.clip(np.asarray(rgb, np.float32), 0, 255).reshape(1, 1, 3) / 255.0
    return cv2.cvtColor(pixel, cv2.COLOR_RGB2LAB)[0, 0].astype(np.float64)  # L 0-100, a/b signed


def ita_degrees(rgb) -> float:
    """Individual typology angle arctan((L* - 50) / b*) of an sRGB colour (0-255)."""
    lightness, _, b = _lab(rgb)
    return float(np.degrees(np.arctan2(lightness - 50.0, b)))


def white_balance_gains(view: ap.AppearanceView, limit: float) -> np.ndarray:
    """Grey-world gains of the whole analysis crop (face, hair, clothes, background), clamped: a strong
    colour cast of the light (tungsten, stage light) is partly undone, a coloured backdrop cannot pull
    the skin far."""
    inside = view.inside if view.inside is not None else np.ones(view.crop.shape[:2], bool)
    mean = view.crop[::4, ::4][inside[::4, ::4]].reshape(-1, 3).astype(np.float64).mean(0)  # a 1/16 sample is plenty
    gains = mean.mean() / np.maximum(mean, 1.0)
    return np.clip(gains, 1.0 - limit, 1.0 + limit)


@dataclass
class _Frame:
    image: np.ndarray  # (S, S, 3) float32 0-255
    luma: np.ndarray
    uv: np.ndarray  # (S, S, 2) face-frame coordinates
    mesh: np.ndarray  # (478, 2) mesh in the frame
    points: np.ndarray  # (478, 2) mesh in frame pixels
    person: np.ndarray
    inside: np.ndarray
    cheeks: np.ndarray  # upper-cheek reference discs


def _frame(view: ap.AppearanceView, config: CueConfig) -> _Frame:
    points = np.asarray(view.points, np.float64)[:, :2]
    _, _, iod = ap.face_frame(points)
    scale = config.iod_px / iod
    size = max(32, int(round(view.crop.shape[0] * scale)))
    scale = size / view.crop.shape[0]
    image = cv2.resize(view.crop, (size, size), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    image = image.astype(np.float32)
    points = points * scale
    origin, axis, iod = ap.face_frame(points)
    uv = ap.pixel_grid_to_frame(size, size, origin, axis, iod)
    mesh = ap.to_frame(points, origin, axis, iod)
    inside = np.ones(view.person.shape, bool) if view.inside is None else view.inside
    cheeks = np.zeros((size, size), np.uint8)  # discs drawn in pixels: the frame is a similarity of them
    for index in ap.CHEEK_REFERENCE:
        x, y = points[index]
        cv2.circle(cheeks, (int(round(x)), int(round(y))), max(1, int(round(config.cheek_disc * iod))), 1, -1)
    cheeks = cheeks > 0
    return _Frame(image, image @ ap.LUMA, uv, mesh, points, ap._resized_mask(view.person, size),
                  ap._resized_mask(inside, size), cheeks)


def measure_cues(view: ap.AppearanceView, config: CueConfig = CueConfig()) -> AttributeCues:
    """All attribute cues of one analysed face (its AppearanceView from faces/regions.py)."""
    frame = _frame(view, config)
    gains = white_balance_gains(view, config.max_white_balance_gain)
    skin = np.asarray(view.skin if view.skin is not None else np.median(frame.image[frame.cheeks], 0), np.float64)
    skin_wb = np.clip(skin * gains, 0, 255)
    hair_lab = None if view.hair is None else tuple(float(v) for v in _lab(np.asarray(view.hair) * gains))
    below, beside, seen, texture = _hair_length(view, frame, config.iod_px)
    return AttributeCues(
        skin_rgb=tuple(float(v) for v in skin_wb), skin_ita=ita_degrees(skin_wb),
        skin_lightness=float(_lab(skin_wb)[0]), hair_lab=hair_lab,
        hair_like_skin=view.hair is None and _scalp_like_skin(view),
        hair_below_jaw=below, hair_beside_face=beside, hair_view=seen, scalp_texture=texture,
        beard_darkness=_beard_darkness(frame), glasses_edges=_glasses_edges(frame),
        white_balance_gains=tuple(float(g) for g in gains), greyscale=bool(view.greyscale))


def _scalp_like_skin(view: ap.AppearanceView) -> bool:
    """regions.py drops a hair colour that is the skin's (bald scalp): hair None with person pixels above
    the face means the scalp itself was seen."""
    points = np.asarray(view.points)[:, :2]
    top = points[list(FACE_OVAL), 1].min()
    x0, x1 = points[list(FACE_OVAL), 0].min(), points[list(FACE_OVAL), 0].max()
    band = view.person[max(0, int(top - 0.25 * (x1 - x0))):max(0, int(top)), int(max(0, x0)):int(max(0, x1))]
    return bool(band.size and band.mean() > 0.5)


def _laplacian(luma: np.ndarray) -> np.ndarray:
    return np.abs(cv2.Laplacian(cv2.GaussianBlur(luma, (3, 3), 0), cv2.CV_32F))


def _hair_length(view: ap.AppearanceView, frame: _Frame, iod_px: int) -> tuple[float, float, float, float]:
    """(below-jaw, beside-face, seen, scalp texture). Hair pixels: appearance.py's hair-like person pixels
    outside the dilated face oval that hang from the scalp (dark clothes are separate regions)."""
    config = ap.AppearanceConfig()
    skin = np.asarray(view.skin if view.skin is not None else (128, 128, 128), np.float32)
    hair_like = ap._hair_like(frame.image, skin, view.hair, config)
    oval = ap.polygon_mask(frame.person.shape, frame.points[list(FACE_OVAL)])
    grow = max(1, int(round(config.oval_margin * iod_px)))
    oval = cv2.dilate(oval.astype(np.uint8), np.ones((2 * grow + 1,) * 2, np.uint8)) > 0
    hair = ap._attached_to_scalp(frame.person & hair_like & ~oval, frame.uv)
    u, v = frame.uv[..., 0], frame.uv[..., 1]
    chin = frame.mesh[CHIN, 1]
    half = float(np.abs(frame.mesh[list(FACE_SIDES), 0]).max())
    below = (v > chin - 0.4) & (v < chin + 0.8) & (np.abs(u) > 0.9 * half) & (np.abs(u) < half + 1.0)
    beside = (v > 0.4) & (v < chin - 0.3) & (np.abs(u) > half + 0.05) & (np.abs(u) < half + 0.5)
    top = frame.mesh[FOREHEAD_TOP, 1]
    scalp = (v < top - 0.1) & (v > top - 0.6) & (np.abs(u) < 0.6) & frame.person
    lap = _laplacian(frame.luma)
    reference = float(np.median(lap[frame.cheeks])) + 1.0 if frame.cheeks.any() else 1.0
    seen = float(frame.inside[below].mean()) if below.any() else 0.0
    return (_fraction(hair, below & frame.inside), _fraction(hair, beside & frame.inside), seen,
            float(np.median(lap[scalp])) / reference if scalp.sum() > 20 else float("nan"))


def _fraction(mask: np.ndarray, zone: np.ndarray) -> float:
    return float(mask[zone].mean()) if zone.any() else 0.0


def _beard_darkness(frame: _Frame) -> dict[str, float]:
    """1 - median luma / upper-cheek luma in the moustache, chin and jaw zones (appearance.py's zones)."""
    u, v = frame.uv[..., 0], frame.uv[..., 1]
    m = frame.mesh
    half_mouth = abs(m[ap.MOUTH_LEFT, 0] - m[ap.MOUTH_RIGHT, 0]) / 2
    nose, lip_top, lip_bottom, chin = m[ap.NOSE_BOTTOM, 1], m[ap.UPPER_LIP_TOP, 1], m[ap.LOWER_LIP_BOTTOM, 1], m[CHIN, 1]
    jaw_half = float(np.abs(m[list(JAW_CORNERS), 0]).mean())
    zones = {
        "moustache": (v > nose + 0.25 * (lip_top - nose)) & (v < lip_top - 0.1 * (lip_top - nose)) & (np.abs(u) < half_mouth),
        "chin": (v > lip_bottom + 0.15 * (chin - lip_bottom)) & (v < chin - 0.1 * (chin - lip_bottom)) & (np.abs(u) < 0.6 * half_mouth),
        "jaw": (v > m[ap.MOUTH_RIGHT, 1]) & (v < chin - 0.1) & (np.abs(u) > 1.2 * half_mouth) & (np.abs(u) < jaw_half - 0.1),
    }
    reference = float(np.median(frame.luma[frame.cheeks])) if frame.cheeks.any() else float(frame.luma.mean())
    return {k: (1.0 - float(np.median(frame.luma[z])) / max(reference, 1e-6)) if z.any() else 0.0
            for k, z in zones.items()}


def _row_edge(gy: np.ndarray, v: np.ndarray, zone: np.ndarray, row: float = 0.04) -> float:
    """Strongest mean |d luma / dy| along one row band of the zone: a frame's rim or bridge is a straight
    line across the whole zone, while skin creases and lashes are short."""
    if zone.sum() < 10:
        return 0.0
    rows = np.round(v[zone] / row).astype(np.int64)
    rows -= rows.min()
    sums, counts = np.bincount(rows, np.abs(gy[zone])), np.bincount(rows)
    full = counts > 5
    return float((sums[full] / counts[full]).max()) if full.any() else 0.0


def _glasses_edges(frame: _Frame) -> dict[str, float]:
    """Bridge (between the eyes, up to 0.35 above the eye line) and under-eye (the lower rims) edge
    strength relative to the cheeks' median gradient."""
    gy = cv2.Sobel(frame.luma, cv2.CV_32F, 0, 1, ksize=3) / 4
    gx = cv2.Sobel(frame.luma, cv2.CV_32F, 1, 0, ksize=3) / 4
    reference = float(np.median(np.hypot(gx, gy)[frame.cheeks])) + 1.0 if frame.cheeks.any() else 1.0
    u, v = frame.uv[..., 0], frame.uv[..., 1]
    bridge = (np.abs(u) < 0.15) & (v > -0.35) & (v < 0.1)
    under = (np.abs(u) > 0.3) & (np.abs(u) < 0.75) & (v > 0.15) & (v < 0.55)
    return {"bridge": _row_edge(gy, v, bridge) / reference, "under_eyes": _row_edge(gy, v, under) / reference}
