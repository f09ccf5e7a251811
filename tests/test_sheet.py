"""`storyc sheet`: a self-contained HTML storyboard page, checked as HTML and in a real headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import BASIC_BOARD, BASIC_IMAGES, make_project

from storyc.assets import sha256_file
from storyc.cli import cli
from storyc.compiler import CompiledBoard
from storyc.lock import Lock, Render, Video, dumps
from storyc.pipeline import compile_file
from storyc.sheet import render_sheet, video_src

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else shutil.which("chromium")


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
    assert html.count('poster="data:image/jpeg;base64,') == 1  # the animatic's first frame, shown before playing
    assert "http://" not in html and "https://" not in html.replace("https://example.org/noir.jpg", "")
    assert html.count('class="scene"') == 2
    assert 'class="state state-new"' in html  # nothing rendered on fal
    assert "not rendered yet" in html  # play has neither a fal render nor an animatic


def compiled(path: Path) -> CompiledBoard:
    result = compile_file(path, path.name, use_cache=False)
    assert result.board is not None, [d.format() for d in result.diagnostics]
    return result.board


def test_lock_states_and_fal_render_preferred_over_the_animatic(board: Path) -> None:
    assert run("render", "board.yaml", "--backend", "animatic")[0] == 0
    meet, play = compiled(board).jobs
    fal_video = board.parent / "renders" / "meet-fal.mp4"
    fal_video.write_bytes(b"stands in for fal's video")
    done = Video("https://v3b.fal.media/files/out.mp4", None, sha256_file(fal_video), "renders/meet-fal.mp4")
    endpoint = "fal-ai/kling-video/o3/4k/reference-to-video"
    renders = {
        meet.key: Render("meet", endpoint, "done", 8, Decimal("3.36"), "r1", done),
        play.key: Render("play", endpoint, "failed", 7, Decimal("2.94"), "r2", error="fal said <b>no</b>"),
    }
    (board.parent / "board.lock").write_text(dumps(Lock({"meet": meet.key, "play": play.key}, renders)), "utf-8")
    code, _, err = run("sheet", "board.yaml")
    assert code == 0, err
    html = board.with_suffix(".html").read_text("utf-8")
    assert 'class="state state-done"' in html and 'class="state state-failed"' in html
    assert "fal said &lt;b&gt;no&lt;/b&gt;" in html and "<b>no</b>" not in html
    assert 'src="renders/meet-fal.mp4"' in html  # done on fal: fal's render, not the animatic
    assert "fal render · renders/meet-fal.mp4" in html
    assert "animatic render · renders/animatic/play-" in html  # failed on fal, but its animatic exists


def test_video_paths_are_relative_to_the_html_and_percent_encoded(tmp_path: Path) -> None:
    video = tmp_path / "my film #2" / "renders" / "meet 100%.mp4"
    assert video_src(video, tmp_path / "my film #2") == "renders/meet%20100%25.mp4"
    assert video_src(video, tmp_path / "review" / "deep") == "../../my%20film%20%232/renders/meet%20100%25.mp4"
    relative = Path(os.path.relpath(video, Path.cwd()))  # a relative path gives the same answer
    assert video_src(relative, tmp_path / "review") == "../my%20film%20%232/renders/meet%20100%25.mp4"


def test_start_and_end_frames_and_with_references_get_thumbnails(tmp_path: Path) -> None:
    text = BASIC_BOARD.replace(
        "    duration: 8\n",
        "    duration: 8\n    start_frame: refs/dawn.png\n    end_frame: refs/ellie-side.png\n    with: [noir]\n",
        1,
    )
    path = make_project(tmp_path / "film", text, BASIC_IMAGES)
    html = render_sheet(compiled(path), [], {}, path.with_suffix(".html"))
    assert 'alt="start frame"' in html and 'alt="end frame"' in html
    assert html.count("data:image/jpeg;base64,") >= 8  # 3 refs and 2 frames in meet, 3 in play
    assert "also sent (<code>with:</code>)" in html
    assert 'title="https://example.org/noir.jpg"><div class="nothumb">remote</div>@noir' in html


def test_unwritable_output_is_a_clear_error(board: Path) -> None:
    (board.parent / "blocker").write_text("a file, not a folder", "utf-8")
    code, _, err = run("sheet", "board.yaml", "-o", "blocker/sheet.html")
    assert code == 1
    assert err.startswith("storyc: cannot write blocker/sheet.html")


def test_sheet_module_imports_no_click_pil_or_jinja2() -> None:
    code = "import sys, storyc.sheet; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert not {"click", "PIL", "jinja2"} & set(loaded)


# A probe, added to a copy of the page for the test only.  It asks every video (linked relatively) for its
# data before the page's load event, which media loads delay, then records at load whether every image
# decoded and each video's duration.
PROBE = """<script>
for (const v of document.querySelectorAll('video')) { v.preload = 'auto'; v.load(); }
addEventListener('load', () => {
  const body = document.body.dataset, imgs = [...document.images], videos = [...document.querySelectorAll('video')];
  body.images = imgs.length;
  body.broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  body.durations = videos.map(v => v.readyState > 0 ? v.duration.toFixed(2) : 'none').join(' ');
});</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_sheet_in_headless_chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert CHROMIUM is not None
    hostile = BASIC_BOARD.replace("@ellie meets @rex", "<script>alert(1)</script> @ellie meets @rex")
    board = make_project(tmp_path / "film #1 100%", hostile, BASIC_IMAGES)  # a folder name URLs must escape
    monkeypatch.chdir(board.parent)
    assert run("render", "board.yaml", "--backend", "animatic")[0] == 0
    page = tmp_path / "review" / "sheet.html"  # outside the board's folder: videos are at ../film%20%231...
    assert run("sheet", "board.yaml", "-o", "../review/sheet.html")[0] == 0
    probed = page.with_name("probe.html")
    probed.write_text(page.read_text("utf-8").replace("</body>", PROBE + "</body>"), "utf-8")
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
    started = time.monotonic()
    dom = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", probed.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert re.findall(r'<section class="scene" id="scene-(\w+)"', dom) == ["meet", "play"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt; " in dom  # the prompt stayed text
    assert "animatic render · ../film #1 100%/renders/animatic/meet-" in dom
    images = re.search(r'data-images="(\d+)"', dom)
    assert images and int(images[1]) == 6, "reference thumbnails missing"  # meet 3; play 1 + 2 (noir is remote)
    assert 'data-broken="0"' in dom, "an image did not decode"
    durations = re.search(r'data-durations="([\w. ]*)"', dom)
    assert durations, "the probe did not run"
    assert "none" not in durations[1].split(), f"a video did not load: {durations[1]}"
    assert sorted(float(d) for d in durations[1].split()) == pytest.approx([7, 8], abs=0.05)  # play, meet
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "sheet.png"
    shot.unlink(missing_ok=True)
    subprocess.run(
        [CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1280,1200", "--hide-scrollbars", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000
    assert time.monotonic() - started < 60, "chromium took too long"
