"""The shipped garment kinds: what each covers, how thick it is, where it sits in the layering and
its default colour. Torch-free, so job validation can list the kinds without the heavy stack.

Regions are written in the body's own coordinates (`regions.BodyFrame`): along each limb a chain
coordinate s (0 at the shoulder / hip joint, 1 at the elbow / knee, 2 at the wrist / ankle, beyond 2
on the hand / foot) and on the trunk a height between named levels. A garment covers the body where
its field is negative (see `regions.coverage_field`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from avatarclip_core.errors import UserInputError

Category = Literal["top", "bottom", "dress", "shoes"]


class UnknownGarmentError(UserInputError):
    """A garment kind that the outfits library does not make."""


@dataclass(frozen=True)
class GarmentKind:
    name: str
    category: Category
    colour: tuple[float, float, float]  # default linear-ish RGB in [0, 1] when the words give none
    thickness: float  # metres out from whatever lies under it
    layer: int  # worn order: a higher layer goes over a lower one where they overlap
    sleeve_end: float | None = None  # arm chain s where the sleeve stops (None: no sleeve)
    top_hem: str | None = None  # trunk level of a top's lower hem
    leg_end: float | None = None  # leg chain s where a trouser leg stops
    waist: str | None = None  # trunk level of a bottom's waistband
    foot_start: float | None = None  # leg chain s where a shoe / boot begins
    skirt_hem: float | None = None  # leg chain s of a skirt's hem (a flared tube, not split in two)
    collar: bool = False  # a turned-down collar band around the neck
    hood: bool = False  # a hood lying on the upper back


# Levels of the trunk (metres are measured per body in regions.BodyFrame.levels).
TRUNK_LEVELS = ("waist", "hip", "low_hip", "thigh_top")

KINDS: dict[str, GarmentKind] = {k.name: k for k in (
    GarmentKind("t_shirt", "top", (0.92, 0.92, 0.90), 0.004, 2, sleeve_end=0.45, top_hem="hip"),
    GarmentKind("long_sleeve", "top", (0.55, 0.57, 0.60), 0.005, 2, sleeve_end=1.93, top_hem="hip"),
    GarmentKind("shirt", "top", (0.80, 0.86, 0.95), 0.005, 2, sleeve_end=1.93, top_hem="low_hip", collar=True),
    GarmentKind("hoodie", "top", (0.45, 0.46, 0.50), 0.010, 3, sleeve_end=1.92, top_hem="low_hip", hood=True),
    GarmentKind("jacket", "top", (0.16, 0.17, 0.20), 0.012, 4, sleeve_end=1.92, top_hem="low_hip", collar=True),
    GarmentKind("trousers", "bottom", (0.22, 0.22, 0.25), 0.006, 1, leg_end=1.96, waist="waist"),
    GarmentKind("jeans", "bottom", (0.17, 0.29, 0.50), 0.006, 1, leg_end=1.96, waist="waist"),
    GarmentKind("shorts", "bottom", (0.70, 0.62, 0.45), 0.006, 1, leg_end=0.45, waist="waist"),
    GarmentKind("skirt", "bottom", (0.12, 0.12, 0.14), 0.008, 3, skirt_hem=0.85, waist="waist"),
    GarmentKind("dress", "dress", (0.70, 0.12, 0.16), 0.005, 2, sleeve_end=0.25, top_hem="hip",
                skirt_hem=0.95, waist="waist"),
    GarmentKind("shoes", "shoes", (0.92, 0.92, 0.92), 0.007, 0, foot_start=1.93),
    GarmentKind("boots", "shoes", (0.30, 0.20, 0.12), 0.008, 0, foot_start=1.45),
)}

GARMENT_KINDS: tuple[str, ...] = tuple(KINDS)


def garment_kind(name: str) -> GarmentKind:
    if name not in KINDS:
        raise UnknownGarmentError(f"unknown garment kind {name!r} (known: {', '.join(GARMENT_KINDS)})")
    return KINDS[name]
