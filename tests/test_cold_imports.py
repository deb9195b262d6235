"""A cold photo job does not import what it never uses (issue 17): torch._dynamo (roma's import asks
for it; avatarclip_core.body.lbs.import_roma stands it in) and matplotlib (mediapipe's drawing helpers;
face2param.faces.models stands it in), while both stay importable and work afterwards."""
import os
import subprocess
import sys

from avatarclip_core.lazy import DeferredModule, stand_ins


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "WARP_QUIET": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_anny_imports_without_torch_dynamo_and_roma_works_after():
    out = _run(
        "import sys, torch\n"
        "from avatarclip_core.body import lbs\n"
        "roma = lbs.import_roma()\n"
        "import anny\n"
        "print('dynamo' if 'torch._dynamo' in sys.modules or '_dynamo' in vars(torch) else 'none')\n"
        "M = torch.eye(3)[None] + 0.1 * torch.arange(9.).reshape(1, 3, 3)\n"
        "R = roma.special_procrustes(M)\n"
        "print(float((R @ R.transpose(1, 2) - torch.eye(3)).abs().max()) < 1e-5)\n"
        "import torch._dynamo\n"  # the real one, as before
        "print(torch._dynamo.disable.__module__)\n")
    assert out.split() == ["none", "True", "torch._dynamo.decorators"]


def test_mediapipe_imports_without_matplotlib_and_its_drawing_helpers_still_find_it():
    out = _run(
        "import sys\n"
        "from face2param.faces import models\n"
        "models.mediapipe_face_mesh(0.5)\n"
        "print('matplotlib' in sys.modules)\n"
        "from mediapipe.python.solutions import drawing_utils\n"
        "print(callable(drawing_utils.plt.figure), 'matplotlib.pyplot' in sys.modules)\n")
    assert out.split() == ["False", "True", "True"]


def test_stand_ins_are_gone_after_the_block_and_leave_imported_modules_alone():
    import json

    assert "json" in sys.modules
    with stand_ins({"json": DeferredModule("json"), "not_a_real_module_x": DeferredModule("not_a_real_module_x")}):
        assert sys.modules["json"] is json  # already imported: left as it is
        assert isinstance(sys.modules["not_a_real_module_x"], DeferredModule)
    assert "not_a_real_module_x" not in sys.modules


def test_avatar_photo_analyses_in_a_forked_child_and_fits_as_in_one_process(tmp_path):
    """`avatar photo` forks the face analysis before its imports (photo_batch.ForkedAnalysis); the
    params are those of the same job run in one process, and a bad photo still fails with its error."""
    import json

    import skimage.data
    from PIL import Image

    from avatar_studio.pipelines.photo import load_photo_config, run_photo_job
    from avatar_studio.pipelines.photo_batch import ForkedAnalysis

    photo = tmp_path / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(photo)
    sets = ["--set", "preview.enabled=false", "--set", "export.face_shapes=none"]
    command = [sys.executable, "-m", "avatar_studio.cli", "photo", str(photo), "--method", "oneshot", "-q", *sets]
    env = {**os.environ, "WARP_QUIET": "1"}
    done = subprocess.run([*command, "-o", str(tmp_path / "forked")], capture_output=True, text=True,
                          timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    forked = json.loads((tmp_path / "forked" / "params.json").read_text())
    timings = json.loads((tmp_path / "forked" / "provenance.json").read_text())["timings_s"]
    assert list(timings)[:2] == ["load engine", "analyse face"]  # the engine was built while the child analysed

    config = load_photo_config("preview", {"method": "oneshot", "preview.enabled": "false", "export.face_shapes": "none"})
    here = json.loads((run_photo_job(photo, config, tmp_path / "here") / "params.json").read_text())
    # the same fit; float noise only: this test process's engine and prior caches may have been built
    # by earlier tests on another torch thread count (the last bits of an SVD or a solve)
    assert (forked["method"], forked["discrete"]) == (here["method"], here["discrete"])
    assert forked["continuous"].keys() == here["continuous"].keys()
    assert max(abs(forked["continuous"][k] - here["continuous"][k]) for k in here["continuous"]) < 1e-4
    assert abs(forked["losses"]["landmark_nme"] - here["losses"]["landmark_nme"]) < 1e-5
    assert ForkedAnalysis(photo).result(config.faces) is None  # in a process with torch loaded: no fork

    (tmp_path / "text.jpg").write_text("not a photo")
    done = subprocess.run([sys.executable, "-m", "avatar_studio.cli", "photo", str(tmp_path / "text.jpg"), "-q",
                           "-o", str(tmp_path / "bad")], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 2 and "is not an image" in done.stderr and not (tmp_path / "bad").exists()
