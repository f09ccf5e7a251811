"""Rendering on fal, end to end: the real fal_client against the fake fal server over HTTP.

These drive storyc's core (compile -> session -> render) with fast polling; the
CLI's own behaviour (consent, exit codes, output) is covered in test_render_cli.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest
from fakefal import FakeFal
from helpers import BASIC_IMAGES, fast_fal, make_project

from storyc.compile.pipeline import compile_file
from storyc.lock.lockfile import lock_path, read
from storyc.render.backends.fal import FalSettings
from storyc.render.ledger import LedgerSettings
from storyc.render.run import RenderSummary
from storyc.render.session import fal_session

FAST = fast_fal()

BOARD = """
version: 1
title: Fal
target:
  endpoint: fal-ai/kling-video/o3/4k/reference-to-video
characters:
  ellie:
    frontal: refs/ellie-front.png
    references: [refs/ellie-side.png]
  rex:
    frontal: refs/rex-front.png
    references: [refs/rex-side.png]
styles:
  dawn: refs/dawn.png
scenes:
  - id: meet
    prompt: "@ellie meets @rex in the light of @dawn."
    duration: 3
  - id: play
    shots:
      - prompt: "@rex runs."
        duration: 3
      - prompt: "@ellie follows @rex."
        duration: 2
  - id: rest
    prompt: "@ellie sleeps."
    duration: 3
