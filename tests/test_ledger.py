"""The ledger's money rules, driven through an in-memory service (no HTTP).

What matters is counted: how many requests the service accepted, and what the
lock on disk says after each step.  The fal service's own mapping of HTTP
answers is covered against the fake fal server (test_render_fal.py,
test_render_faults.py).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import BASIC_IMAGES, make_project
from memservice import MemoryService

from storyc.compile.compiler import CompiledBoard, Job
from storyc.compile.pipeline import compile_file
from storyc.lock.lockfile import LockError, lock_path, read
from storyc.render.ledger import LedgerSettings
from storyc.render.plan import Plan
from storyc.render.run import RenderError, RenderSummary, execute
from storyc.render.session import ledger_session

BOARD = """
version: 1
title: Ledger
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
  - id: rest
    prompt: "@ellie sleeps."
    duration: 5
  - id: again
    prompt: "@ellie sleeps."
    duration: 5
"""


@pytest.fixture
def board(tmp_path: Path) -> Path:
    return make_project(tmp_path / "film", BOARD, BASIC_IMAGES)


def run(
    board: Path, service: MemoryService, scenes: Sequence[str] = (), settings: LedgerSettings | None = None
) -> RenderSummary:
    with ledger_session(*_compiled(board, scenes), service, settings) as session:
        return session.run(concurrency=3)


def plan(board: Path, scenes: Sequence[str] = (), settings: LedgerSettings | None = None) -> Plan:
    with ledger_session(*_compiled(board, scenes), MemoryService(), settings) as session:
        return session.plan


def _compiled(board: Path, scenes: Sequence[str]) -> tuple[CompiledBoard, list[Job]]:
    result = compile_file(board, use_cache=False)
    assert result.board is not None, [d.format() for d in result.diagnostics]
    return result.board, [j for j in result.board.jobs if not scenes or j.scene in scenes]


def states(summary: RenderSummary) -> dict[str, str]:
    return {r.scene: r.state for r in summary.results}


def entry_state(board: Path, key: str) -> str | None:
    entry = read(lock_path(board)).renders.get(key)
    return entry.state if entry else None


def test_identical_requests_are_rendered_once_and_priced_once(board: Path) -> None:
    the_plan = plan(board)
    assert [(i.scene, i.action, i.price) for i in the_plan.items] == [
        ("meet", "render", Decimal("1.26")),
        ("rest", "render", Decimal("2.10")),
        ("again", "render", Decimal("0")),
    ]
    assert the_plan.cost == Decimal("3.36")
    service = MemoryService()
    summary = run(board, service)
    assert states(summary) == {"meet": "done", "rest": "done", "again": "cached"}
    assert len(service.jobs) == 2 and summary.spent == Decimal("3.36")
    again = next(r for r in summary.results if r.scene == "again")
    assert again.path == next(r for r in summary.results if r.scene == "rest").path
    assert any("same request as scene 'rest'" in n for n in again.notes)


def test_the_intent_is_on_disk_before_the_submit_is_sent(board: Path) -> None:
    seen: list[tuple[str, bool]] = []
    service = MemoryService()

    def look() -> None:  # what a kill at this instant would leave behind
        (entry,) = read(lock_path(board)).renders.values()
        seen.append((entry.state, entry.sent_at is not None))

    service.on_submit = look
    run(board, service, ["meet"])
    assert seen == [("intent", True)]


def test_a_submit_without_an_answer_is_unknown_and_never_resent_silently(board: Path) -> None:
    service = MemoryService()
    service.script("submit", "no_answer")
    summary = run(board, service, ["meet"])
    (result,) = summary.results
    assert result.state == "unknown" and "may have accepted it" in (result.error or "")
    assert len(service.jobs) == 1 and entry_state(board, result.key) == "unknown"
    assert not summary.ok

    (item,) = plan(board, ["meet"]).items
    assert item.action == "unknown" and item.price == 0 and "--resend-unknown" in item.note
    rerun = run(board, service, ["meet"])
    assert states(rerun) == {"meet": "unknown"} and service.submit_calls == 1

    (chosen,) = plan(board, ["meet"], LedgerSettings(resend_unknown=True)).items
    assert chosen.action == "render" and chosen.price == Decimal("1.26") and "may pay twice" in chosen.note
    resent = run(board, service, ["meet"], LedgerSettings(resend_unknown=True))
    assert states(resent) == {"meet": "done"} and len(service.jobs) == 2


def test_an_intent_left_by_a_killed_run_is_shown_as_unknown(board: Path) -> None:
    service = MemoryService()

    def die() -> None:
        raise SystemExit("killed between the intent and the answer")

    service.on_submit = die
    with pytest.raises(SystemExit):
        run(board, service, ["meet"])
    (item,) = plan(board, ["meet"]).items
    assert item.action == "unknown" and item.previous is not None and item.previous.state == "intent"
    assert "changed" not in item.note


@pytest.mark.parametrize(("call", "outcome"), [("submit", "not_sent"), ("submit", "refused"), ("upload", "not_sent")])
def test_what_never_reached_the_service_leaves_no_entry(board: Path, call: str, outcome: str) -> None:
    service = MemoryService()
    service.script(call, outcome)
    summary = run(board, service, ["meet"])
    (result,) = summary.results
    assert result.state == "failed" and "nothing was paid" in (result.error or "") and summary.spent == 0
    assert service.jobs == []
    assert read(lock_path(board)).renders == {}
    (item,) = plan(board, ["meet"]).items
    assert (item.action, item.note) == ("render", "new scene")  # not "changed since last render"
    if outcome == "refused":
        assert result.location == (16, 13)  # the scene's prompt: the field the service named


def test_a_status_storm_keeps_the_paid_job_resumable(board: Path) -> None:
    service = MemoryService()
    service.script("wait", "pending")
    first = run(board, service, ["meet"])
    (result,) = first.results
    assert result.state == "submitted" and result.spent == Decimal("1.26")
    assert "stays submitted" in (result.error or "")
    assert entry_state(board, result.key) == "submitted"
    second = run(board, service, ["meet"])
    assert states(second) == {"meet": "done"} and second.spent == 0
    assert len(service.jobs) == 1 and service.submit_calls == 1


def test_a_404_soon_after_sending_is_not_lost_but_long_after_it_is(board: Path) -> None:
    service = MemoryService()
    service.script("wait", "gone")
    (early,) = run(board, service, ["meet"]).results
    assert early.state == "submitted" and entry_state(board, early.key) == "submitted"
    service.script("wait", "gone")
    (late,) = run(board, service, ["meet"], LedgerSettings(lost_after=timedelta(0))).results
    assert late.state == "lost" and entry_state(board, late.key) == "lost"
    (item,) = plan(board, ["meet"]).items
    assert item.action == "render" and item.price == Decimal("1.26")  # paying again is a new decision
    assert len(service.jobs) == 1


def test_a_definitive_failure_is_recorded_and_located(board: Path) -> None:
    service = MemoryService()
    service.script("wait", "failed")
    (result,) = run(board, service, ["meet"]).results
    assert result.state == "failed" and result.location == (16, 13) and result.spent == 0
    entry = read(lock_path(board)).renders[result.key]
    assert entry.state == "failed" and entry.request_id == result.request_id and "content policy" in (entry.error or "")


def test_a_download_that_fails_keeps_the_url_and_resumes_with_only_the_download(board: Path) -> None:
    service = MemoryService()
    service.script("download", "pending")
    (first,) = run(board, service, ["meet"]).results
    entry = read(lock_path(board)).renders[first.key]
    assert first.state == "submitted" and entry.video is not None and entry.video.sha256 is None
    service.script("wait", "failed")  # would fail if the ledger waited again: it must not
    (second,) = run(board, service, ["meet"]).results
    assert second.state == "done" and len(service.jobs) == 1


def test_a_lock_that_cannot_be_written_after_acceptance_names_the_request(board: Path) -> None:
    service = MemoryService()
    lock = lock_path(board)

    def break_the_lock() -> None:  # the disk refuses the next write: a directory where the file was
        lock.unlink()
        lock.mkdir()

    service.on_submit = break_the_lock
    with ledger_session(*_compiled(board, ["meet"]), service) as session:
        summary = session.run()
        notes = session.backend.notes  # type: ignore[attr-defined]
    (result,) = summary.results
    assert result.state == "submitted" and result.request_id == "req-0001"
    assert any("req-0001" in n and "it is paid for" in n for n in notes)


def test_no_key_means_nothing_is_sent_or_written(board: Path) -> None:
    service = MemoryService(has_key=False)
    with pytest.raises(RenderError), ledger_session(*_compiled(board, []), service) as session:
        session.run()
    assert service.submit_calls == 0 and not lock_path(board).exists()


def test_an_interrupted_wait_keeps_the_request_and_resumes(board: Path) -> None:
    service = MemoryService()
    stop_here = threading.Event()
    with ledger_session(*_compiled(board, ["meet"]), service) as session:
        session.backend.prepare(session.plan)

        class StopWhenSubmitted:
            def update(self, scene: str, state: str, detail: str = "") -> None:
                if state == "submitting":
                    stop_here.set()

            def note(self, message: str) -> None:
                pass

        def interrupt_after_submit() -> None:
            import _thread

            stop_here.wait(5)
            _thread.interrupt_main()

        service.script("wait", "hang")
        stopper = threading.Thread(target=interrupt_after_submit)
        stopper.start()
        try:
            summary = execute(session.plan, session.backend, progress=StopWhenSubmitted())
        finally:
            stopper.join()
    assert summary.results[0].state == "submitted"
    resumed = run(board, service, ["meet"])
    assert states(resumed) == {"meet": "done"} and len(service.jobs) == 1


def test_a_lock_cannot_send_a_video_outside_renders(board: Path, tmp_path: Path) -> None:
    service = MemoryService()
    (done,) = run(board, service, ["meet"]).results
    text = lock_path(board).read_text("utf-8")
    assert done.path is not None
    for hostile in ("board.yaml", ".git/config", "../outside.mp4", "/etc/passwd"):
        lock_path(board).write_text(text.replace(done.path, hostile), "utf-8")
        with pytest.raises(LockError, match="under renders/"):
            read(lock_path(board))
    lock_path(board).write_text(text, "utf-8")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    renders = board.parent / "renders"
    shutil.rmtree(renders)
    renders.symlink_to(outside, target_is_directory=True)
    (result,) = run(board, service, ["meet"]).results  # cached, its file "missing": must not write through the link
    assert result.state == "cached" and "outside" in (result.error or "")
    assert list(outside.iterdir()) == []
