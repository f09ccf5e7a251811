"""`storyc sheet`: a self-contained HTML storyboard page, checked as HTML and in a real headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import BASIC_BOARD, BASIC_IMAGES, make_project

from storyc.cli import cli

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture
def board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    hostile = BASIC_BOARD.replace("@ellie meets @rex", "<script>alert(1)</script> @ellie meets @rex")
    path = make_project(tmp_path / "film", hostile, BASIC_IMAGES)
    monkeypatch.chdir(path.parent)
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_sheet_escapes_text_embeds_thumbnails_and_links_videos_relatively(board: Path) -> None:
    assert run("render", "board.yaml", "--backend", "animatic", "--scene", "meet")[0] == 0
    code, _, err = run("sheet", "board.yaml", "-o", "review/sheet.html")
    assert code == 0, err
    html = (board.parent / "review" / "sheet.html").read_text("utf-8")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<span class="chip chip-character">@ellie</span>' in html
    assert '<span class="chip chip-style">@dawn</span>' in html
    assert html.count("data:image/jpeg;base64,") >= 3  # ellie, rex, dawn; the remote noir has no thumbnail
    assert 'src="../renders/animatic/meet-' in html  # relative to the HTML file, not to the board
    assert "http://" not in html and "https://" not in html.replace("https://example.org/noir.jpg", "")
    assert html.count('class="scene"') == 2
    assert 'class="state state-new"' in html  # nothing rendered on fal
    assert "not rendered yet" in html  # play has neither a fal render nor an animatic


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_sheet_in_headless_chromium(board: Path, tmp_path: Path) -> None:
    assert run("render", "board.yaml", "--backend", "animatic")[0] == 0
    assert run("sheet", "board.yaml")[0] == 0
    page = board.with_suffix(".html")
    html = page.read_text("utf-8")
    # A tiny probe, added for the test only: it records whether every image decoded.
    probe = (
        "<script>addEventListener('load', () => { const imgs = [...document.images];"
        " document.body.dataset.images = imgs.length;"
        " document.body.dataset.broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length; });</script>"
    )
    page.write_text(html.replace("</body>", probe + "</body>"), "utf-8")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--virtual-time-budget=5000",
    ]
    dom = subprocess.run(
        ["chromium", *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert dom.count('class="scene"') == 2
    assert 'data-broken="0"' in dom
    assert 'data-images="' in dom and 'data-images="0"' not in dom
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "sheet.png"
    subprocess.run(
        ["chromium", *flags, f"--screenshot={shot}", "--window-size=1280,1400", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000