"""


@pytest.fixture
def board(tmp_path: Path) -> Path:
    return make_project(tmp_path / "film", BOARD, BASIC_IMAGES)


def render(
    board: Path,
    scenes: Sequence[str] = (),
    settings: FalSettings = FAST,
    concurrency: int = 4,
    ledger: LedgerSettings | None = None,
) -> RenderSummary:
    result = compile_file(board, use_cache=False)
    assert result.board is not None, [d.format() for d in result.diagnostics]
    jobs = [j for j in result.board.jobs if not scenes or j.scene in scenes]
    with fal_session(result.board, jobs, settings, ledger) as session:
        return session.run(concurrency=concurrency)


def states(summary: RenderSummary) -> dict[str, str]:
    return {r.scene: r.state for r in summary.results}


def edit(board: Path, old: str, new: str) -> None:
    text = board.read_text("utf-8")
    assert old in text
    board.write_text(text.replace(old, new), "utf-8")


def test_first_render_uploads_each_asset_once_submits_each_scene_and_downloads_verified_videos(
    fake_fal: FakeFal, board: Path
) -> None:
    summary = render(board)
    assert states(summary) == {"meet": "done", "play": "done", "rest": "done"}
    assert summary.spent == Decimal("4.62")  # 3 + 5 + 3 = 11 s at $0.42
    assert len(fake_fal.submits) == 3
    assert len(fake_fal.uploads) == 5  # five distinct images, shared by scenes, each uploaded once
    lock = read(lock_path(board))
    for result in summary.results:
        render_entry = lock.renders[result.key]
        assert render_entry.state == "done" and render_entry.request_id == result.request_id
        video = render_entry.video
        assert video is not None and video.path is not None and video.path == result.path
        data = (board.parent / video.path).read_bytes()
        assert video.sha256 == "sha256:" + hashlib.sha256(data).hexdigest()
        assert video.bytes == len(data) and data == fake_fal.file_bytes(video.url)
        assert video.path == f"renders/{result.scene}-{result.key[7:19]}.mp4"
    assert lock.scenes == {r.scene: r.key for r in summary.results}
    sent = {s["prompt"] if "prompt" in s else s["multi_prompt"][0]["prompt"] for s in fake_fal.submits}
    assert "@Element1 meets @Element2 in the light of @Image1." in sent
    assert all(u.startswith(fake_fal.url) for s in fake_fal.submits for u in s.get("image_urls", []))


def test_second_render_sends_nothing_and_leaves_the_lock_byte_identical(fake_fal: FakeFal, board: Path) -> None:
    render(board)
    before = lock_path(board).read_bytes()
    mtime = lock_path(board).stat().st_mtime_ns
    fake_fal.reset_counters()
    summary = render(board)
    assert states(summary) == {"meet": "cached", "play": "cached", "rest": "cached"}
    assert fake_fal.requests == []
    assert summary.spent == 0
    assert lock_path(board).read_bytes() == before
    assert lock_path(board).stat().st_mtime_ns == mtime


def test_one_edited_scene_sends_exactly_one_request_and_a_revert_sends_nothing(fake_fal: FakeFal, board: Path) -> None:
    render(board)
    original = {r.scene: r.key for r in render(board).results}
    edit(board, "@ellie sleeps.", "@ellie sleeps deeply.")
    fake_fal.reset_counters()
    summary = render(board)
    assert states(summary) == {"meet": "cached", "play": "cached", "rest": "done"}
    assert fake_fal.count("submit") == 1
    assert fake_fal.count("upload") == 0  # the assets' URLs are reused from the lock
    edit(board, "@ellie sleeps deeply.", "@ellie sleeps.")
    fake_fal.reset_counters()
    reverted = render(board)
    assert states(reverted) == {"meet": "cached", "play": "cached", "rest": "cached"}
    assert fake_fal.requests == []
    assert read(lock_path(board)).scenes["rest"] == original["rest"]


def test_a_422_scene_fails_alone_with_fals_message_at_its_yaml_line(fake_fal: FakeFal, board: Path) -> None:
    fake_fal.fail_jobs_matching("sleeps", error="content policy", error_type="content_policy_violation", status=422)
    summary = render(board)
    assert states(summary) == {"meet": "done", "play": "done", "rest": "failed"}
    failed = next(r for r in summary.results if r.scene == "rest")
    assert "fal refused the request (HTTP 422)" in (failed.error or "")
    assert "prompt" in (failed.error or "")
    assert failed.location == (25, 13)  # the `prompt:` value of scene rest
    entry = read(lock_path(board)).renders[failed.key]
    assert entry.state == "failed" and entry.error == failed.error and entry.request_id == failed.request_id


def test_429s_and_ingress_5xx_are_retried_until_success(fake_fal: FakeFal, board: Path) -> None:
    fake_fal.fail_next("submit", 429, count=2)
    fake_fal.fail_next("status", 503, count=3, ingress=True)
    fake_fal.fail_next("result", 429, count=1)
    summary = render(board, ["meet"])
    assert states(summary) == {"meet": "done"}
    assert len(fake_fal.jobs) == 1  # retries never created a second job


def test_app_layer_500_on_status_is_retried_by_storyc_within_its_bound(fake_fal: FakeFal, board: Path) -> None:
    fake_fal.fail_next("status", 500, count=2)  # fal_client does not retry these; storyc does
    assert states(render(board, ["meet"])) == {"meet": "done"}
    fake_fal.fail_next("status", 500, count=50)
    edit(board, "@ellie sleeps.", "@ellie naps.")
    summary = render(board, ["rest"])
    (result,) = summary.results
    assert result.state == "submitted"  # paid and still running on fal: a status storm must not end it
    assert "checking status failed 4 times" in (result.error or "") and "stays submitted" in (result.error or "")
    assert read(lock_path(board)).renders[result.key].request_id == result.request_id
    fake_fal.clear_faults()
    fake_fal.reset_counters()
    again = render(board, ["rest"])
    assert states(again) == {"rest": "done"} and again.spent == 0
    assert fake_fal.count("submit") == 0 and len(fake_fal.jobs) == 2  # meet and rest: never a second rest


def test_a_truncated_download_is_never_marked_done_and_resumes_without_a_new_submit(
    fake_fal: FakeFal, board: Path
) -> None:
    fake_fal.truncate_next_downloads(10)
    summary = render(board, ["meet"])
    (result,) = summary.results
    assert result.state == "submitted" and "incomplete download" in (result.error or "")
    entry = read(lock_path(board)).renders[result.key]
    assert entry.state == "submitted" and entry.video is not None and entry.video.sha256 is None
    assert not list((board.parent / "renders").glob("*.mp4"))  # no partial file left behind
    fake_fal.clear_faults()
    fake_fal.reset_counters()
    again = render(board, ["meet"])
    assert states(again) == {"meet": "done"}
    assert fake_fal.count("submit") == 0 and fake_fal.count("status") == 0  # only the download
    assert again.spent == 0  # paid in the first run


def test_resume_by_request_id_after_the_first_run_stopped_waiting(fake_fal: FakeFal, board: Path) -> None:
    fake_fal.job_seconds = 0.6
    interrupted = _render_interrupted_after_submit(fake_fal, board)
    assert states(interrupted) == {"meet": "submitted"}
    assert interrupted.interrupted
    fake_fal.reset_counters()
    again = render(board, ["meet"])
    assert states(again) == {"meet": "done"}
    assert fake_fal.count("submit") == 0
    assert again.results[0].request_id == interrupted.results[0].request_id


def _render_interrupted_after_submit(fake_fal: FakeFal, board: Path) -> RenderSummary:
    """Simulate Ctrl-C: the progress callback raises KeyboardInterrupt in the main thread's stead."""
    import threading

    from storyc.render.run import execute

    result = compile_file(board, use_cache=False)
    assert result.board is not None
    jobs = [j for j in result.board.jobs if j.scene == "meet"]
    with fal_session(result.board, jobs, FAST) as session:
        session.backend.prepare(session.plan)
        submitted = threading.Event()

        class Watch:
            def update(self, scene: str, state: str, detail: str = "") -> None:
                if state in ("running", "queued"):
                    submitted.set()

            def note(self, message: str) -> None:
                pass

        def stop_once_submitted() -> None:
            submitted.wait(5)
            _interrupt_main()

        stopper = threading.Thread(target=stop_once_submitted)
        stopper.start()
        try:
            return execute(session.plan, session.backend, progress=Watch())
        finally:
            stopper.join()


