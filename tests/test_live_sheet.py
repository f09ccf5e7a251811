"""`storyc sheet --watch` / `--serve`: the sheet follows every save, an open page reloads, a pick is written back.

Real processes (the console script), a real watcher (watchfiles), real HTTP on loopback, and
headless Chromium for the page's own reload (its title is read from Chromium's DevTools list).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import wait_for

from storyc.compile.edit import set_scalar
from storyc.diagnostics import StorycError

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else shutil.which("chromium")
pytestmark = pytest.mark.slow


@pytest.fixture
def board(tmp_path: Path) -> Path:
    folder = tmp_path / "film"
    shutil.copytree(
        ROOT / "examples" / "elephant", folder, ignore=shutil.ignore_patterns("renders", ".storyc", "*.html")
    )
    return folder / "board.yaml"


class Live:
    def __init__(self, process: subprocess.Popen[str], log: Path) -> None:
        self.process, self.log = process, log

    def said(self) -> str:
        return self.log.read_text("utf-8")

    def url(self) -> str:
        found = re.search(r"at (http://127\.0\.0\.1:\d+/\S+)", self.said())
        assert found, self.said()
        return found.group(1)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=30)


@pytest.fixture
def start(board: Path, tmp_path: Path) -> Iterator[Callable[..., Live]]:
    started: list[Live] = []

    def run(*args: str) -> Live:
        log = tmp_path / f"sheet-{len(started)}.log"
        storyc = Path(sys.executable).with_name("storyc")
        with log.open("w") as stderr:
            process = subprocess.Popen(
                [str(storyc), "sheet", "board.yaml", *args],
                cwd=board.parent,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                text=True,
                env={**os.environ, "NO_COLOR": "1"},
            )
        live = Live(process, log)
        started.append(live)
        wait_for(lambda: "written" in live.said(), 60, "the first sheet")
        return live

    yield run
    for live in started:
        if live.process.poll() is None:
            live.process.kill()
            live.process.wait()


def edit_title(board: Path, title: str) -> None:
    text = board.read_text("utf-8")
    board.write_text(re.sub(r"^title: .*$", f"title: {title}", text, count=1, flags=re.M), "utf-8")


def test_watch_rewrites_the_sheet_within_two_seconds_and_stops_cleanly(board: Path, start: Callable[..., Live]) -> None:
    live = start("--watch")
    page = board.with_suffix(".html")
    side = board.with_name("board.live.js")
    first = side.read_text("utf-8")
    assert "The elephant and the ball" in page.read_text("utf-8")
    edit_title(board, "Ellie at dawn")
    saved = time.monotonic()
    wait_for(lambda: "Ellie at dawn" in page.read_text("utf-8"), 2.0, "the sheet rewritten after a save")
    assert time.monotonic() - saved < 2.0
    assert side.read_text("utf-8") != first  # an open page sees the new version and reloads
    board.write_text(board.read_text("utf-8").replace("version: 1", "version: [", 1), "utf-8")
    wait_for(lambda: "error" in live.said(), 5, "the broken board's diagnostic")
    assert "Ellie at dawn" in page.read_text("utf-8")  # a board that does not compile keeps the last page
    assert live.stop() == 130
    assert "Traceback" not in live.said()


def http(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_serve_answers_the_version_and_guards_the_pick(board: Path, start: Callable[..., Live]) -> None:
    live = start("--serve")
    url = live.url()
    status, page = http(url)
    assert status == 200 and "The elephant and the ball" in page
    token = re.search(r'"X-Storyc-Token": "([^"]+)"', page)
    assert token, "the served page carries its token"
    base = url.rsplit("/", 1)[0]
    assert http(f"{base}/__storyc/version")[1] in page  # the page knows the version it shows
    pick = json.dumps({"still": "meet-open", "pick": 2}).encode()
    assert http(f"{base}/__storyc/pick", pick)[0] == 403  # no token: another site can't pick
    status, said = http(f"{base}/__storyc/pick", pick, {"X-Storyc-Token": token.group(1)})
    assert status == 400 and "no still 'meet-open'" in said  # this board has no stills: nothing written
    assert live.stop() == 130


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
@pytest.mark.parametrize("how", ["file", "served"])
def test_an_open_page_reloads_itself_after_a_save(
    board: Path, start: Callable[..., Live], tmp_path: Path, how: str
) -> None:
    live = start("--serve" if how == "served" else "--watch")
    url = live.url() if how == "served" else board.with_suffix(".html").as_uri()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert CHROMIUM is not None
    browser = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         f"--remote-debugging-port={port}", "--allow-file-access-from-files", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def titles() -> list[str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as answer:
                return [t["title"] for t in json.loads(answer.read()) if t.get("type") == "page"]
        except (OSError, ValueError):
            return []

    try:
        wait_for(lambda: any("The elephant and the ball" in t for t in titles()), 60, "the page open in Chromium")
        edit_title(board, "Ellie at dawn")
        wait_for(lambda: any("Ellie at dawn" in t for t in titles()), 10, "the open page reloaded after the save")
    finally:
        browser.kill()
        browser.wait()
    assert live.stop() == 130


# --- writing a pick back: the board as written, but for the one value -----------------------

BOARD_WITH_STILLS = """\
version: 1
# the keyframes
stills:
  meet-open:
    prompt: "@ellie at the edge of the clearing"   # first light
    variants: 3

  sheet: {prompt: "turnaround sheet", variants: 2, pick: 1}
scenes:
  - id: meet
    prompt: "@ellie walks."
"""


def test_a_pick_is_inserted_under_its_still_keeping_every_other_byte(tmp_path: Path) -> None:
    board = tmp_path / "board.yaml"
    board.write_text(BOARD_WITH_STILLS, "utf-8")
    assert set_scalar(board, ("stills", "meet-open", "pick"), 2)
    assert board.read_text("utf-8") == BOARD_WITH_STILLS.replace(
        "    variants: 3\n", "    variants: 3\n    pick: 2\n", 1
    )
    assert set_scalar(board, ("stills", "meet-open", "pick"), 3)  # now it is there: replaced in place
    assert "    pick: 3\n" in board.read_text("utf-8") and "# first light" in board.read_text("utf-8")
    assert not set_scalar(board, ("stills", "meet-open", "pick"), 3)  # the same pick writes nothing


def test_a_pick_in_a_flow_mapping_is_replaced_in_place(tmp_path: Path) -> None:
    board = tmp_path / "board.yaml"
    board.write_text(BOARD_WITH_STILLS, "utf-8")
    assert set_scalar(board, ("stills", "sheet", "pick"), 2)
    assert board.read_text("utf-8") == BOARD_WITH_STILLS.replace("variants: 2, pick: 1}", "variants: 2, pick: 2}")


def test_a_board_that_does_not_load_is_left_alone(tmp_path: Path) -> None:
    board = tmp_path / "board.yaml"
    board.write_text("stills: [\n", "utf-8")
    with pytest.raises(StorycError, match="does not load"):
        set_scalar(board, ("stills", "x", "pick"), 2)
    assert board.read_text("utf-8") == "stills: [\n"
