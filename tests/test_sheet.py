"""`storyc sheet`: a self-contained HTML storyboard page, checked as HTML and in a real headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakefal import FakeFal
from helpers import BASIC_BOARD, BASIC_IMAGES, make_project

from storyc.cli import cli
from storyc.compile.assets import sha256_file
from storyc.compile.compiler import VIDEO_INPUT_CAVEAT, CompiledBoard
from storyc.compile.pipeline import compile_file
from storyc.lock.lockfile import Lock, Render, Video, dumps, lock_path, read
from storyc.preview.sheet import render_sheet, video_src

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
    code = "import sys, storyc.preview.sheet; print(' '.join(sorted(sys.modules)))"
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
    flags = chromium_flags(tmp_path)
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
    screenshot(page, "sheet.png", flags, height=1200)
    assert time.monotonic() - started < 60, "chromium took too long"


# --- a board with profiles: each scene's animatic, draft and final side by side, in lanes ------------------

STANDARD = "fal-ai/kling-video/o3/standard/reference-to-video"
FOUR_K = "fal-ai/kling-video/o3/4k/reference-to-video"
PROFILES = f"""profiles:
  draft:
    endpoint: {STANDARD}
    aspect_ratio: "1:1"
  final: {{}}
default_profile: draft
characters:"""


def profiles_project(root: Path) -> Path:
    """BASIC_BOARD (with a hostile prompt) drafted on O3 standard in 1:1, finished in 4K (its target)."""
    text = BASIC_BOARD.replace("@ellie meets @rex", "<script>alert(1)</script> @ellie meets @rex")
    return make_project(root, text.replace("characters:", PROFILES, 1), BASIC_IMAGES)


def status_paths(*args: str) -> dict[str, str | None]:
    """Each scene's rendered file in a profile, as `storyc status` says (it exits 1 while some are not done)."""
    _, out, _ = run("status", "--json", *args)
    return {s["scene"]: s["path"] for s in json.loads(out)["scenes"]}


def lanes_of(html: str) -> dict[str, list[tuple[str, str]]]:
    """Each scene's lanes in page order: (name, state)."""
    sections = re.findall(r'<section class="scene" id="scene-(\w+)"(.*?)</section>', html, re.S)
    return {
        scene: re.findall(r'<div class="lane [^"]*" data-lane="(\w+)" data-state="(\w+)">', body)
        for scene, body in sections
    }


def lane_html(html: str, scene: str, lane: str) -> str:
    """One lane's markup."""
    body = html.split(f'id="scene-{scene}"', 1)[1].split("</section>", 1)[0]
    found = re.search(rf'<div class="lane [^"]*" data-lane="{lane}".*?\n      </div>', body, re.S)
    assert found, f"no lane {lane} in scene {scene}"
    return found[0]


def put_submitted(board: Path, scene: str, profile: str) -> None:
    """Record `scene`'s request in `profile` as submitted to fal (accepted, not finished), as render does."""
    result = compile_file(board, board.name, use_cache=False, profile=profile)
    assert result.board is not None
    job = result.board.job(scene)
    assert job is not None
    lock = read(lock_path(board))
    render = Render(scene, job.endpoint, "submitted", job.seconds, job.cost_usd, "req-42")
    (board.parent / "board.lock").write_text(dumps(replace(lock, renders={**lock.renders, job.key: render})), "utf-8")


