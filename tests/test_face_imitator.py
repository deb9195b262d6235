"""Imitator G + avatar-domain landmark regressor, and iterative F2P through them on a black-box engine.

The black box is a real ExternalEngine over HTTP: a server thread in this module renders each request
with the bundled AnnyFaceEngine and answers PNG bytes, so the methods see nothing but images."""
from __future__ import annotations

import io
import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import skimage.data
import torch

from avatarclip_core.config import apply_overrides
from avatarclip_core.errors import UserInputError
from face2param.config import Face2ParamConfig
from face2param.engines.base import EngineParams, ParamSpec

TINY = {"imitator.image_size": 64, "imitator.base_channels": 32, "imitator.samples": 300, "imitator.epochs": 10,
        "imitator.regressor_epochs": 15, "imitator.regressor_channels": 16, "imitator.batch_size": 16}


@pytest.fixture(scope="module")
def anny():
    from face2param.methods.fit import load_engine

    return load_engine()


@pytest.fixture(scope="module")
def render_url(anny):
    """An HTTP render endpoint (POST params JSON with size -> PNG) backed by the bundled engine."""
    from PIL import Image

    from face2param.methods.fit import as_numpy_image

    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            size = int(payload.pop("size"))
            with lock:
                image = as_numpy_image(anny.render(EngineParams.from_json(payload), size))
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="PNG")
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(buffer.getvalue())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/render"
    server.shutdown()


@pytest.fixture(scope="module")
def spec_path(anny, tmp_path_factory):
    path = tmp_path_factory.mktemp("engine") / "mygame.json"
    path.write_text(json.dumps(anny.spec.to_json()))
    return path


def _external_config(spec_path, url, artifact_dir, **more) -> Face2ParamConfig:
    return apply_overrides(Face2ParamConfig(), {
        "engine_kind": "external", "engine_external.spec": str(spec_path), "engine_external.url": url,
        "imitator.artifact_dir": str(artifact_dir), **TINY, **more})


@pytest.fixture(scope="module")
def trained(spec_path, render_url, tmp_path_factory):
    """One tiny imitator trained through the HTTP engine, shared by the slow tests."""
    from face2param.imitator.train import train_imitator
    from face2param.methods.fit import load_engine

    folder = tmp_path_factory.mktemp("imitator")
    config = _external_config(spec_path, render_url, folder)
    engine = load_engine(config)
    train_imitator(config, engine)
    return config, engine, json.loads((folder / "meta.json").read_text())


def _target(engine, params, size=256):
    from face2param.faces.analysis import analyse_face
    from face2param.imitator.labels import to_uint8
    from face2param.methods.target import target_from_analysis

    image = to_uint8(engine.render(params, size))
    return target_from_analysis(analyse_face(image), image)


