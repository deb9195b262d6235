"""Typed configs of photo -> game parameters. Defaults are the `preview` values (CPU seconds);
the papers' values are noted beside each knob (Shi et al. ICCV 2019 "F2P" and TPAMI "Neural
rendering for game character auto-creation"). These are the library's; the photo JOB's config adds
the export and preview steps (avatar_studio.pipelines.photo.PhotoJobConfig)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from avatarclip_core.config.limits import PHOTO_METHODS
from face2param.engines.config import AnnyEngineConfig
from face2param.faces.config import AppearanceConfig, AttributeConfig, FaceAnalysisConfig
from avatarclip_core.config.ranges import Count, Fraction, NonNegative, NonNegativeInt, Pixels, Positive


@dataclass
class IterativeConfig:
    """F2P iterative search: projected gradient descent on x in [0, 1] (Eq. 9)."""

    iterations: NonNegativeInt = 50  # paper: 50 (the most; see stop_tolerance)
    learning_rate: Positive = 1.0  # Gauss-Newton-preconditioned step; paper: mu = 10 on its feature loss
    lr_decay: Fraction = 0.8  # paper: -20% ...
    lr_decay_every: Count = 5  # ... every 5 iterations
    damping: NonNegative = 0.02  # Levenberg-Marquardt damping of the landmark preconditioner (relative)
    beta: Positive = 100.0  # softmax sharpness of relaxed discrete slots (paper: 100 iterative, 1 one-shot)
    discrete_learning_rate: NonNegative = 0.02  # Adam step on the relaxed one-hot vectors
    # others keep their defaults; eye colour is a few pixels at fitting sizes: not measurable on renders
    relaxed_slots: tuple[str, ...] = ("skin_tone", "hair_colour")
    landmark_weight: NonNegative = 1.0  # 68 iBUG points, similarity-aligned, in units of the eye distance
    dense_landmark_weight: NonNegative = 0.5  # mediapipe 478 points (x, y) where the engine has them
    color_weight: NonNegative = 1.0  # skin / hair / eye colour of the photo vs the render (was colour_weight: config/aliases.py)
    # Eq. 5 identity term; paper: lambda_1 = 0.01 on LightCNN features. Without a checkpoint it runs on the
    # identity surrogate of dlib's network (methods/identity_surrogate.py); 0 = landmarks and colours only
    # the paper's lambda_1 is 0.01 (configs/paper.yaml keeps it); through the identity surrogate 0.05 measured on
    # faces-identity (61 photos, 13 people): nearest photo 0.39 -> 0.56, render AUC 0.87 -> 0.90, landmark NME
    # 0.051 -> 0.053, no fit at a bound or failing the mesh check (0.08: 0.57, diminishing)
    identity_weight: NonNegative = 0.05
    identity_architecture: str = "lightcnn29v2"
    identity_checkpoint: str = ""  # a local LightCNN/ArcFace checkpoint path (the identity network on renders)
    identity_surrogate: str = ""  # a fitted surrogate (.npz); empty: $AVATAR_DATA_DIR's, else the packaged one
    # surrogate term: squared distance to the photo's descriptor moved into the renders' place (photo - mean
    # photo + mean render; identity_surrogate.render_domain_loss); False: the plain cosine to the photo.
    # Off until a full faces-identity run (leave-one-person-out photo mean) shows it raises nearest-photo id
    identity_render_domain: bool = False
    # the mean photo descriptor that term moves the photo by: a .npz with `mean` (`avatar eval photo` gives each
    # person one computed without them); empty: the packaged artifacts/identity/photo_mean.npz
    identity_photo_mean: str = ""
    # a second surrogate term (identity_surrogate.distinct_loss), times identity_weight: the render moves from the mean
    # face along the photo's own direction away from the mean photo, as far as the photo is from it; 0 = off.
    # Measured (faces-identity, leave-one-person-out mean, the old 200 px / 15 deg split): 0.05 raised nearest photo
    # 0.557 -> 0.607 but backed off 14 fits' mesh artefacts; not yet measured with the widened split, so off
    identity_distinct_weight: NonNegative = 0.0
    prior_weight: NonNegative = 1e-5  # pull towards the average face (keeps unobservable sliders there)
    render_size: Pixels = 64  # render for the colour / identity terms (paper: 512 through the imitator)
    # Fewer, better steps (issue 17; the paper's schedule: line_search false, stop_tolerance 0, colour_probe false):
    # a Gauss-Newton step that does not lower the loss is halved (per row, up to max_backtracks times) and the
    # identity term's curvature joins the preconditioner; without them full steps overshoot (the loss rose
    # 10-100x in the first iterations) and only the decaying rate settled the search. Measured (faces-identity,
    # auto, 61 photos): render AUC 0.952 -> 0.967, nearest photo 0.656 -> 0.672, landmark NME 0.044 -> 0.042, the
    # same attributes, no fit failing the mesh check; ~13 iterations, fit CPU 1.76 -> 0.56 s (median, 7 photos)
    line_search: bool = True
    max_backtracks: NonNegativeInt = 4
    # stop once the loss falls by less than this fraction per iteration, stop_patience iterations in a row; 0 = all
    stop_tolerance: NonNegative = 1e-3
    stop_patience: Count = 2
    # the colour term as a linear model of the relaxed slots built from one render at each preconditioner
    # refresh (exact at fixed geometry for the bundled engine) instead of a render per iteration
    colour_probe: bool = True


@dataclass
class FacePriorConfig:
    """The face prior of iterative and one-shot fits (methods/face_prior.py). Weights are relative to the
    landmark term (squared NME in eye distances)."""

    enabled: bool = True
    weight: NonNegative = 1e-5  # Gaussian term: weight * squared Mahalanobis distance to the mean face
    spread_mm: Positive = 4.0  # one-sigma change of a slider moves the head mesh by at most this
    max_sigma: Positive = 0.25  # ... and by at most this in slider units (phenotypes: this)
    pair_correlation: Fraction = 0.95  # left/right pairs: shared mean, their difference sigma sqrt(2 (1 - rho))
    samples: Count = 8192  # plausible-face samples the Gaussian is fitted to
    margin: Fraction = 0.02  # soft barrier: values kept inside [margin, 1 - margin] ...
    barrier_weight: NonNegative = 0.1  # ... by weight * (distance past it / margin)^2 (0.01 left a one-shot fit 13% at a bound)
    max_edge_ratio: Positive = 2.5  # mesh check: no head edge longer than this times its mean-head length
    max_interior_pixels: NonNegativeInt = 0  # ... and no front-view pixel (of 512 x 512) of mouth/eye interior in front of outer skin (1-2 px show as a dot in face.png)
    mesh_weight: NonNegative = 1e-4  # mesh term of the objective (HeadMeshCheck.penalty; 1e-3 diverged: it has no curvature in the preconditioner)
    mesh_soft_edge_ratio: float = 2.0  # ... penalises edges past this times their mean-head length
    mesh_min_cos: float = 0.3  # ... and triangles turned further than arccos(this) (~73 deg) from the mean head
    backoff_steps: NonNegativeInt = 8  # bisection steps towards the mean face when the mesh check fails
    constrain_iterations: NonNegativeInt = 10  # one-shot: Newton steps of the constrained projection
    constrain_halvings: NonNegativeInt = 4  # ... with the mesh term: halve a step until the objective falls
    # (no step after that many; 0: full steps, which made a fit failing the mesh check chaotic)
    constrain_tolerance: NonNegative = 1e-6  # ... stop once no slider moves more than this (0: all iterations)


@dataclass
class OneShotConfig:
    """Fast F2P translator T (TPAMI Table 4), scaled down for CPU."""

    hidden: Count = 256  # paper: 512
    blocks: Count = 3  # paper: 3 residual attention blocks
    expansion: Count = 2  # paper: FC(512, 1024) - FC(1024, 512): 2
    se_reduction: Count = 16  # paper: SE(512, 16, 512)
    pca_components: Count = 48  # facial prior (Eq. 11-12); 0 = predict x directly
    # facial prior: landmark (Gauss-Newton directions of the landmarks; held-out NME 0.027 vs 0.033 for fits with 96 components)
    # | fits (the paper's Eq. 11-12 whitening of iterative fits of faces; --prior-photos DIR)
    prior: Literal["landmark", "fits"] = "landmark"
    # the photo's 128-d dlib descriptor as an input besides landmarks + colours (photos: identity cosine 0.839 -> 0.858)
    identity_features: bool = True
    beta: Positive = 1.0  # paper: 1 in one-shot mode
    artifact_dir: str = ""  # empty: face2param/artifacts/preview


@dataclass
class TrainConfig:
    """Training of T (+ G and the landmark regressor) on engine samples (self-supervised)."""

    samples: Count = 2000  # parameter samples of the translator (paper: CelebA photos); ~0.2 s each for dlib (cached)
    epochs: Count = 30  # paper: 20 epochs of CelebA
    batch_size: Count = 64
    learning_rate: Positive = 1e-3  # paper: Adam 1e-4
    landmark_weight: NonNegative = 1.0  # image-space term (the facial content loss's role), paper lambda_2 = 1
    loopback_weight: NonNegative = 1.0  # Eq. 7, paper lambda_3 = 1
    parameter_weight: NonNegative = 1.0  # synthetic pairs (SwiftAvatar): |T(f(x)) - x|
    identity_weight: NonNegative = 1.0  # Eq. 5 through the identity surrogate: 1 - cos(S(T(f)), e_input); 0 = off
    prior_fits: NonNegativeInt = 400  # landmark-only iterative fits whose parameters give the PCA prior
    prior_photos: str = ""  # a folder of face photos for the fits prior; empty: engine renders, analysed
    prior_render_size: Pixels = 256  # renders the prior's face analysis sees (face ~115 px)
    identity_render_size: Pixels = 256  # renders the samples' dlib descriptors are computed on
    time_budget_s: NonNegative = 240.0  # the training loop (not the sample features) stops after this, in whole epochs; 0 = none
    sample_spread: float = 0.35  # x ~ mean +- spread (uniform, clipped); paper: uniform on [0, 1]
    train_imitator: bool = True
    train_landmark_regressor: bool = True
    validation_fraction: Fraction = 0.1


@dataclass
class ImitatorConfig:
    """Imitator G (TPAMI Table 2: 8 deconvolutions to 512 px) and the avatar-domain landmark regressor,
    trained on a (black-box) engine's renders; scaled down for CPU: fewer layers, filters, samples."""

    image_size: Pixels = 64  # paper: 512 (8 layers); a power of two, log2(size) - 1 deconvolutions
    base_channels: Count = 64  # paper: 512 (filters of the first layers; Table 2's ratios below)
    samples: Count = 1200  # paper: 20,000 engine renders (validation_fraction of them held out)
    epochs: Count = 20  # paper: 500
    batch_size: Count = 16  # paper: 16
    # paper: SGD 0.01, momentum 0.9, -10% every 50 epochs. Adam in the preview: with ~1/1000 of the
    # paper's steps SGD barely beats the mean image (held-out L1 0.158 vs 0.168; Adam 0.084)
    optimizer: Literal["sgd", "adam"] = "adam"  # (momentum = its beta1)
    learning_rate: Positive = 0.002
    momentum: Fraction = 0.9
    lr_decay: Fraction = 0.7  # paper: 0.9
    lr_decay_every: Count = 5  # epochs; paper: 50
    regressor_channels: Count = 32  # first conv layer's filters (doubling, up to 8x)
    regressor_epochs: NonNegativeInt = 20
    regressor_learning_rate: Positive = 1e-3  # Adam, cosine schedule
    regressor_on_imitator: bool = True  # also train on G's renders: the search feeds it G's images
    sample_spread: NonNegative = 0.35  # sliders uniform in default +- spread (clipped); paper: uniform [0, 1]
    label_render_size: Pixels = 256  # renders for the landmark labels (the photo detectors need ~100 px faces)
    validation_fraction: Fraction = 0.1
    artifact_dir: str = ""  # empty: $AVATAR_DATA_DIR/face2param/imitator/<engine name>
    # the iterative search through G (replacing iterative.damping / prior_weight there): with the engine's
    # values (0.02 / 1e-5) a 900-render imitator was exploited (real-render NME 0.108 vs the mean face's
    # 0.054 on 4 held-out renders); with these 0.056 vs 0.054, and through this preview's imitator (1200
    # renders) 0.049 vs 0.061, better on 8 of 8 held-out renders, 12 s per fit on one core
    search_damping: float = 1.0
    search_prior_weight: float = 0.01