def test_profiles_show_animatic_draft_and_final_side_by_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_fal: FakeFal
) -> None:
    board = profiles_project(tmp_path / "film")
    monkeypatch.chdir(board.parent)
    assert run("render", "--backend", "animatic")[0] == 0  # the default profile's (draft's) animatics
    assert run("render", "--yes", "--scene", "meet")[0] == 0  # a draft of meet on fal
    assert run("render", "--yes", "--scene", "meet", "--profile", "final")[0] == 0
    put_submitted(board, "play", "final")
    draft, final = status_paths(), status_paths("--profile", "final")
    assert draft["meet"] and final["meet"] and draft["meet"] != final["meet"]

    code, out, err = run("sheet", "--json")
    assert code == 0, err
    assert json.loads(out) == {"output": "board.html", "scenes": 2, "profile": "draft", "profiles": ["draft", "final"]}
    html = board.with_suffix(".html").read_text("utf-8")
    assert lanes_of(html) == {
        "meet": [("animatic", "done"), ("draft", "done"), ("final", "done")],
        "play": [("animatic", "done"), ("draft", "new"), ("final", "submitted")],
    }
    assert f'src="{draft["meet"]}"' in lane_html(html, "meet", "draft")  # each lane links its own render
    assert f'src="{final["meet"]}"' in lane_html(html, "meet", "final")
    assert 'src="renders/animatic/meet-' in lane_html(html, "meet", "animatic")
    assert html.count("<video ") == 4 and html.count('poster="data:image/jpeg;base64,') == 4
    assert '<span class="meta">standard · $0.67</span>' in lane_html(html, "meet", "draft")
    assert '<span class="meta">4k · $3.36</span>' in lane_html(html, "meet", "final")
    assert f'<div class="meta">{FOUR_K}</div>' in lane_html(html, "meet", "final")
    assert '<span class="what">new · $0.59 to render</span>' in lane_html(html, "play", "draft")
    submitted = lane_html(html, "play", "final")
    assert '<span class="what">submitted</span>' in submitted and "request req-42 on fal" in submitted
    assert "to render" not in submitted  # already paid for: render resumes it
    assert "lane-shown" in lane_html(html, "meet", "draft") and "lane-shown" not in lane_html(html, "meet", "final")
    assert "video input" not in html  # every price here is the price list's
    # The header: every profile's total; the scene text and its price are the shown profile's.
    assert '<span class="total shown" data-profile="draft">draft $1.26</span>' in html
    assert '<span class="total" data-profile="final">final $6.30</span>' in html
    assert "shown: profile draft" in html and "1:1 · draft $0.67" in html
    assert re.findall(r'<span class="state state-(\w+)"', html) == ["done", "new"]  # play's final is no draft
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)</script>" not in html
    assert 'class="video"' not in html and "not rendered yet" not in html  # lanes, not the one video

    (board.parent / draft["meet"]).unlink()  # paid for, but the file is gone: the lane says so, links nothing
    assert run("sheet")[0] == 0
    gone = lane_html(board.with_suffix(".html").read_text("utf-8"), "meet", "draft")
    assert 'data-state="missing"' in gone and "<video" not in gone and "`storyc pull` fetches it again" in gone


def test_profile_option_picks_the_shown_request_and_every_lane_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    board = profiles_project(tmp_path / "film")
    monkeypatch.chdir(board.parent)
    assert run("render", "--backend", "animatic", "--scene", "meet")[0] == 0  # draft's animatic only
    code, _, err = run("sheet", "--profile", "final", "-o", "final.html")
    assert code == 0, err
    html = (board.parent / "final.html").read_text("utf-8")
    assert lanes_of(html) == {
        "meet": [("animatic", "done"), ("draft", "new"), ("final", "new")],
        "play": [("animatic", "new"), ("draft", "new"), ("final", "new")],
    }
    assert "shown: profile final" in html and "16:9 · final $3.36" in html
    assert '<span class="total" data-profile="draft">draft $1.26</span>' in html
    assert '<span class="total shown" data-profile="final">final $6.30</span>' in html
    assert "lane-shown" in lane_html(html, "meet", "final") and "lane-shown" not in lane_html(html, "meet", "draft")
    # final has no animatic of its own request (its key differs): draft's is shown, saying so
    meet_animatic = lane_html(html, "meet", "animatic")
    assert 'src="renders/animatic/meet-' in meet_animatic and "animatic of profile &#39;draft&#39;" in meet_animatic
    play_animatic = lane_html(html, "play", "animatic")
    assert "<video" not in play_animatic and '<span class="what">not rendered</span>' in play_animatic
    assert '<span class="what">new · $3.36 to render</span>' in lane_html(html, "meet", "final")


