"""The `avatar` console script (avatar_studio.cli.console_main) ends with a hard exit that skips the
interpreter's teardown of torch & co.: its exit status, its flushed output and the atexit handlers must
survive that, and main() itself still returns to in-process callers."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _console(args: list[str], prelude: str = "") -> subprocess.CompletedProcess:
    """console_main() in a fresh process, as the `avatar` script runs it, stdout and stderr piped."""
    code = textwrap.dedent(f"""
        import sys
        {prelude}
        sys.argv = ["avatar", *{args!r}]
        from avatar_studio.cli import console_main
        console_main()
        raise SystemExit(99)  # not reached: console_main never returns
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ), timeout=600)


def test_the_console_script_is_console_main():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"avatar": "avatar_studio.cli:console_main"}
    assert "console_main()" in (ROOT / "avatar_studio/cli/__main__.py").read_text()


def test_a_finished_command_keeps_its_output_status_and_atexit_handlers():
    # a command that loads torch (the body model's sliders) and writes many lines to a pipe: all of them
    # arrive, then the atexit handler's line, and the status is 0
    prelude = "import atexit; atexit.register(lambda: print('atexit ran', flush=True))"
    proc = _console(["sliders", "--group", "phenotype"], prelude)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("gender ") and lines[-1] == "atexit ran" and len(lines) > 3
    assert "Traceback" not in proc.stderr


def test_bad_input_keeps_status_2_and_its_one_error_line(tmp_path):
    proc = _console(["photo", str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "out"), "-q"])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and "missing.jpg" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_argparse_exits_keep_their_status():
    assert _console(["--help"]).returncode == 0
    bad = _console(["no-such-command"])
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_main_still_returns_its_status_in_process(tmp_path, capsys):
    from avatar_studio.cli import main

    assert main(["photo", str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "out"), "-q"]) == 2
    assert "error: " in capsys.readouterr().err
