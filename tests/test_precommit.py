"""The pre-commit hooks (`.pre-commit-hooks.yaml`), run for real through `pre-commit try-repo`.

try-repo clones a hook repository, builds a virtualenv and pip-installs the
repository into it.  Here that must work without network: pip may not fetch
anything (PIP_NO_INDEX), builds storyc with the hatchling already installed
(no build isolation), and finds storyc's dependencies through PYTHONPATH,
which points at this test run's own site-packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from helpers import BASIC_BOARD, BASIC_IMAGES, GIT_ENV, commit_all, git, git_init, make_image

from storyc.compile.pipeline import compile_file
from storyc.lock.lockfile import Lock, dumps

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def hook_repository(target: Path) -> Path:
    """A git repository with what building storyc needs: a commit of this checkout's files."""
    target.mkdir()
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copyfile(ROOT / name, target / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("storyc", "schemas"):
        shutil.copytree(ROOT / folder, target / folder, ignore=ignore)
    git(target, "init", "-q")
    commit_all(target, "hooks")
    return target


def offline_env(tmp_path: Path) -> dict[str, str]:
    site = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    return {
        **os.environ,
        **GIT_ENV,
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "PIP_NO_INDEX": "1",
        # pip reads this variable inverted: "0" turns build isolation *off* (pip's documented quirk).
        "PIP_NO_BUILD_ISOLATION": "0",
        "PYTHONPATH": os.pathsep.join(site),
        "VIRTUALENV_NO_PERIODIC_UPDATE": "1",
        "VIRTUALENV_OVERRIDE_APP_DATA": str(tmp_path / "virtualenv-data"),  # nothing written to ~
        "NO_COLOR": "1",
    }


def try_repo(hooks: Path, project: Path, env: dict[str, str], *files: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(hooks), "--color", "never", "--files", *files],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def status_of(output: str, hook_name: str) -> str:
    line = next(line for line in output.splitlines() if line.startswith(hook_name + "."))
    return line.rsplit(".", 1)[1]


def test_hooks_through_pre_commit_try_repo(tmp_path: Path) -> None:
    pytest.importorskip("pre_commit", reason="pre-commit is in the [test] extra")
    hooks = hook_repository(tmp_path / "hooks")
    project = git_init(tmp_path / "project")
    for name, color in BASIC_IMAGES.items():
        make_image(project / name, color=color)
    board = project / "board.yaml"
    board.write_text(BASIC_BOARD.lstrip(), "utf-8")
    (project / "notes.txt").write_text("not a storyboard", "utf-8")
    git(project, "add", "-A")
    env = offline_env(tmp_path)

    # A clean board never rendered passes both: there is no lock, so nothing to record yet.
    code, out = try_repo(hooks, project, env, "board.yaml", "notes.txt")
    assert code == 0, out
    assert status_of(out, "storyc check") == status_of(out, "storyc lock up to date") == "Passed", out

    # A lock that does not record the board's keys fails `storyc-lock`, which says what to do.
    (project / "board.lock").write_text(dumps(Lock()), "utf-8")
    git(project, "add", "-A")
    code, out = try_repo(hooks, project, env, "board.yaml")
    assert code == 1 and status_of(out, "storyc lock up to date") == "Failed", out
    assert "board.lock: out of date with board.yaml (new: meet, play); `storyc lock sync board.yaml`" in out

    # Once the lock records the board's keys, both pass.
    compiled = compile_file(board, use_cache=False).board
    assert compiled is not None
    (project / "board.lock").write_text(dumps(Lock(scenes={j.scene: j.key for j in compiled.jobs})), "utf-8")
    code, out = try_repo(hooks, project, env, "board.yaml")
    assert code == 0, out
    assert status_of(out, "storyc check") == status_of(out, "storyc lock up to date") == "Passed"

    # A broken board fails the commit, with the diagnostic at its line.
    board.write_text(board.read_text("utf-8").replace("@rex runs", "@rexx runs"), "utf-8")
    code, out = try_repo(hooks, project, env, "board.yaml")
    assert code == 1
    assert status_of(out, "storyc check") == "Failed"
    assert "board.yaml:23:18: error: unknown reference '@rexx' (did you mean 'rex'?)" in out

    # Files that are not storyboards are not checked (the lock is: it does not depend on them).
    board.write_text(board.read_text("utf-8").replace("@rexx runs", "@rex runs"), "utf-8")
    code, out = try_repo(hooks, project, env, "notes.txt")
    assert code == 0 and "(no files to check)Skipped" in out
    assert status_of(out, "storyc lock up to date") == "Passed", out

    # A repainted reference image changes a scene's key: the lock hook runs and says so.
    make_image(project / "refs/rex-front.png", color="navy")
    git(project, "add", "-A")
    code, out = try_repo(hooks, project, env, "refs/rex-front.png")
    assert code == 1 and status_of(out, "storyc lock up to date") == "Failed", out
    assert "board.lock: out of date with board.yaml (changed: meet, play)" in out
