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
