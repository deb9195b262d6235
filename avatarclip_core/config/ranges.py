"""Ranges for config numbers, declared in the field's type so that the CLI, the job API (at submit,
torch-free) and the worker reject the same values with the same message:

    iterations: Count = 500          # an int >= 1
    learning_rate: Positive = 5e-4   # a float > 0
    weight: NonNegative = 0.1
    probability: Fraction = 0.5      # 0 <= x <= 1
    resolution: Pixels = 256         # 8..4096: a caller cannot ask for a render that exhausts memory

Any other bound: `Annotated[int, Range(ge=2, le=64)]`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated


@dataclass(frozen=True)
class Range:
    """Inclusive (ge, le) and exclusive (gt, lt) bounds; None = unbounded on that side."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def violation(self, value: float) -> str | None:
        """Why `value` is outside (e.g. 'must be >= 1'), or None when it is inside."""
        for bound, ok, text in ((self.ge, lambda b: value >= b, ">="), (self.gt, lambda b: value > b, ">"),
                                (self.le, lambda b: value <= b, "<="), (self.lt, lambda b: value < b, "<")):
            if bound is not None and not ok(bound):
                return f"must be {self.describe()}" if self.describe() else f"must be {text} {bound:g}"
        return None

    def describe(self) -> str:
        low = f">= {self.ge:g}" if self.ge is not None else (f"> {self.gt:g}" if self.gt is not None else "")
        high = f"<= {self.le:g}" if self.le is not None else (f"< {self.lt:g}" if self.lt is not None else "")
        return " and ".join(part for part in (low, high) if part)

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


Count = Annotated[int, Range(ge=1)]  # iterations, steps, samples, frames: at least one
NonNegativeInt = Annotated[int, Range(ge=0)]
Positive = Annotated[float, Range(gt=0)]  # learning rates, scales, durations
NonNegative = Annotated[float, Range(ge=0)]  # loss weights, margins
Fraction = Annotated[float, Range(ge=0, le=1)]  # probabilities, shares, thresholds on [0, 1]
Pixels = Annotated[int, Range(ge=8, le=4096)]  # image sides: bounded so a request cannot exhaust memory
GridResolution = Annotated[int, Range(ge=8, le=512)]  # voxel grids: 512^3 floats is already 0.5 GB
SamplingGrid = Annotated[int, Range(ge=0, le=512)]  # 0 = no occupancy grid
TextureSize = Annotated[int, Range(ge=0, le=8192)]  # 0 = no texture
HashLog2Size = Annotated[int, Range(ge=8, le=24)]  # hash-grid table sizes (2^24 entries per level at most)
FieldOfView = Annotated[float, Range(gt=0, lt=180)]  # degrees
Influences = Annotated[int, Range(ge=1, le=8)]  # skin influences per vertex (glTF: 4 per JOINTS_n set)
