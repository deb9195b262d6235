"""`AnnyFaceEngine`: a differentiable character creator over the default Anny body.

Continuous parameters: 4 phenotypes + Anny's face/head local changes (eyes, nose, mouth, jaw, ears, brows,
cheeks, forehead, head, neck), all in [0, 1] (0.5 = Anny's neutral for two-sided sliders). Discrete slots:
procedural hair, eyebrows, beard and glasses (assets/) and colour palettes. The head is a linear function of
the sliders (head.py), so `render_tensor` and `landmarks_tensor` are cheap torch functions of the parameters
and of the discrete probabilities (softmax relaxation); `build_avatar` uses Anny itself for the exact body.
"""
from __future__ import annotations

import threading
import time

import torch

from avatarclip_core.body import BodyConfig, create_body_model
from avatarclip_core.device import resolve_device
from avatarclip_core.body.types import RiggedMesh
from avatarclip_core.render import MeshRenderer, RasterSettings, cameras_look_at
from avatarclip_core.render.topology import get_topology

from . import landmarks as lm
from .landmark_calibration import load_corrections
from .assets import BlendAsset, head_frame
from .assets import colours as pal
from .assets.beard import build_beard
from .assets.brows import build_brows
from .assets.glasses import build_glasses
from .build_cache import cached_head_and_hair
from .base import ContinuousParam, DiscreteSlot, EngineParams, InvalidEngineParamsError, Landmarks, ParamSpec
from .config import AnnyEngineConfig
from .head import CAVITY, IRIS, SCLERA, SKIN, TONGUE, HeadModel

PHENOTYPE_TEXT = {"gender": "0 = male, 1 = female", "age": "0 = baby, 0.67 = adult, 1 = elderly",
                  "muscle": "0 = little muscle, 1 = very muscular", "weight": "0 = thin, 1 = heavy"}
IRIS_RADIUS, PUPIL_RADIUS = 0.0058, 0.0022
STUBBLE_SKIN_SHOW = 0.55
DEFAULT_OPTIONS = {"hair_style": "short", "eyebrows": "straight", "beard": "none", "glasses": "none",
                   "skin_tone": "beige", "hair_colour": "dark_brown", "eye_colour": "brown"}


_ENGINES: dict[tuple, "AnnyFaceEngine"] = {}
_LOCK = threading.Lock()


def load_anny_face_engine(config: AnnyEngineConfig | None = None) -> "AnnyFaceEngine":
    """The process-wide engine for a configuration (built once: a few seconds)."""
    config = config or AnnyEngineConfig()
    key = tuple(sorted(vars(config).items()))
    with _LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = AnnyFaceEngine(config)
        return _ENGINES[key]