@dataclass
class ExternalEngineConfig:
    """A game's own character creator as a black box (engines/external.py): a spec JSON plus exactly
    one of a render command (with {params} and {out}) or an HTTP endpoint answering PNG bytes."""

    spec: str = ""  # path of the ParamSpec JSON (`avatar face-engine spec` layout)
    command: str = ""  # e.g. "python render.py {params} {out}"
    url: str = ""  # e.g. http://127.0.0.1:9000/render
    timeout_s: Positive = 60.0
    name: str = ""  # names the imitator's artifact folder and params.json's engine; empty: the spec file's stem


@dataclass
class SlotChoiceConfig:
    """Discrete assets (hair style, beard, brows, glasses) chosen from the photo by analysis-by-synthesis
    (methods/slots.py): the photo's appearance descriptors against the same descriptors of engine renders
    of each option; probabilities softmax(-beta * distance) (F2P's relaxation), argmax when confident."""

    slots: tuple[str, ...] = ("hair_style", "beard", "glasses")  # "eyebrows" measured no better than the majority
    beta: Positive = 4.0  # sharpness on distances in units of the options' typical separation
    min_confidence: Fraction = 0.5  # below: keep the engine default and say so in the losses
    min_hair_grid_seen: Fraction = 0.8  # hair grid area inside the photo below which hair keeps its default
    min_person_fraction: Fraction = 0.3  # person pixels / face oval below which segmentation failed
    render_size: Pixels = 256  # engine renders of the options
    # methods whose options are rendered on their fitted face (else on the mean face, cached per colours).
    # Measured on 12 analysed renders after a real iterative fit: fitted face no better for hair / beard /
    # brows and worse for glasses (0.67 vs 0.92), at ~1.7 s instead of ~0.03 s; on the true face it would
    # help (held-out hair 0.83, brows 0.67): worth it once the continuous fit is closer
    fitted_face_methods: tuple[str, ...] = ()
    descriptors: AppearanceConfig = field(default_factory=AppearanceConfig)


