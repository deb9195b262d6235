"""Outfits: garments made from the body's own surface, skinned to its rig (see dress.py), and the
skin-through check over a motion (fit_check.py)."""
from .catalogue import GARMENT_KINDS, KINDS, GarmentKind, UnknownGarmentError, garment_kind
from .dress import GarmentRecord, GarmentSpec, OutfitConfig, OutfitReport, dress

__all__ = ["GARMENT_KINDS", "KINDS", "GarmentKind", "GarmentRecord", "GarmentSpec", "OutfitConfig", "OutfitReport",
           "UnknownGarmentError", "dress", "garment_kind"]
