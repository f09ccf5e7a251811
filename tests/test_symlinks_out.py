"""Nothing is written (or deleted) outside the board's folder through a symbolic link.

`.storyc/` and `renders/` are storyc's own folders beside a board; a git checkout can bring
either as a symbolic link (git commits links, .gitignore or not). Through one that leads out
of the board's folder storyc writes nothing: the lock's guard and the animatics are refused
with a located error (exit 1), the compile cache is bypassed (neither read nor written), and
clean-ups (gc, a killed run's temporary files) leave what is there alone. Real symlinks.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakefal import FakeFal
from helpers import BASIC_IMAGES, make_project
from test_render_fal import BOARD

from storyc.cli import cli
from storyc.lock.lockfile import lock_path


@pytest.fixture
def board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = make_project(tmp_path / "film", BOARD, BASIC_IMAGES)
    monkeypatch.chdir(path.parent)
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the project, never to be written through a link."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def everything(folder: Path) -> dict[str, bytes | None]:
    """Every path under `folder` (files with their bytes): what must not change."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


def link(board: Path, name: str, target: Path) -> None:
    (board.parent / name).symlink_to(target, target_is_directory=True)


@pytest.mark.parametrize("existing", [True, False], ids=["to-a-folder", "dangling"])
def test_a_symlinked_storyc_folder_refuses_a_fal_render_before_anything_is_sent(
    fake_fal: FakeFal, board: Path, outside: Path, existing: bool
) -> None:
    target = outside if existing else outside / "not-yet"
    link(board, ".storyc", target)
    code, _, err = run("render", "board.yaml", "--yes")
    assert code == 1, err
    assert ".storyc/board.lock.held: error: not written: it resolves to" in err
    assert "(is .storyc/ a symbolic link?)" in err and "Traceback" not in err
    assert everything(outside) == {}  # no board.lock.held, no folder made at the dangling link's end
    assert fake_fal.requests == [] and not lock_path(board).exists()


def test_a_symlinked_storyc_folder_bypasses_the_compile_cache_neither_read_nor_written(
    board: Path, outside: Path
) -> None:
    code, fresh, err = run("compile", "board.yaml", "--json")
    assert code == 0, err
    (entry,) = (board.parent / ".storyc" / "compile").glob("*.json")
    tampered = outside / ".storyc"
    (board.parent / ".storyc").rename(tampered)  # the same entries, now behind a link...
    entry = tampered / "compile" / entry.name
    entry.write_text(entry.read_text("utf-8").replace("meets", "TAMPERED"), "utf-8")  # ...and one of them altered
    link(board, ".storyc", tampered)
    before = everything(outside)
    code, out, err = run("compile", "board.yaml", "--json")
    assert code == 0, err
    assert out == fresh and "TAMPERED" not in out  # not read
    assert everything(outside) == before  # not written


def test_a_symlinked_renders_folder_refuses_animatics_and_the_cut_with_a_located_error(
    board: Path, outside: Path
) -> None:
    link(board, "renders", outside)
    code, _, err = run("render", "board.yaml", "--backend", "animatic", "--scene", "meet")
    assert code == 1, err
    assert "renders/animatic: error: not written: it resolves to" in err and "(is renders/ a symbolic link?)" in err
    code, _, err = run("cut", "board.yaml", "--backend", "animatic")
    assert code == 1, err
    assert "renders/animatic/cut.mp4: error: not written" in err
    assert everything(outside) == {}
    assert list(board.parent.rglob("*.mp4")) == []  # refused before anything was drawn


def test_a_symlinked_animatic_cache_refuses_the_animatic_render(board: Path, outside: Path) -> None:
    (board.parent / ".storyc").mkdir()
    link(board, ".storyc/animatic", outside)
    code, _, err = run("render", "board.yaml", "--backend", "animatic", "--scene", "meet")
    assert code == 1, err
    assert ".storyc/animatic: error: not written: it resolves to" in err
    assert everything(outside) == {}


def test_gc_deletes_nothing_through_a_symlinked_folder(board: Path, outside: Path) -> None:
    """Stale animatics and a killed run's temporary files are cleaned up only inside the board's folder."""
    (outside / "animatic").mkdir()
    (outside / "animatic" / "someone-elses.mp4").write_bytes(b"not this board's")
    (outside / ".meet-0123456789ab.mp4.x1y2.tmp").write_bytes(b"not this board's either")
    (outside / "cache").mkdir()
    (outside / "cache" / f"{'0' * 64}.mp4").write_bytes(b"nor this")
    link(board, "renders", outside)
    (board.parent / ".storyc").mkdir()
    link(board, ".storyc/animatic", outside / "cache")
    before = everything(outside)
    code, _, err = run("gc", "board.yaml", "--animatics")
    assert code == 0, err
    assert everything(outside) == before


def test_a_link_inside_its_own_folder_is_fine(board: Path) -> None:
    """Only leaving the folder is refused: `renders/animatic` linked to another folder under renders/ is used."""
    real = board.parent / "renders" / "animatic-files"
    real.mkdir(parents=True)
    link(board, "renders/animatic", real)
    code, _, err = run("render", "board.yaml", "--backend", "animatic", "--scene", "meet")
    assert code == 0, err
    assert [p.name for p in real.glob("meet-*.mp4")] != [] and os.path.islink(board.parent / "renders" / "animatic")
