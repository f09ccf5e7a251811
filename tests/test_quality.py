"""The code base stays lint-clean and import-light (start-up time is budgeted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_is_clean() -> None:
    folders = [f for f in ("storyc", "tests", "benchmarks", "tools") if (ROOT / f).is_dir()]
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", *folders],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_is_clean() -> None:
    """The type hints are checked, not decoration."""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(root / "pyproject.toml")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=root,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_cli_start_up_imports_no_heavy_library() -> None:
    code = "import sys, storyc.cli; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    loaded = set(done.stdout.split())
    heavy = {"ruamel.yaml", "jinja2", "jsonschema", "PIL", "fal_client", "httpx", "rich", "opentimelineio"}
    heavy |= {"pygls", "lsprotocol"}  # `storyc lsp` only
    assert not heavy & loaded, heavy & loaded