def _interrupt_main() -> None:
    import _thread

    _thread.interrupt_main()


def test_a_lost_result_is_marked_lost_and_needs_a_new_decision(fake_fal: FakeFal, board: Path) -> None:
    from datetime import timedelta

    fake_fal.job_seconds = 0.6
    first = _render_interrupted_after_submit(fake_fal, board)
    request_id = first.results[0].request_id
    assert request_id is not None
    import time

    time.sleep(0.7)
    fake_fal.expire(request_id)
    early = render(board, ["meet"])  # fal keeps results an hour: a 404 this soon is not "gone" yet
    assert states(early) == {"meet": "submitted"} and "stays submitted" in (early.results[0].error or "")
    summary = render(board, ["meet"], ledger=LedgerSettings(lost_after=timedelta(0)))
    assert states(summary) == {"meet": "lost"}
    assert "no longer has this request's result" in (summary.results[0].error or "")
    fake_fal.reset_counters()
    result = compile_file(board, use_cache=False)
    assert result.board is not None
    with fal_session(result.board, [j for j in result.board.jobs if j.scene == "meet"], FAST) as session:
        (item,) = session.plan.items
        assert item.action == "render" and item.price == Decimal("1.26")  # paying again is planned, not done
    assert fake_fal.requests == []


def test_uploads_older_than_the_ttl_are_uploaded_again(fake_fal: FakeFal, board: Path) -> None:
    from datetime import timedelta

    render(board, ["meet"])
    edit(board, "@ellie meets @rex", "@rex meets @ellie")
    fake_fal.reset_counters()
    render(board, ["meet"], ledger=LedgerSettings(upload_ttl=timedelta(0)))
    assert fake_fal.count("upload") == 5


def test_the_key_never_reaches_the_lock_the_videos_or_the_download_requests(fake_fal: FakeFal, board: Path) -> None:
    render(board)
    secret = fake_fal.key.split(":")[1]
    assert secret not in lock_path(board).read_text("utf-8")
    downloads = fake_fal.records("download")
    assert downloads and all("authorization" not in {h.lower() for h in r.headers} for r in downloads)


