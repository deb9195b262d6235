"""The floors of docs/ARCHITECTURE.md, from the import statements of every module (AST, nothing imported):

  (1) libraries: avatarclip_core, face2param (face2param may use avatarclip_core's building blocks)
  (2) the application: avatar_studio (pipelines, job kinds, configs composed); its entry points
      (avatar_studio.cli*, avatar_studio.bench*) may import workers/web, inside functions only
  (3) workers
  (4) web

and the torch-free promise of the processes that validate jobs and serve the page.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("avatarclip_core", "face2param", "avatar_studio", "workers", "web")
LIBRARIES = ("avatarclip_core", "face2param")
ENTRY_POINTS = ("avatar_studio.cli", "avatar_studio.bench")  # prefixes: cli/*, bench.py, bench_*.py


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every import statement, relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    top_level = {id(node) for node in tree.body}
    # statements under a module-level `if`/`try` run at import time too
    for node in tree.body:
        if isinstance(node, (ast.If, ast.Try)):
            top_level.update(id(child) for child in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names = [".".join(base + ([node.module] if node.module else []))]
            else:
                names = [node.module or ""]
        else:
            continue
        found += [(name, node.lineno, id(node) in top_level) for name in names]
    return found


def _floor_of(name: str) -> str | None:
    root = name.split(".")[0]
    return root if root in PACKAGES else None


def _violations(rule) -> list[str]:
    bad = []
    for module, path in MODULES.items():
        for imported, line, top in _imports(module, path):
            reason = rule(module, imported, top)
            if reason:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {imported}: {reason}")
    return bad


def test_the_walk_sees_every_package_and_resolves_relative_imports():
    assert {m.split(".")[0] for m in MODULES} == set(PACKAGES)
    assert "avatar_studio.kinds" in MODULES and "avatar_studio.pipelines.photo" in MODULES
    # face2param/engines/anny_engine.py: `from . import landmarks as lm`
    engine = "face2param.engines.anny_engine"
    assert ("face2param.engines", True) in [(name, top) for name, _, top in _imports(engine, MODULES[engine])]


def test_libraries_never_import_the_app_workers_or_web():
    def rule(module, imported, top):
        if _floor_of(module) in LIBRARIES and _floor_of(imported) in ("avatar_studio", "workers", "web"):
            return "a library reaches up to a higher floor"
        if _floor_of(module) == "avatarclip_core" and _floor_of(imported) == "face2param":
            return "the text library depends on the photo library (face2param builds on avatarclip_core, not back)"
        return None

    assert _violations(rule) == []


def test_the_app_never_imports_workers_or_web_except_its_entry_points_lazily():
    def rule(module, imported, top):
        if _floor_of(module) != "avatar_studio" or _floor_of(imported) not in ("workers", "web"):
            return None
        if module.startswith(ENTRY_POINTS):
            return "an entry point imports it at module level (import it inside the command)" if top else None
        return "application code depends on the queue or the web page"

    assert _violations(rule) == []


def test_workers_never_import_web():
    def rule(module, imported, top):
        if _floor_of(module) == "workers" and _floor_of(imported) == "web":
            return "the queue depends on the web page"
        return None

    assert _violations(rule) == []


def test_job_kinds_run_and_preload_application_or_library_code():
    """The "module:function" runners and preload lists are imports too, made by the worker."""
    from avatar_studio.kinds import _KINDS

    for kind in _KINDS.values():
        for name in (kind.runner.partition(":")[0], *kind.preload):
            assert name in MODULES, f"{kind.name}: {name} is not a module of the project"
            assert _floor_of(name) not in ("workers", "web"), f"{kind.name}: {name} is above the app floor"


def _loaded_after_import(module: str) -> dict:
    script = (f"import sys, json; import {module}; "
              "print(json.dumps({m: m in sys.modules for m in ('torch', 'cv2', 'warp', 'mediapipe')}))")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", ["avatar_studio.kinds", "web.app", "face2param.config", "avatarclip_core.device",
                                    "avatarclip_core.config.limits", "face2param.faces.attribute_values",
                                    "web.photo_attributes", "avatarclip_core.neus.config",
                                    "avatarclip_core.render.config", "face2param.methods.registry"])
def test_job_kinds_the_web_app_and_plain_configs_load_no_torch(module):
    """The job API validates at submit and the page serves from processes that never pay for torch; the
    photo configs are plain data."""
    assert _loaded_after_import(module) == {"torch": False, "cv2": False, "warp": False, "mediapipe": False}