@dataclass
class IdentitySurrogateConfig:
    """Fitting the identity surrogate S(x, p) ~ dlib descriptor of the render (`avatar train face2param
    --identity`; methods/identity_surrogate.py). The paper trains no such model: it has LightCNN gradients."""

    samples: Count = 1600  # engine samples whose renders dlib describes (~0.1-0.25 s each on one core)
    spread: float = 0.35  # sliders uniform in mean +- spread, as the translator's samples
    ridge: NonNegative = 1.0  # L2 penalty of the least-squares fit
    render_size: Pixels = 160  # render side in pixels (dlib's descriptor works on a 150 px chip)
    validation_fraction: Fraction = 0.1


@dataclass
class MethodChoiceConfig:
    """`auto`: the TPAMI recommendation: iterative on high-resolution frontal faces, else one-shot."""

    # TPAMI's split, widened: with the face prior and the mesh check the iterative fit holds up on turned faces,
    # and it carries the identity term the translator lacks. Measured on faces-identity (identity_weight 0.05):
    # 200 px / 15 deg sent 26 of 61 photos to one-shot (10 of them nearest their own person's photo);
    # 150 px / 30 deg sends 5: nearest photo 0.56 -> 0.64, render AUC 0.90 -> 0.96, landmark NME 0.053 -> 0.043
    min_face_px: Count = 150  # face box side for "high resolution"
    max_yaw_degrees: NonNegative = 30.0  # frontal enough