def test_generator_follows_table_2():
    from face2param.imitator.model import ImitatorGenerator

    net = ImitatorGenerator(187, 512, 512)
    deconvs = [m for m in net.layers if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [m.out_channels for m in deconvs] == [512, 512, 512, 256, 128, 64, 64, 3]
    assert [m.stride[0] for m in deconvs] == [1] + [2] * 7
    assert not isinstance(net.layers[-1], (torch.nn.BatchNorm2d, torch.nn.ReLU))  # plain last deconvolution
    small = ImitatorGenerator(20, 32, 16).eval()
    assert small(torch.rand(2, 20)).shape == (2, 3, 32, 32)
    with pytest.raises(UserInputError, match="power of two"):
        ImitatorGenerator(20, 48, 16)


def test_engine_selection_errors(spec_path):
    from face2param.engines.registry import load_engine

    with pytest.raises(UserInputError, match="engine_kind"):
        load_engine(apply_overrides(Face2ParamConfig(), {"engine_kind": "unreal"}))
    with pytest.raises(UserInputError, match="engine_external.spec"):
        load_engine(apply_overrides(Face2ParamConfig(), {"engine_kind": "external"}))
    with pytest.raises(UserInputError, match="engine_kind=external"):
        load_engine(apply_overrides(Face2ParamConfig(), {"engine_external.spec": str(spec_path)}))
    engine = load_engine(apply_overrides(Face2ParamConfig(), {
        "engine_kind": "external", "engine_external.spec": str(spec_path), "engine_external.command": "r {params} {out}"}))
    assert engine.name == "mygame" and len(engine.spec.continuous) == 143


def test_fit_without_imitator_names_the_training_command(anny, spec_path, tmp_path):
    from face2param.imitator import ImitatorUnavailableError
    from face2param.methods.fit import fit, load_engine
    from face2param.methods.target import target_from_engine

    config = _external_config(spec_path, "http://127.0.0.1:9/unused", tmp_path / "none")
    target = target_from_engine(anny, anny.spec.defaults(), colours=False)
    with pytest.raises(ImitatorUnavailableError, match="avatar train face2param --imitator"):
        fit(target, "iterative", load_engine(config), config)
    assert not (tmp_path / "none").exists()


def test_bad_or_mismatched_artifacts_are_refused(anny, tmp_path):
    from face2param.imitator import ImitatorUnavailableError, load_imitator
    from face2param.imitator.artifact import save_imitator
    from face2param.imitator.model import ImitatorGenerator, input_size
    from face2param.imitator.regressor import LandmarkRegressor

    spec = anny.spec
    fewer = ParamSpec(spec.continuous[:-1], spec.discrete)
    meta = {"spec": fewer.to_json(), "imitator": {"image_size": 16, "base_channels": 8, "regressor_channels": 8}}
    save_imitator(tmp_path, ImitatorGenerator(input_size(fewer), 16, 8), LandmarkRegressor(16, 8), meta)
    generator, regressor, _ = load_imitator(tmp_path, fewer, "cpu")  # the spec it was trained for loads
    assert generator.image_size == 16
    with pytest.raises(ImitatorUnavailableError, match="trained for other engine parameters"):
        load_imitator(tmp_path, spec, "cpu")
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(ImitatorUnavailableError, match="unreadable"):
        load_imitator(tmp_path, fewer, "cpu")


@pytest.mark.slow
def test_imitator_beats_the_mean_image(trained):
    _, _, meta = trained
    m = meta["metrics"]
    assert m["train_samples"] + m["heldout_samples"] + m["detection_failures"] == m["samples"]
    assert m["imitator_l1"] < 0.9 * m["mean_image_l1"]
    assert meta["crop"]["side"] > 0 and meta["imitator"]["image_size"] == 64


@pytest.mark.slow
def test_regressor_stays_near_the_mean_landmarks(trained):
    """Known gap, held as a plain bound rather than a coin-flip xfail: a few hundred renders do not teach
    the regressor the detector's shape (300 renders: NME 0.065 vs the mean landmarks' 0.0645; the
    1200-render preview: 0.058 vs 0.060). It must not fall clearly behind the mean either."""
    m = trained[2]["metrics"]
    assert m["regressor_nme"] < 1.15 * m["mean_landmarks_nme"]
    assert m["regressor_nme_on_imitator"] < 1.3 * m["mean_landmarks_nme"]


def _fits_through_the_imitator(trained, count=3):
    from face2param.imitator.train import sample_engine_parameters
    from face2param.methods.fit import fit, landmark_nme

    config, engine, _ = trained
    params = sample_engine_parameters(engine.spec, count, config.imitator.sample_spread, torch.Generator().manual_seed(7))
    rows = []
    for p in params:
        p.discrete.update({"hair_style": "short", "beard": "none", "glasses": "none"})
        target = _target(engine, p)
        result = fit(target, "iterative", engine, config)
        rows.append((result, landmark_nme(engine, engine.spec.defaults(), target)))
    return rows


@pytest.mark.slow
def test_iterative_fit_runs_through_the_imitator_and_is_measured_on_the_real_render(trained):
    rows = _fits_through_the_imitator(trained, count=1)
    result, mean_face = rows[0]
    assert result.method == "iterative"
    assert result.losses["final_total"] < result.losses["initial_total"]  # the search descended on G
    assert math.isfinite(result.losses["landmark_nme"]) and math.isfinite(mean_face)
    assert result.losses["landmark_nme"] != pytest.approx(mean_face)  # measured on the fitted render
    result.params.validated(trained[1].spec)


@pytest.mark.slow
def test_iterative_fit_through_the_imitator_beats_the_mean_face(trained):
    """Measured on the real engine's renders (the preview imitator: NME 0.049 vs 0.061 on 8 renders; this tiny
    one, 2026-12-06: 0.054 vs 0.057, better on 5 of 8). Eight renders, not three: on three the tiny imitator's
    fit and the mean face came within 1 % (0.0609 vs 0.0604), and a machine's last float bits decided it."""
    rows = _fits_through_the_imitator(trained, count=8)
    assert np.mean([r.losses["landmark_nme"] for r, _ in rows]) < np.mean([m for _, m in rows])


def test_photo_of_an_external_engine_writes_params_without_an_avatar(spec_path, render_url, tmp_path, capsys):
    """`avatar photo --set engine_kind=external ...`: params.json + face.png from the game's renderer; no
    avatar.glb (the game builds it from params.json), said in params.json's warnings."""
    from PIL import Image

    from avatar_studio.cli import main

    astronaut = skimage.data.astronaut()
    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(photo)
    out = tmp_path / "job"
    sets = ["engine_kind=external", f"engine_external.spec={spec_path}", f"engine_external.url={render_url}",
            "face_image_size=128", "preview.enabled=false"]
    argv = ["photo", str(photo), "--method", "mean", "-q", "-o", str(out)]
    assert main(argv + [a for s in sets for a in ("--set", s)]) == 0
    params = json.loads((out / "params.json").read_text())
    assert params["engine"] == "mygame" and params["method"] == "mean"
    assert any("no avatar.glb" in w for w in params["warnings"])
    assert not (out / "avatar.glb").exists()
    assert np.asarray(Image.open(out / "face.png")).shape == (128, 128, 3)
    assert math.isfinite(params["losses"]["landmark_nme"])  # detected on the game's render of the mean face


def test_train_cli_builds_an_imitator_for_an_external_engine(spec_path, render_url, tmp_path, capsys):
    """`avatar train face2param --imitator --engine-spec ... --engine-url ...` writes a loadable artifact."""
    from avatar_studio.cli import main
    from face2param.imitator import load_imitator

    out = tmp_path / "artifact"
    knobs = {"imitator.samples": 12, "imitator.epochs": 1, "imitator.regressor_epochs": 1,
             "imitator.image_size": 16, "imitator.base_channels": 8, "imitator.regressor_channels": 8,
             "imitator.label_render_size": 192}
    argv = ["train", "face2param", "--imitator", "--engine-spec", str(spec_path), "--engine-url", render_url,
            "--engine-name", "mygame", "-o", str(out)]
    assert main(argv + [a for k, v in knobs.items() for a in ("--set", f"{k}={v}")]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["engine"] == "mygame" and meta["metrics"]["samples"] == 12
    from face2param.methods.fit import load_engine

    generator, regressor, _ = load_imitator(out, load_engine().spec, "cpu")
    assert generator.image_size == 16
    assert main(argv[:2] + ["--imitator", "--engine-spec", str(spec_path), "-o", str(tmp_path / "x")]) == 2
    assert "exactly one of a command or a url" in capsys.readouterr().err