def test_a_profile_that_does_not_compile_keeps_its_lane_and_estimates_say_so(tmp_path: Path) -> None:
    # Five references with a video character: a warning in 4K, an error on O3 standard (the draft).
    text = BASIC_BOARD.replace("characters:", PROFILES, 1).replace("default_profile: draft", "default_profile: final")
    text = text.replace("styles:", "  ball:\n    video: refs/ball.mp4\nstyles:", 1)
    text = text.replace("@ellie meets @rex in the light of @dawn.", "@ellie meets @rex and @ball, @dawn and @noir.")
    board = make_project(tmp_path / "film", text, BASIC_IMAGES)
    shutil.copy(Path(__file__).parent.parent / "examples/elephant/refs/ball.mp4", board.parent / "refs" / "ball.mp4")
    code, _, err = run("sheet", str(board))
    assert code == 0, err
    assert "profile 'draft' does not compile" in err
    html = board.with_suffix(".html").read_text("utf-8")
    assert lanes_of(html)["meet"] == [("animatic", "new"), ("draft", "invalid"), ("final", "new")]
    invalid = lane_html(html, "meet", "draft")
    assert "does not compile: `storyc check --profile draft` says why" in invalid and "$" not in invalid
    assert '<span class="total" data-profile="draft">draft (does not compile)</span>' in html
    final = lane_html(html, "meet", "final")
    assert f'<div class="meta estimate">{VIDEO_INPUT_CAVEAT}</div>' in final  # its price is an estimate
    assert f'<div class="meta estimate">{VIDEO_INPUT_CAVEAT}</div>' not in lane_html(html, "play", "final")
    assert re.search(r'data-profile="final">final \$[\d.]+ <span class="estimate">\(\$[\d.]+ of it uncertain', html)


