"""The sheet shows stills as the storyboard's frames: every candidate side by side, the pick outlined, each
scene's start frame from a still or another scene, and on the served page a click on a candidate picks it.

Real files (candidate PNGs where the render writes them), the real CLI, `storyc sheet --serve` as a real
process, and Debian's headless Chromium for what the page shows and does.
"""

from __future__ import annotations

import html as htmllib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import EXAMPLES, make_image, wait_for

from storyc.cli import cli

CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else shutil.which("chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture
def board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """examples/keyframes: ellie-sheet (1 candidate), meet-open (3 candidates, pick 2), meet from meet-open, play
    from meet's last frame; meet-open's candidates 1 and 2 are on disk, 3 is not."""
    folder = tmp_path / "film"
    shutil.copytree(EXAMPLES / "keyframes", folder, ignore=shutil.ignore_patterns("renders", ".storyc", "*.html"))
    monkeypatch.chdir(folder)
    key = still_keys(folder / "board.yaml")["meet-open"]
    for number, color in ((1, "orange"), (2, "purple")):
        make_image(folder / f"renders/stills/meet-open-{key[len('sha256:') :][:12]}-{number}.png", (320, 180), color)
    return folder / "board.yaml"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def still_keys(board: Path) -> dict[str, str]:
    result = CliRunner().invoke(cli, ["compile", str(board), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return {s["still"]: s["key"] for s in json.loads(result.stdout)["stills"]}


def section(html: str, kind: str, name: str) -> str:
    found = re.search(rf'<section class="{kind}" id="{kind}-{re.escape(name)}".*?</section>', html, re.S)
    assert found, f"no {kind} {name}"
    return found.group(0)


def candidates(still_html: str) -> list[tuple[str, str, str]]:
    """(tag, classes, pick number) of each candidate, in page order."""
    return re.findall(r'<(figure|button)[^>]* class="(candidate[^"]*)" data-still="[^"]+" data-pick="(\d)"', still_html)


def test_stills_show_every_candidate_the_pick_outlined_and_the_scenes_frames(board: Path) -> None:
    code, _, err = run("sheet", "board.yaml")
    assert code == 0, err
    html = board.with_suffix(".html").read_text("utf-8")
    assert re.findall(r'<section class="still" id="still-([\w-]+)"', html) == ["ellie-sheet", "meet-open"]
    assert html.index('class="still"') < html.index('class="scene"')  # the frames first, as a storyboard
    assert "2 stills · $0.24 to make" in html
    meet_open = section(html, "still", "meet-open")
    # three candidates side by side, as plain figures (a page from disk can't pick); the pick outlined
    assert candidates(meet_open) == [
        ("figure", "candidate", "1"),
        ("figure", "candidate pick", "2"),
        ("figure", "candidate", "3"),
    ]
    assert "<button" not in html and "storycPick" not in html
    made = re.findall(r'<img src="data:image/jpeg;base64,[^"]+" alt="meet-open candidate (\d)">', meet_open)
    assert made == ["1", "2"]  # the two on disk, as images
    assert "not rendered · $0.06" in meet_open  # the third: a card with its price (0.5K: $0.06 an image)
    assert "renders/stills/meet-open-" in meet_open and "-3.png" in meet_open
    assert "$0.18" in meet_open  # the still's price: three images in one request
    assert '<span class="chip chip-character">@ellie</span>' in meet_open  # references as chips, like scenes
    assert '<span class="chip chip-style">@dawn</span>' in meet_open
    assert "uses still ellie-sheet, candidate 1" in meet_open
    ellie_sheet = section(html, "still", "ellie-sheet")
    assert "not rendered · $0.06" in ellie_sheet and "$0.06" in ellie_sheet
    meet, play = section(html, "scene", "meet"), section(html, "scene", "play")
    start = re.search(
        r'<div class="frame frame-upstream">start frame<img src="data:image/jpeg;base64,[^"]+" '
        r'alt="start frame"><span class="from">still meet-open, candidate 2</span>',
        meet,
    )
    assert start, meet  # the picked candidate's image, and where it comes from
    assert '<span class="from">last frame of meet</span>' in play
    # @ellie's frontal is a still that is not made yet: said so, not "remote"
    assert '<div class="nothumb">still ellie-sheet, candidate 1</div>@ellie' in play


def test_a_new_pick_outlines_its_candidate_and_moves_the_scenes_start_frame(board: Path) -> None:
    text = board.read_text("utf-8").replace("pick: 2 ", "pick: 1 ")
    board.write_text(text, "utf-8")
    second = next(board.parent.glob("renders/stills/meet-open-*-2.png"))
    second.with_name(second.name.replace("-2.png", "-3.png")).write_bytes(
        b"\x89PNG\r\n\x1a\n truncated"
    )  # a candidate whose download was cut short
    assert run("sheet", "board.yaml")[0] == 0
    html = board.with_suffix(".html").read_text("utf-8")
    assert [c[1] for c in candidates(section(html, "still", "meet-open"))] == [
        "candidate pick",
        "candidate",
        "candidate",
    ]
    assert "still meet-open, candidate 1" in section(html, "scene", "meet")
    assert "cannot be read" in section(html, "still", "meet-open")  # not "not rendered": the file is there


# --- in a real browser ----------------------------------------------------------------------------------

PROBE = """<script>
addEventListener('load', () => {
  const boxes = [...document.querySelectorAll('#still-meet-open .candidate')].map(c => c.getBoundingClientRect());
  const pick = document.querySelector('#still-meet-open .candidate.pick');
  document.body.dataset.tops = boxes.map(b => Math.round(b.top)).join(' ');
  document.body.dataset.lefts = boxes.map(b => Math.round(b.left)).join(' ');
  const other = document.querySelector('#still-meet-open .candidate:not(.pick)');
  const drawn = getComputedStyle(pick);
  document.body.dataset.pickBorder = drawn.borderTopColor + ' ' + drawn.borderTopWidth;
  document.body.dataset.otherBorder = getComputedStyle(other).borderTopColor;
  const images = [...document.querySelectorAll('img')];
  document.body.dataset.decoded = images.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.images = document.querySelectorAll('img').length;
});</script>"""


def chromium(*args: str, tmp_path: Path) -> list[str]:
    assert CHROMIUM is not None
    return [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        *args,
    ]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_candidates_side_by_side_with_the_pick_outlined_in_headless_chromium(board: Path, tmp_path: Path) -> None:
    assert run("sheet", "board.yaml")[0] == 0
    page = board.with_suffix(".html")
    probed = page.with_name("probe.html")
    probed.write_text(page.read_text("utf-8").replace("</body>", PROBE + "</body>"), "utf-8")
    dom = subprocess.run(
        chromium(
            "--virtual-time-budget=3000", "--window-size=1280,1000", "--dump-dom", probed.as_uri(), tmp_path=tmp_path
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    data = dict(re.findall(r'data-([\w-]+)="([^"]*)"', dom.split("<body", 1)[1].split(">", 1)[0]))
    assert len(set(data["tops"].split())) == 1, data  # one row
    lefts = [int(x) for x in data["lefts"].split()]
    assert lefts == sorted(lefts) and len(set(lefts)) == 3, data  # side by side, in order
    color, width = data["pick-border"].rsplit(" ", 1)
    assert width == "3px" and color != data["other-border"] and "0, 0, 0, 0" not in color, data  # outlined
    assert data["decoded"] == data["images"] and int(data["images"]) >= 4, data  # candidates, meet's frame, ball
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "sheet-stills.png"
    shot.unlink(missing_ok=True)
    subprocess.run(
        chromium(
            f"--screenshot={shot}", "--window-size=1280,1400", "--hide-scrollbars", page.as_uri(), tmp_path=tmp_path
        ),
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000


# --- served: a click on a candidate picks it ------------------------------------------------------------


# Served from the same folder (so the same origin as the sheet): opens the sheet in a frame, clicks meet-open's
# third candidate once, and shows in its title which candidate the sheet outlines, whenever the sheet (re)loads.
CLICKER = """<!doctype html><title>waiting</title>
<iframe id="sheet" src="board.html" width="1200" height="900"></iframe>
<script>
let clicked = false;
document.getElementById('sheet').addEventListener('load', (event) => {
  const doc = event.target.contentDocument;
  const picked = doc.querySelector('#still-meet-open .candidate.pick');
  document.title = 'outlined ' + (picked ? picked.tagName.toLowerCase() + ' ' + picked.dataset.pick : 'none');
  if (!clicked) { clicked = true; doc.querySelector('#still-meet-open [data-pick="3"]').click(); }
});
</script>"""


def start_sheet(board: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """`storyc sheet board.yaml ARGS` as a real process, its messages in `log`."""
    storyc = Path(sys.executable).with_name("storyc")
    with log.open("w") as stderr:
        return subprocess.Popen(
            [str(storyc), "sheet", "board.yaml", *args],
            cwd=board.parent,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "NO_COLOR": "1"},
        )


@pytest.mark.slow
def test_the_watched_sheet_opened_from_disk_shows_candidates_as_plain_images(board: Path, tmp_path: Path) -> None:
    log = tmp_path / "sheet.log"
    watcher = start_sheet(board, log, "--watch")
    try:
        wait_for(lambda: "written" in log.read_text("utf-8"), 60, "the first sheet")
        page = board.with_suffix(".html").read_text("utf-8")
    finally:
        watcher.send_signal(signal.SIGINT)
        assert watcher.wait(timeout=30) == 130
    assert [c[0] for c in candidates(section(page, "still", "meet-open"))] == ["figure"] * 3
    assert "<button" not in page  # from file:// nothing can write the pick: no buttons that do nothing


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_on_the_served_sheet_a_click_on_a_candidate_writes_the_pick_and_the_page_shows_it(
    board: Path, tmp_path: Path
) -> None:
    log = tmp_path / "sheet.log"
    server = start_sheet(board, log, "--serve")
    browser: subprocess.Popen[bytes] | None = None
    try:
        wait_for(lambda: "written" in log.read_text("utf-8"), 60, "the first sheet")
        url = re.search(r"at (http://127\.0\.0\.1:\d+/)\S+", log.read_text("utf-8"))
        assert url, log.read_text("utf-8")
        with urllib.request.urlopen(url.group(1) + "board.html", timeout=10) as answer:
            served = answer.read().decode()
        assert candidates(section(served, "still", "meet-open"))[2] == ("button", "candidate", "3")  # clickable
        board.with_name("clicker.html").write_text(CLICKER, "utf-8")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        browser = subprocess.Popen(
            chromium(f"--remote-debugging-port={port}", url.group(1) + "clicker.html", tmp_path=tmp_path),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def titles() -> list[str]:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as answer:
                    return [htmllib.unescape(t["title"]) for t in json.loads(answer.read()) if t.get("type") == "page"]
            except (OSError, ValueError):
                return []

        wait_for(lambda: "pick: 3" in board.read_text("utf-8"), 60, "the click wrote the pick into the board")
        assert re.search(r"^    pick: 3 +# the second flows on", board.read_text("utf-8"), re.M)  # in place
        wait_for(lambda: "outlined button 3" in titles(), 15, "the page reloaded with candidate 3 outlined")
    finally:
        if browser is not None:
            browser.kill()
            browser.wait()
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 130
    assert "still 'meet-open' pick: 3" in log.read_text("utf-8")
    assert "Traceback" not in log.read_text("utf-8")
