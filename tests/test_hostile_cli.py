"""Hostile input on the command line: invalid UTF-8 in any argument and hostile photo files give one
`error: ...` line, exit status 2, no traceback, no output folder."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_hostile_uploads import HOSTILE

ROOT = Path(__file__).resolve().parents[1]
BAD = b"tall \xff man"  # not UTF-8: Python sees a lone surrogate (surrogateescape)


def avatar(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, WARP_QUIET="1")
    argv = [os.fsencode(sys.executable), b"-m", b"avatar_studio.cli",
            *[a if isinstance(a, bytes) else str(a).encode() for a in args]]
    return subprocess.run(argv, cwd=cwd, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, timeout=300)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    err = proc.stderr.decode("utf-8", "replace").strip()
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 2, err
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("args,what", [
    (("text", "--shape", BAD, "-o", "out"), "the shape argument"),
    (("text", "--appearance", BAD, "-o", "out"), "the appearance argument"),
    (("text", "--motion", BAD, "-o", "out"), "the motion argument"),
    (("body", "--motion", BAD, "-o", "out"), "the motion argument"),
    (("body", "--set", b"height=\xff", "-o", "out"), "the set argument"),
    (("text", "--shape", "tall", "-o", b"out-\xff"), "the output argument"),
])
def test_invalid_utf8_arguments_are_one_error_line(args, what, tmp_path):
    line = one_error_line(avatar(*args, cwd=tmp_path))
    assert line == f"error: {what} is not valid UTF-8 text"
    assert not any(tmp_path.iterdir())


@pytest.mark.slow  # imports torch and the photo pipeline (~8 s a case on a loaded machine)
@pytest.mark.parametrize("name", ["png magic + html", "truncated jpeg", "30000x30000 bomb", "40.01 MP",
                                  "text"])
def test_hostile_photos_are_one_error_line(name, tmp_path):
    data, _ = HOSTILE[name]
    photo = tmp_path / "in" / "photo.png"
    photo.parent.mkdir()
    photo.write_bytes(data)
    line = one_error_line(avatar("photo", photo, "-o", tmp_path / "out", cwd=tmp_path))
    assert str(photo.parent) not in line and not (tmp_path / "out").exists()


def test_a_missing_photo_is_one_error_line_before_the_pipeline_loads(tmp_path):
    """Checked before the heavy imports (it took 2-5 s to say so)."""
    proc = avatar("photo", tmp_path / "nope.jpg", "-o", tmp_path / "out", cwd=tmp_path)
    assert one_error_line(proc) == f"error: image file not found: {tmp_path / 'nope.jpg'}"
    assert "loading the photo pipeline" not in proc.stderr.decode() and not (tmp_path / "out").exists()