def chromium_flags(tmp_path: Path) -> list[str]:
    """Headless, offline, a throwaway profile; 5 s of virtual time for the page's videos to load."""
    return [
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


def screenshot(page: Path, name: str, flags: list[str], *, height: int) -> None:
    """The page as Chromium draws it, into test-artifacts/ (the README's screenshots come from there)."""
    assert CHROMIUM is not None
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / name
    shot.unlink(missing_ok=True)
    subprocess.run(
        [CHROMIUM, *flags, f"--screenshot={shot}", f"--window-size=1280,{height}", "--hide-scrollbars", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000


# Each lane as the browser laid it out: its scene, name and left edge (lanes line up across scenes).
LANE_PROBE = """<script>
addEventListener('load', () => {
  document.body.dataset.lanes = [...document.querySelectorAll('.lane')].map(l =>
    l.closest('section').dataset.scene + ':' + l.querySelector('.lane-name').textContent + ':' +
    Math.round(l.getBoundingClientRect().left) + ':' + Math.round(l.getBoundingClientRect().width)).join(' ');
});</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_profile_lanes_in_headless_chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_fal: FakeFal) -> None:
    assert CHROMIUM is not None
    board = profiles_project(tmp_path / "film #2")  # a folder name URLs must escape
    monkeypatch.chdir(board.parent)
    assert run("render", "--backend", "animatic")[0] == 0  # draft's animatics: meet 8 s, play 7 s
    assert run("render", "--yes")[0] == 0  # both drafts on fal (1:1)
    assert run("render", "--yes", "--scene", "meet", "--profile", "final")[0] == 0  # meet's final only
    page = tmp_path / "review" / "sheet.html"
    assert run("sheet", "-o", "../review/sheet.html")[0] == 0
    probed = page.with_name("probe.html")
    probed.write_text(page.read_text("utf-8").replace("</body>", PROBE + LANE_PROBE + "</body>"), "utf-8")
    flags = chromium_flags(tmp_path)
    started = time.monotonic()
    dom = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", probed.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    lanes = re.search(r'data-lanes="([^"]*)"', dom)
    assert lanes, "the probe did not run"
    laid_out = [lane.split(":") for lane in lanes[1].split()]
    assert [(scene, name) for scene, name, _, _ in laid_out] == [
        (scene, name) for scene in ("meet", "play") for name in ("animatic", "draft", "final")
    ]
    meet, play = laid_out[:3], laid_out[3:]
    assert [lane[2:] for lane in meet] == [lane[2:] for lane in play]  # same left edges and widths: they line up
    assert len({lane[3] for lane in laid_out}) == 1  # every lane the same width, video or placeholder
    assert '<span class="what">new · $2.94 to render</span>' in dom  # play's final
    assert "../film #2/renders/animatic/meet-" in dom  # the lane's file, as people read paths
    assert 'data-broken="0"' in dom, "an image did not decode"
    images = re.search(r'data-images="(\d+)"', dom)
    assert images and int(images[1]) == 6, "reference thumbnails missing"  # meet 3; play 1 + 2 (noir is remote)
    durations = re.search(r'data-durations="([\w. ]*)"', dom)
    assert durations, "the probe did not run"
    assert "none" not in durations[1].split(), f"a video did not load: {durations[1]}"
    # meet: animatic, draft, final (8 s each); play: animatic, draft (7 s); play's final is a placeholder
    assert [float(d) for d in durations[1].split()] == pytest.approx([8, 8, 8, 7, 7], abs=0.05)
    screenshot(page, "sheet-profiles.png", flags, height=1300)
    assert time.monotonic() - started < 60, "chromium took too long"


# Each video's picture box (the `.screen` it plays in) and the video element as laid out: the picture must
# have the video's own aspect, and the player's controls must sit below it, not over its first frame.
SCREEN_PROBE = """<script>
addEventListener('load', () => {
  document.body.dataset.screens = [...document.querySelectorAll('video')].map(v => {
    const screen = (v.closest('.screen') || v).getBoundingClientRect(), box = v.getBoundingClientRect();
    const lane = v.closest('.lane'), poster = v.poster.startsWith('data:image/jpeg') ? 'poster' : 'none';
    const where = v.closest('section').dataset.scene + '/' + (lane ? lane.dataset.lane : '-');
    return [where, screen.width, screen.height, screen.top - box.top, box.bottom - screen.bottom, box.width,
            poster].join(':');
  }).join(' ');
});</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
@pytest.mark.parametrize("with_profiles", [True, False], ids=["lanes", "one-video"])
def test_a_vertical_video_plays_in_a_9_16_box_with_its_controls_below_the_picture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_profiles: bool
) -> None:
    assert CHROMIUM is not None
    text = BASIC_BOARD.replace("  - id: play\n", '  - id: play\n    aspect_ratio: "9:16"\n')
    if with_profiles:
        text = text.replace("characters:", PROFILES.replace('    aspect_ratio: "1:1"\n', ""), 1)
    board = make_project(tmp_path / "film", text, BASIC_IMAGES)
    monkeypatch.chdir(board.parent)
    assert run("render", "--backend", "animatic")[0] == 0  # meet 16:9 (1280x720), play 9:16 (720x1280)
    page = tmp_path / "sheet.html"
    assert run("sheet", "-o", str(page))[0] == 0
    probed = page.with_name("probe.html")
    probed.write_text(page.read_text("utf-8").replace("</body>", SCREEN_PROBE + "</body>"), "utf-8")
    dom = subprocess.run(
        [CHROMIUM, *chromium_flags(tmp_path), "--dump-dom", probed.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    screens = re.search(r'data-screens="([^"]*)"', dom)
    assert screens, "the probe did not run"
    laid_out = {s.split(":")[0]: s.split(":")[1:] for s in screens[1].split()}
    assert sorted(laid_out) == (["meet/animatic", "play/animatic"] if with_profiles else ["meet/-", "play/-"])
    for where, (screen_w, screen_h, above, below, box_w, poster) in laid_out.items():
        assert poster == "poster", where
        aspect = 9 / 16 if where.startswith("play") else 16 / 9  # the animatics: 720x1280 and 1280x720
        assert float(screen_w) / float(screen_h) == pytest.approx(aspect, abs=0.01), where
        assert float(above) == 0 and float(box_w) == float(screen_w), where  # the picture fills the screen's top
        assert float(below) >= 56, where  # room for Chromium's control bar (buttons and timeline) under the picture
