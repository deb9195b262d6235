"""Configs of the face analysis (detection, landmarks, colour regions, appearance descriptors): plain
dataclasses, importable without cv2, mediapipe or dlib (the job API checks photo configs at submit)."""
from __future__ import annotations

from dataclasses import dataclass, field
from avatarclip_core.config.ranges import Count, Fraction, NonNegative, NonNegativeInt, Pixels, Positive


@dataclass
class DetectionConfig:
    min_confidence: Fraction = 0.5
    # run in turn and merged: the short-range model misses small faces in wide photos
    mediapipe_models: tuple[str, ...] = ("short_range", "full_range")
    # the models after the first are skipped once a face at least close_face_score confident spans at least
    # close_face_fraction of the photo's shorter side: a portrait, whose face the full-range model only finds
    # again (5.2 ms of CPU a photo, 1.8 for short range). Measured on the 61 faces-identity photos (all such
    # portraits; 8 had taken full range's box): attributes identical, render AUC 0.9707 -> 0.9713, nearest photo
    # 0.689 both, another photo of the person 0.623 -> 0.607 (default method); one-shot AUC 0.9448 -> 0.9459.
    # Wide and group photos still run every model (their small faces, and the warning about them; the dlib
    # example group photos keep their face counts). 0 = always run every model
    close_face_fraction: Fraction = 0.2
    close_face_score: Fraction = 0.8
    # boxes whose overlap covers more than this fraction of the smaller one are one face (the
    # higher score is kept): the short-range model draws loose boxes around small faces
    duplicate_overlap: Fraction = 0.5
    use_hog_fallback: bool = True
    hog_upsample: NonNegativeInt = 1  # one pyramid upsampling finds ~40 px faces (dlib's default use)
    hog_max_side: Pixels = 1024  # larger photos are downscaled for HOG (its cost grows with area)
    hog_min_score: float = 0.0  # dlib's own default threshold
    min_face_px: Count = 48  # smaller faces hold too little detail for landmarks and identity


@dataclass
class LandmarkConfig:
    mesh_crop_scale: Positive = 2.0  # crop side / face box side: Face Mesh re-detects in the crop
    mesh_crop_px: Pixels = 256
    mesh_min_confidence: Fraction = 0.5


@dataclass
class RegionConfig:
    crop_scale: Positive = 3.0  # crop side / face width
    crop_px: Pixels = 512
    segmentation_threshold: Fraction = 0.5
    disc_radius: Positive = 0.05  # skin/beard sampling discs, fraction of face width
    hair_min_fraction: Fraction = 0.03  # hair pixels / face-oval pixels below which hair is "none"
    hair_skin_distance: NonNegative = 45.0  # RGB distance below which hair counts as skin-coloured
    beard_threshold: float = 0.25  # beard darkness above which `beard_likely`


@dataclass
class AppearanceConfig:
    work_px: Pixels = 256  # the crop is resized to this before measuring
    hair_extent: float = 2.5  # hair grid: +- this many eye distances around the eye midpoint
    hair_cells: int = 5  # hair grid: cells per side
    oval_margin: float = 0.12  # face oval dilation (eye distances) excluded from the hair grid
    min_contrast: float = 0.15  # floor of the hair's darkness relative to the skin (beard normalisation)
    default_contrast: float = 0.6  # ... when no hair colour was measured
    dark_skin_distance: float = 60.0  # without a hair colour: RGB distance from skin that counts as hair
    fine_window: float = 1.4  # brows / glasses: full-resolution window of +- this many eye distances
    brow_rows: int = 12  # brow grid rows from brow_top to brow_bottom (eye distances, above the eye line)
    brow_top: float = -0.75
    brow_bottom: float = -0.15
    brow_columns: int = 4  # inner to outer
    glasses_cells: int = 9  # glasses grid cells per side over the eyes and the bridge
    frame_luma: float = 0.35  # glasses: pixels darker than this fraction of the skin's luma


@dataclass
class FaceAnalysisConfig:
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    landmarks: LandmarkConfig = field(default_factory=LandmarkConfig)
    regions: RegionConfig = field(default_factory=RegionConfig)
    compute_embedding: bool = True
    embedding_jitters: NonNegativeInt = 0  # dlib's face_recognition examples use 0 for speed, 100 for best
    compute_regions: bool = True
    max_mesh_attempts: Count = 3  # detections (largest first) tried until Face Mesh finds a face


@dataclass
class CueConfig:
    iod_px: int = 64  # crop rescaled so the eye distance is this many pixels
    max_white_balance_gain: float = 0.15  # grey-world gains clamped to 1 +- this (a red wall is no cast)
    cheek_disc: float = 0.1  # cheek reference discs, eye distances


@dataclass
class AttributeConfig:
    cues: CueConfig = field(default_factory=CueConfig)
    min_confidence: float = 0.7  # below this an attribute is reported but does not set the engine
    gender_artifact: str = ""  # folder with gender.npz + meta.json ('' = the packaged one)
    gender_temperature: float = 4.0  # logit = temperature * score in units of the class-mean separation
    # gender sets the phenotype (with strength 2p - 1) and the hair priors from this confidence on: leave-one-
    # person-out, every photo was right down to 0.58, and 7 of 61 fell between 0.58 and 0.7
    gender_min_confidence: float = 0.6
    # beard: mean darkness of moustache/chin/jaw vs cheeks; measured 0.47-0.72 on full beards,
    # <= 0.40 on shaved/stubbled faces (faces-identity)
    beard_threshold: float = 0.42
    full_beard_threshold: float = 0.55
    beard_width: float = 0.05  # logistic width of the beard decision
    moustache_threshold: float = 0.4  # moustache zone alone (0.42 on a short beard on dark skin; <= 0.36 shaved)
    # glasses: min(bridge, under-eye) edge ratio; 3.9-6.3 with frames, <= 2.8 without
    glasses_threshold: float = 3.4
    glasses_width: float = 0.3
    # hair length
    long_hair_fraction: float = 0.15  # hair-like fraction both beside the face and below the jaw
    min_hair_view: float = 0.6  # below-jaw zone inside the photo needed to call hair short
    bald_scalp_texture: float = 0.85  # smooth scalp (bald 0.52-0.55, a shiny one 0.79; hair on men mostly > 0.9)
    bald_skin_delta_e: float = 18.0  # "hair" this close to the skin colour is a scalp ...
    bald_lightness_ratio: float = 0.75  # ... when about as light as the skin (bald 0.82; black hair in a dim photo 0.62)
    tied_back_confidence: float = 0.7  # woman without visible long hair: long (tied back), this sure (applied)
    # hair colour (L*a*b*)
    black_lightness: float = 18.0
    grey_chroma: float = 8.0
    white_lightness: float = 75.0
    senior_confidence: float = 0.6
