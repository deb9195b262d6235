"""The body-shape space the shape VAE and code-book live in (Anny sliders, Y up, metres).

Coordinates = the 6 Anny phenotypes (gender, age, muscle, weight, height, proportions) plus the
local changes that alter the *overall* body shape: lengths, girths and breadths of legs, arms,
torso, hips, shoulders, chest, belly and neck (the ``measure-*`` targets and the torso / hip /
stomach / buttocks / limb fat groups). Left/right pairs are tied into one coordinate (a
whole-body code-book has no use for asymmetric limbs). Face, hand, foot and ear details are
left at their defaults: they hardly change a full-body render and belong to later stages.
Also skipped: position shifts (torso-/hip-trans-*), per-axis limb scales, and
upperlegs-/lowerlegs-height-incr (they move the mesh exactly like measure-upper/lowerleg-height).

Training distribution (``sample``): mostly adults (age >= 0.45: no children), both genders
(plus some androgynous blends), every weight, height and muscle level; local changes come from
9 latent "body proportion" factors (leg length, torso length, shoulder breadth, chest, belly,
hips, leg girth, arm length, arm girth) with fixed loadings plus a little independent noise, so
the 37-d space has about 15 intrinsic dimensions, which a 16-d VAE latent (the paper's size) can
represent.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PHENOTYPES = ("gender", "age", "muscle", "weight", "height", "proportions")
PHENOTYPE_DEFAULTS = {"gender": 0.5, "age": 0.67, "muscle": 0.5, "weight": 0.5, "height": 0.5, "proportions": 0.5}

# coordinate name -> the body sliders it drives (l-/r- pairs tied).
BODY_CHANGES: dict[str, tuple[str, ...]] = {
    "measure-upperleg-height-incr": ("measure-upperleg-height-incr",),
    "measure-lowerleg-height-incr": ("measure-lowerleg-height-incr",),
    "measure-napetowaist-dist-incr": ("measure-napetowaist-dist-incr",),
    "measure-waisttohip-dist-incr": ("measure-waisttohip-dist-incr",),
    "measure-neck-height-incr": ("measure-neck-height-incr",),
    "measure-shoulder-dist-incr": ("measure-shoulder-dist-incr",),
    "torso-vshape-incr": ("torso-vshape-incr",),
    "torso-scale-horiz-incr": ("torso-scale-horiz-incr",),
    "torso-scale-depth-incr": ("torso-scale-depth-incr",),
    "torso-muscle-pectoral-incr": ("torso-muscle-pectoral-incr",),
    "torso-muscle-dorsi-incr": ("torso-muscle-dorsi-incr",),
    "measure-bust-circ-incr": ("measure-bust-circ-incr",),
    "measure-underbust-circ-incr": ("measure-underbust-circ-incr",),
    "measure-frontchest-dist-incr": ("measure-frontchest-dist-incr",),
    "stomach-pregnant-incr": ("stomach-pregnant-incr",),
    "measure-waist-circ-incr": ("measure-waist-circ-incr",),
    "measure-hips-circ-incr": ("measure-hips-circ-incr",),
    "hip-scale-horiz-incr": ("hip-scale-horiz-incr",),
    "buttocks-volume-incr": ("buttocks-volume-incr",),
    "measure-thigh-circ-incr": ("measure-thigh-circ-incr",),
    "measure-knee-circ-incr": ("measure-knee-circ-incr",),
    "measure-calf-circ-incr": ("measure-calf-circ-incr",),
    "upperleg-fat-incr": ("l-upperleg-fat-incr", "r-upperleg-fat-incr"),
    "lowerleg-fat-incr": ("l-lowerleg-fat-incr", "r-lowerleg-fat-incr"),
    "measure-upperarm-length-incr": ("measure-upperarm-length-incr",),
    "measure-lowerarm-length-incr": ("measure-lowerarm-length-incr",),
    "measure-upperarm-circ-incr": ("measure-upperarm-circ-incr",),
    "upperarm-fat-incr": ("l-upperarm-fat-incr", "r-upperarm-fat-incr"),
    "lowerarm-fat-incr": ("l-lowerarm-fat-incr", "r-lowerarm-fat-incr"),
    "measure-wrist-circ-incr": ("measure-wrist-circ-incr",),
    "measure-neck-circ-incr": ("measure-neck-circ-incr",),
}

# factor -> {coordinate: loading}; also used to describe an entry in words (describe.py).
FACTORS: dict[str, dict[str, float]] = {
    "leg_length": {"measure-upperleg-height-incr": 0.7, "measure-lowerleg-height-incr": 0.7},
    "torso_length": {"measure-napetowaist-dist-incr": 0.7, "measure-waisttohip-dist-incr": 0.6,
                     "measure-neck-height-incr": 0.4},
    "shoulders": {"measure-shoulder-dist-incr": 0.9, "torso-vshape-incr": 0.7, "torso-scale-horiz-incr": 0.4,
                  "torso-muscle-dorsi-incr": 0.4},
    "chest": {"measure-bust-circ-incr": 0.8, "measure-underbust-circ-incr": 0.5,
              "measure-frontchest-dist-incr": 0.6, "torso-muscle-pectoral-incr": 0.5},
    "belly": {"stomach-pregnant-incr": 0.8, "measure-waist-circ-incr": 0.8, "torso-scale-depth-incr": 0.5},
    "hips": {"measure-hips-circ-incr": 0.9, "hip-scale-horiz-incr": 0.6, "buttocks-volume-incr": 0.7},
    "leg_girth": {"measure-thigh-circ-incr": 0.8, "measure-knee-circ-incr": 0.4, "measure-calf-circ-incr": 0.6,
                  "upperleg-fat-incr": 0.6, "lowerleg-fat-incr": 0.4},
    "arm_length": {"measure-upperarm-length-incr": 0.8, "measure-lowerarm-length-incr": 0.8},
    "arm_girth": {"measure-upperarm-circ-incr": 0.8, "upperarm-fat-incr": 0.6, "lowerarm-fat-incr": 0.5,
                  "measure-wrist-circ-incr": 0.3, "measure-neck-circ-incr": 0.4},
}
FACTOR_STD = 0.45
MIN_AGE = 0.45  # teenagers and older: decoded bodies are clipped here (no children in the code-book)
NOISE_STD = 0.04


@dataclass(frozen=True)
class ShapeSpace:
    """Names, ranges and defaults of the shape coordinates, and conversions to body sliders."""

    names: tuple[str, ...]
    ties: dict[str, tuple[str, ...]]
    lo: np.ndarray
    hi: np.ndarray
    neutral: np.ndarray

    @property
    def dim(self) -> int:
        return len(self.names)

    @property
    def num_phenotypes(self) -> int:
        return len(PHENOTYPES)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def clip(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x, self.lo, self.hi)

    def to_sliders(self, x: np.ndarray, decimals: int = 4) -> dict[str, float]:
        """Named body-slider values (tied pairs expanded), clipped to the slider ranges."""
        x = self.clip(np.asarray(x, dtype=np.float64).reshape(-1))
        out: dict[str, float] = {}
        for name, value in zip(self.names, x):
            for slider in self.ties.get(name, (name,)):
                out[slider] = round(float(value), decimals)
        return out

    def from_sliders(self, values: dict[str, float]) -> np.ndarray:
        """Coordinates from slider values (missing = neutral; a tied pair is averaged)."""
        x = self.neutral.copy()
        for i, name in enumerate(self.names):
            sliders = [s for s in self.ties.get(name, (name,)) if s in values]
            if sliders:
                x[i] = float(np.mean([values[s] for s in sliders]))
        return x

    def factor_loadings(self) -> np.ndarray:
        """(F, D) loadings of FACTORS over the coordinates."""
        L = np.zeros((len(FACTORS), self.dim))
        for f, loadings in enumerate(FACTORS.values()):
            for name, w in loadings.items():
                L[f, self.index(name)] = w
        return L

    def factor_scores(self, x: np.ndarray) -> np.ndarray:
        """(N, F) least-squares factor values explaining each row's local changes."""
        x = np.atleast_2d(x)
        L = self.factor_loadings()[:, self.num_phenotypes:]
        return (x[:, self.num_phenotypes:] - self.neutral[self.num_phenotypes:]) @ np.linalg.pinv(L)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, D) bodies from the training distribution (see the module docstring)."""
        u = rng.random
        gender = _mixture(rng, n, [(0.45, 0.0, 0.2), (0.45, 0.8, 1.0), (0.10, 0.2, 0.8)])
        age = _mixture(rng, n, [(0.15, 0.45, 0.62), (0.60, 0.62, 0.85), (0.25, 0.85, 1.0)])
        pheno = np.stack([gender, age, u(n), u(n), u(n), 0.2 + 0.8 * u(n)], axis=1)
        L = self.factor_loadings()
        z = np.clip(rng.normal(0.0, FACTOR_STD, size=(n, L.shape[0])), -1.0, 1.0)
        local = (z @ L)[:, self.num_phenotypes:] + rng.normal(0.0, NOISE_STD, size=(n, self.dim - self.num_phenotypes))
        return self.clip(np.concatenate([pheno, local], axis=1))

    def check_body(self, body) -> None:
        """Raise a UserInputError unless ``body`` has every slider this space drives (Anny)."""
        from avatarclip_core.errors import UserInputError

        have = {s.name for s in body.sliders()}
        missing = [s for name in self.names for s in self.ties.get(name, (name,)) if s not in have]
        if missing:
            raise UserInputError(
                f"the shape code-book is built for the Anny body; body model {getattr(body, 'name', '?')!r} "
                f"lacks the sliders {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")


def _mixture(rng: np.random.Generator, n: int, parts: list[tuple[float, float, float]]) -> np.ndarray:
    """n draws from a mixture of uniforms [(weight, low, high), ...]."""
    weights = np.array([p[0] for p in parts])
    which = rng.choice(len(parts), size=n, p=weights / weights.sum())
    lows = np.array([p[1] for p in parts])[which]
    highs = np.array([p[2] for p in parts])[which]
    return lows + (highs - lows) * rng.random(n)


def default_space() -> ShapeSpace:
    names = PHENOTYPES + tuple(BODY_CHANGES)
    lo = np.array([0.0] * len(PHENOTYPES) + [-1.0] * len(BODY_CHANGES))
    lo[PHENOTYPES.index("age")] = MIN_AGE
    hi = np.ones(len(names))
    neutral = np.array([PHENOTYPE_DEFAULTS[p] for p in PHENOTYPES] + [0.0] * len(BODY_CHANGES))
    ties = {k: v for k, v in BODY_CHANGES.items() if v != (k,)}
    return ShapeSpace(names=names, ties=ties, lo=lo, hi=hi, neutral=neutral)


def space_from_meta(meta: dict) -> ShapeSpace:
    return ShapeSpace(names=tuple(meta["names"]), ties={k: tuple(v) for k, v in meta["ties"].items()},
                      lo=np.array(meta["lo"], dtype=np.float64), hi=np.array(meta["hi"], dtype=np.float64),
                      neutral=np.array(meta["neutral"], dtype=np.float64))


def space_to_meta(space: ShapeSpace) -> dict:
    return {"names": list(space.names), "ties": {k: list(v) for k, v in space.ties.items()},
            "lo": space.lo.tolist(), "hi": space.hi.tolist(), "neutral": space.neutral.tolist()}