def test_without_a_key_nothing_is_sent(fake_fal: FakeFal, board: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from storyc.render.run import RenderError

    monkeypatch.delenv("FAL_KEY")
    monkeypatch.setenv("HOME", str(board.parent))  # no `fal auth login` token either
    with pytest.raises(RenderError, match="no fal API key"):
        render(board)
    assert fake_fal.requests == []
    assert not lock_path(board).exists()


def test_a_submit_whose_answer_was_lost_is_never_resent_without_an_explicit_choice(
    fake_fal: FakeFal, board: Path
) -> None:
    fake_fal.drop_next("submit", after_processing=True)  # fal took it, the answer was lost
    summary = render(board, ["meet"])
    (result,) = summary.results
    assert result.state == "unknown" and "fal may have accepted it" in (result.error or "")
    assert len(fake_fal.jobs) == 1  # storyc (and fal_client under it) sent it exactly once
    entry = read(lock_path(board)).renders[result.key]
    assert entry.state == "unknown" and entry.sent_at is not None and entry.request_id is None
    fake_fal.reset_counters()
    again = render(board, ["meet"])  # a plain rerun: shown, not sent
    assert states(again) == {"meet": "unknown"} and fake_fal.count("submit") == 0
    resent = render(board, ["meet"], ledger=LedgerSettings(resend_unknown=True))  # the explicit choice
    assert states(resent) == {"meet": "done"}
    assert fake_fal.count("submit") == 1 and len(fake_fal.jobs) == 2


def test_live_progress_shows_each_scene_state_and_queue_position() -> None:
    import io

    from rich.console import Console

    from storyc.progress import LiveProgress

    out = io.StringIO()
    progress = LiveProgress(["meet", "play"], Console(file=out, force_terminal=True, width=100))
    with progress:
        progress.update("meet", "queued", "3rd in line")
        progress.update("play", "done", "renders/play-abc.mp4")
    text = out.getvalue()
    assert "meet" in text and "queued" in text and "3rd in line" in text
    assert "renders/play-abc.mp4" in text


def test_a_queued_scene_shows_its_place_in_line_as_fal_reports_it(fake_fal: FakeFal, board: Path) -> None:
    """fal's IN_QUEUE status carries `queue_position` (0: next to start); fal_client reads it as
    Queued(position); the progress view says "queued (2nd in line)" and follows it as the line moves."""
    import io
    import re

    from storyc.progress import LineProgress

    fake_fal.concurrency = 1  # one job runs at a time: the other two wait in line
    fake_fal.job_seconds = 1.0  # long enough that all three are submitted while the first runs, on a busy machine
    lines = io.StringIO()
    result = compile_file(board, use_cache=False)
    assert result.board is not None
    with fal_session(result.board, result.board.jobs, FAST) as session:
        summary = session.run(concurrency=3, progress=LineProgress(lines))
    assert states(summary) == {"meet": "done", "play": "done", "rest": "done"}
    seen: dict[str, list[str]] = {}
    for scene, state in re.findall(r"^(\w+): (.*)$", lines.getvalue(), re.M):
        seen.setdefault(scene, []).append(state)
    last = next(s for s, states_ in seen.items() if "queued (2nd in line)" in states_)  # the third to start
    said = seen[last]
    assert said.index("queued (2nd in line)") < said.index("queued (1st in line)") < said.index("running"), said
    assert not any("position" in state for states_ in seen.values() for state in states_)


def test_places_in_line_read_as_english_ordinals() -> None:
    from storyc.render.backends.fal import _progress_words

    words = [_progress_words(("queued", n - 1))[1] for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 102, 111)]
    said = ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "102nd", "111th"]
    assert words == [f"{w} in line" for w in said]
    assert _progress_words(("running", None)) == ("running", "")
