"""Shared fixtures. The body model is built once per test session (from the data folder's cache,
which `make test` warms first), and every test writes into its own tmp_path."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("AVATAR_DATA_DIR", str(ROOT / "data"))
os.environ.setdefault("WARP_QUIET", "1")
# Tests never download (the brief): set before any test module imports huggingface_hub, which reads
# it once. Without it a test of the missing-weights path waited 47 s on the hub's retries.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def anny_body():
    from avatarclip_core.body import create_body_model

    return create_body_model()


@pytest.fixture(scope="session")
def anny_mesh(anny_body):
    return anny_body.rigged_mesh({})


def require_blender() -> None:
    """Skip unless Blender's bpy can run (its own venv, see `make install-fbx`); the slow CI tier
    sets AVATAR_REQUIRE_BPY=1 so a missing Blender fails there instead of silently skipping."""
    from avatarclip_core.export import fbx_available

    if fbx_available():
        return
    message = "Blender's bpy is not available: run `make install-fbx` (or set AVATAR_BPY_PYTHON)"
    if os.environ.get("AVATAR_REQUIRE_BPY") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(params=("sqlite", "postgresql"))
def job_store_url(request, tmp_path):
    """A fresh, empty job store on each backend: a SQLite file, or a new database on the test
    PostgreSQL server (AVATAR_TEST_POSTGRES_URL, default postgres@127.0.0.1:5432), dropped after
    the test. Without a server the PostgreSQL case skips, saying why; in CI (CI=true) it fails."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'queue' / 'jobs.sqlite'}"
        return
    from workers_helpers import fresh_postgres_database, require_postgres

    with fresh_postgres_database(require_postgres()) as url:
        yield url


@pytest.fixture
def one_torch_thread():
    """Many small tensor ops (motion clips, surrogate fits): intra-op threads only add contention on the
    shared CPU. The one thread helper of the code (avatarclip_core.device.torch_threads) puts the count back."""
    from avatarclip_core.device import torch_threads

    with torch_threads(1):
        yield


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """A test that changes torch's thread count must not change the float results of later tests
    (a leaked set_num_threads(1) once made the NeuS slow test fail only in CI order)."""
    import sys

    torch = sys.modules.get("torch")  # never import torch here: web tests check they do not need it
    before = torch.get_num_threads() if torch is not None else None
    yield
    torch = sys.modules.get("torch")
    if torch is not None and before is not None and torch.get_num_threads() != before:
        torch.set_num_threads(before)