@dataclass
class Face2ParamConfig:
    engine: AnnyEngineConfig = field(default_factory=AnnyEngineConfig)
    engine_kind: Literal["anny", "external"] = "anny"  # anny: bundled, differentiable; external: engine_external, render only
    engine_external: ExternalEngineConfig = field(default_factory=ExternalEngineConfig)
    faces: FaceAnalysisConfig = field(default_factory=FaceAnalysisConfig)
    method: Literal[PHOTO_METHODS] = "auto"
    iterative: IterativeConfig = field(default_factory=IterativeConfig)
    oneshot: OneShotConfig = field(default_factory=OneShotConfig)
    choice: MethodChoiceConfig = field(default_factory=MethodChoiceConfig)
    slots: SlotChoiceConfig = field(default_factory=SlotChoiceConfig)
    imitator: ImitatorConfig = field(default_factory=ImitatorConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    identity_surrogate: IdentitySurrogateConfig = field(default_factory=IdentitySurrogateConfig)
    attributes: AttributeConfig = field(default_factory=AttributeConfig)  # photo attributes that constrain fits
    face_prior: FacePriorConfig = field(default_factory=FacePriorConfig)  # keeps iterative and one-shot fits plausible
    device: str = "auto"  # auto | cpu | cuda[:N]; the engine's device follows unless it names its own
    seed: int = 0