class AnnyFaceEngine:
    """See the module docstring. Build once per process (a few seconds after Anny is cached)."""

    @classmethod
    def from_config(cls, config) -> "AnnyFaceEngine":
        """engine_kind=anny: the engine section of a Face2ParamConfig (its device follows config.device
        unless it names its own), one engine per process and configuration."""
        from dataclasses import replace

        from avatarclip_core.errors import UserInputError

        if config.engine_external.spec or config.engine_external.command or config.engine_external.url:
            raise UserInputError("engine_external is set but engine_kind is 'anny': add --set engine_kind=external")
        engine_config = config.engine
        if engine_config.device == "auto" and config.device != "auto":
            engine_config = replace(engine_config, device=config.device)
        return load_anny_face_engine(engine_config)

    def __init__(self, config: AnnyEngineConfig | None = None, body=None):
        started = time.perf_counter()
        self.config = config or AnnyEngineConfig()
        self.device = torch.device(resolve_device(self.config.device))
        self.body = body or create_body_model(BodyConfig(device=str(self.device)))
        with torch.no_grad():  # the rest body: long hair is draped clear of the neck, shoulders and back
            rest_body = self.body.rest(self.body.shape_vector({}))[0][0].cpu()
        # build_head_model and build_hair (seconds), from the user cache when built before (build_cache.py)
        head_cpu, hair = cached_head_and_hair(self.body, rest_body)
        self.frame = head_frame(head_cpu.neutral, head_cpu.faces, head_cpu.regions, rest_body)
        assets = [hair, build_brows(self.frame), build_beard(self.frame), build_glasses(self.frame)]
        self.head: HeadModel = head_cpu.to(self.device)
        self.assets: list[BlendAsset] = [a.to(self.device) for a in assets]
        self._spec = self._build_spec()
        self._palettes = {"skin_tone": pal.palette(pal.SKIN_TONES, self.device),
                          "hair_colour": pal.palette(pal.HAIR_COLOURS, self.device),
                          "eye_colour": pal.palette(pal.EYE_COLOURS, self.device)}
        self._vertex_weights()
        faces, n = [self.head.faces], self.head.neutral.shape[0]
        for a in self.assets:
            faces.append(a.faces + n)
            n += a.anchors.shape[0]
        self.faces = torch.cat(faces)
        self.topology = get_topology(self.faces)
        c = self.frame.centre
        self.camera = cameras_look_at(eye=(float(c[0]), float(c[1]), float(c[2]) + self.config.camera_distance),
                                      at=c.tolist(), fov=self.config.fov_deg, device=self.device)
        self._landmark_tables = {s: lm.load_table(s, self.head) for s in lm.available_schemes()}
        # per scheme: (the head vertices under its landmarks, each corner's index into them), made once: one
        # tensor of vertex ids keeps HeadModel's subset of them cached (a new one each call rebuilt it, ~1.7 ms)
        self._landmark_vertices = {s: torch.unique(ids, return_inverse=True)
                                   for s, (ids, _) in self._landmark_tables.items()}
        self._landmark_corrections = load_corrections(self.head, lm.DATA) if self.config.calibrated_landmarks else {}
        self.build_seconds = time.perf_counter() - started

    # --- spec ---------------------------------------------------------------------------------
    def _build_spec(self) -> ParamSpec:
        h = self.head
        cont = [ContinuousParam(p, "phenotype", PHENOTYPE_TEXT[p], default=d)
                for p, d in zip(h.phenotype_labels, h.phenotype_defaults)]
        for name, group, one in zip(h.slider_labels, h.slider_groups, h.one_sided.tolist()):
            text = f"Anny local change '{name}': " + ("0 = none, 1 = full" if one else "0 = -1, 0.5 = neutral, 1 = +1")
            cont.append(ContinuousParam(name, group, text, default=0.0 if one else 0.5))
        slots = [DiscreteSlot(a.name, list(a.options), DEFAULT_OPTIONS[a.name], f"procedural {a.name.replace('_', ' ')}")
                 for a in self.assets]
        slots += [DiscreteSlot("skin_tone", list(pal.SKIN_TONES), DEFAULT_OPTIONS["skin_tone"], "skin colour"),
                  DiscreteSlot("hair_colour", list(pal.HAIR_COLOURS), DEFAULT_OPTIONS["hair_colour"],
                               "hair, brow and beard colour"),
                  DiscreteSlot("eye_colour", list(pal.EYE_COLOURS), DEFAULT_OPTIONS["eye_colour"], "iris colour")]
        return ParamSpec(cont, slots)

    @property
    def spec(self) -> ParamSpec:
        return self._spec

    # --- colours --------------------------------------------------------------------------------
    def _vertex_weights(self) -> None:
        """Per head vertex: how much of it is skin, iris and fixed colour (sclera, pupil, mouth)."""
        r, v = self.head.regions.cpu(), self.frame.vertices
        eye_d = torch.minimum((v[:, :2] - self.frame.eye_left[:2]).norm(dim=1), (v[:, :2] - self.frame.eye_right[:2]).norm(dim=1))
        eye = (r == IRIS) | (r == SCLERA)
        iris = eye & (eye_d < IRIS_RADIUS)
        pupil = eye & (eye_d < PUPIL_RADIUS)
        fixed = torch.zeros(len(r), 3)
        fixed[eye & ~iris] = torch.tensor(pal.SCLERA)
        fixed[r == CAVITY] = torch.tensor(pal.CAVITY)
        fixed[r == TONGUE] = torch.tensor(pal.TONGUE)
        fixed[pupil] = 0.02
        m = self.frame.mouth
        lips = torch.exp(-(((v[:, 0] - m[0]) / 0.025) ** 2 + ((v[:, 1] - m[1]) / 0.009) ** 2)) * (v[:, 2] > m[2])
        tint = 1 - lips[:, None] * torch.tensor([0.05, 0.30, 0.25])  # reddish lips
        skin = (r == SKIN).float()[:, None] * tint
        self._w_skin, self._w_iris = skin.to(self.device), (iris & ~pupil).float()[:, None].to(self.device)
        self._fixed = fixed.to(self.device)

    def _colours(self, probs: dict[str, torch.Tensor], B: int) -> torch.Tensor:
        skin = probs["skin_tone"] @ self._palettes["skin_tone"]
        hair = probs["hair_colour"] @ self._palettes["hair_colour"]
        eye = probs["eye_colour"] @ self._palettes["eye_colour"]
        head = self._w_skin * skin[:, None] + self._w_iris * eye[:, None] + self._fixed
        parts = [head]
        for a in self.assets:
            n = a.anchors.shape[0]
            c = {"hair": hair, "brows": hair * 0.8, "frame": torch.tensor(pal.GLASSES_FRAME, device=self.device).expand(B, 3)}
            if a.name == "beard":  # stubble shows skin between short hairs: tint it towards the skin tone
                stubble = probs["beard"][:, a.options.index("stubble"), None] * STUBBLE_SKIN_SHOW
                c["hair"] = hair * (1 - stubble) + skin * stubble
            parts.append(c[a.colour_role][:, None].expand(B, n, 3))
        return torch.cat(parts, 1)

    # --- differentiable path --------------------------------------------------------------------
    def _check_inputs(self, continuous: torch.Tensor, discrete_probs: dict | None) -> dict[str, torch.Tensor]:
        N = len(self._spec.continuous)
        if continuous.dim() != 2 or continuous.shape[1] != N:
            raise InvalidEngineParamsError(f"continuous must be (B, {N}), got {tuple(continuous.shape)}")
        B = continuous.shape[0]
        probs = {}
        for s in self._spec.discrete:
            p = (discrete_probs or {}).get(s.name)
            if p is None:
                p = torch.zeros(B, len(s.options), device=continuous.device)
                p[:, s.options.index(s.default)] = 1.0
            if tuple(p.shape) != (B, len(s.options)):
                raise InvalidEngineParamsError(f"discrete_probs[{s.name!r}] must be ({B}, {len(s.options)})")
            probs[s.name] = p.to(continuous.dtype)
        unknown = set(discrete_probs or {}) - set(probs)
        if unknown:
            raise InvalidEngineParamsError(f"unknown discrete slots {sorted(unknown)}")
        return probs

    def mesh_tensor(self, continuous: torch.Tensor, discrete_probs: dict | None = None):
        """(B, V, 3) head + asset vertices and (B, V, 3) colours (faces: `self.faces`)."""
        probs = self._check_inputs(continuous, discrete_probs)
        head = self.head.vertices(continuous)
        verts = torch.cat([head] + [a.vertices(head, probs[a.name]) for a in self.assets], 1)
        return verts, self._colours(probs, continuous.shape[0])

    def render_tensor(self, continuous: torch.Tensor, discrete_probs: dict | None = None, size: int = 128,
                      background: torch.Tensor | None = None, with_alpha: bool = False) -> torch.Tensor:
        """(B, 3, H, W) shaded front views; background: an RGB triple or (B, H, W, 3) images (e.g. the
        photo being fitted), default the config's grey; with_alpha adds the soft coverage as a 4th channel."""
        verts, colours = self.mesh_tensor(continuous, discrete_probs)
        renderer = MeshRenderer(RasterSettings(image_size=size, sigma=self.config.sigma,
                                               background_color=self.config.background))
        out = renderer.render(verts, self.faces, self.camera, vertex_colors=colours,
                              outputs=["shaded", "silhouette"] if with_alpha else ["shaded"], background=background,
                              light_dir=self.config.light_dir, ambient=self.config.ambient, topology=self.topology)
        image = out.shaded if not with_alpha else torch.cat([out.shaded, out.silhouette], -1)
        return image.permute(0, 3, 1, 2)

    def landmarks_tensor(self, continuous: torch.Tensor, scheme: str = "ibug68") -> torch.Tensor:
        """(B, N) -> (B, L, 3): the table's surface points plus the calibration (where shipped and on)."""
        points = self.uncalibrated_landmarks_tensor(continuous, scheme)
        correction = self._landmark_corrections.get(scheme)
        return points if correction is None else points + correction(continuous)

    def uncalibrated_landmarks_tensor(self, continuous: torch.Tensor, scheme: str = "ibug68") -> torch.Tensor:
        """(B, N) -> (B, L, 3): the table's fixed surface points (what the calibration is fitted on)."""
        self._check_inputs(continuous, None)
        _, bary = self._table(scheme)
        used, local = self._landmark_vertices[scheme]  # only the vertices under the landmarks
        corners = self.head.vertices(continuous, used)[:, local]  # (B, L, 3, 3)
        return (corners * bary[None, :, :, None]).sum(2)

    def project_landmarks(self, points: torch.Tensor, size: int) -> torch.Tensor:
        return self.camera.transform_points_screen(points, (size, size))[..., :2]

    def _table(self, scheme: str):
        if scheme not in self._landmark_tables:
            raise InvalidEngineParamsError(
                f"unknown landmark scheme {scheme!r}; available: {', '.join(self._landmark_tables) or 'none (run face2param.engines.landmarks)'}")
        return self._landmark_tables[scheme]

    # --- protocol ------------------------------------------------------------------------------
    def _tensors(self, params: EngineParams):
        x = params.continuous_vector(self._spec, self.device)[None]
        probs = {k: v[None] for k, v in params.discrete_one_hot(self._spec, self.device).items()}
        return x, probs

    def render(self, params: EngineParams, size: int = 512) -> torch.Tensor:
        x, probs = self._tensors(params)
        with torch.no_grad():
            return self.render_tensor(x, probs, size)[0].permute(1, 2, 0)

    def landmarks(self, params: EngineParams, size: int = 512, scheme: str = "ibug68") -> Landmarks:
        x, _ = self._tensors(params)
        with torch.no_grad():
            p3 = self.landmarks_tensor(x, scheme)
            p2 = self.project_landmarks(p3, size)
        return Landmarks(p3[0], p2[0], size, scheme)

    def build_avatar(self, params: EngineParams, body_values: dict[str, float] | None = None) -> RiggedMesh:
        """The full rigged Anny body with the face sliders (exact, through Anny) and the assets on the head joint.
        `body_values`: further Anny sliders of the body (height, proportions, ...; the create job's body words),
        set after the engine's own (the caller decides which of gender, age, muscle, weight it passes)."""
        x, probs = self._tensors(params)
        body_mesh = self.body.rigged_mesh({**self.head.anny_values(x[0]), **(body_values or {})})
        ids = self.head.body_vertex_ids.cpu()
        head = body_mesh.vertices[ids][None].to(self.device)
        with torch.no_grad():
            colours = self._colours(probs, 1)[0].cpu()
            parts = [a.vertices(head, probs[a.name])[0].cpu() for a in self.assets]
        nh = len(ids)
        body_colours = (probs["skin_tone"] @ self._palettes["skin_tone"]).cpu().expand(len(body_mesh.vertices), 3).clone()
        body_colours[ids] = colours[:nh]
        faces = [body_mesh.faces]
        n = len(body_mesh.vertices)
        for a, v in zip(self.assets, parts):
            faces.append(a.faces.cpu() + n)
            n += len(v)
        extra = n - len(body_mesh.vertices)
        K = body_mesh.skin_indices.shape[1]
        head_joint = self.body.semantic_joints["head"]
        idx = torch.zeros(extra, K, dtype=body_mesh.skin_indices.dtype)
        idx[:, 0] = head_joint
        w = torch.zeros(extra, K, dtype=body_mesh.skin_weights.dtype)
        w[:, 0] = 1.0
        return RiggedMesh(
            vertices=torch.cat([body_mesh.vertices] + parts), faces=torch.cat(faces), skeleton=body_mesh.skeleton,
            skin_indices=torch.cat([body_mesh.skin_indices, idx]), skin_weights=torch.cat([body_mesh.skin_weights, w]),
            vertex_colors=torch.cat([body_colours, colours[nh:]]).clamp(0, 1), name="face2param_avatar",
            extras={"face2param": params.validated(self._spec).to_json(), "engine": "anny_face"},
        )
