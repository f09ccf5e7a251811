"""Never pay twice under fal's ordinary faults: the real fal_client against the fake fal server.

Each case renders two scenes under a fault, then renders again on a healthy
server, and counts the jobs the fake ACCEPTED (what fal would bill): never
more than one per scene, and the rerun adds none for a job already accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fakefal import FakeFal
from helpers import make_project

from storyc.backends.fal import FalSettings, Polling, Retrying
from storyc.ledger import LedgerSettings
from storyc.lock import lock_path, read
from storyc.pipeline import compile_file
from storyc.render import RenderSummary
from storyc.session import fal_session

FAST = FalSettings(
    polling=Polling(first=0.02, factor=1.5, ceiling=0.1), retrying=Retrying(first_wait=0.01, max_wait=0.05)
)

BOARD = """
version: 1
title: Faults
target:
  endpoint: fal-ai/kling-video/o3/4k/reference-to-video
characters:
  ellie:
    frontal: refs/ellie-front.png
    references: [refs/ellie-side.png]
scenes:
  - id: meet
    prompt: "@ellie walks in."
    duration: 3
  - id: rest
    prompt: "@ellie sleeps."
    duration: 3
"""


@pytest.fixture
def board(tmp_path: Path) -> Path:
    return make_project(tmp_path / "film", BOARD, {"refs/ellie-front.png": "grey", "refs/ellie-side.png": "silver"})


def render(board: Path, ledger: LedgerSettings | None = None) -> RenderSummary:
    result = compile_file(board, use_cache=False)
    assert result.board is not None, [d.format() for d in result.diagnostics]
    with fal_session(result.board, result.board.jobs, FAST, ledger) as session:
        return session.run(concurrency=2)


def states(summary: RenderSummary) -> dict[str, str]:
    return {r.scene: r.state for r in summary.results}


def lock_states(board: Path) -> dict[str, str]:
    return {r.scene: r.state for r in read(lock_path(board)).renders.values()}


# Faults after which the accepted jobs are still fal's to finish: they stay `submitted`, then resume.
# (Dropped connections and fal's ingress 502-504 are retried inside fal_client first, for up to ~50 s:
# test_render_fal.py covers those ending in success.)
RESUMABLE: dict[str, Callable[[FakeFal], None]] = {
    "8 status 500s": lambda fal: fal.fail_next("status", 500, count=8),
    "8 result 500s": lambda fal: fal.fail_next("result", 500, count=8),
    "a 404 on the first status polls": lambda fal: fal.fail_next("status", 404, count=2),
    "401 on status (a revoked key)": lambda fal: fal.fail_next("status", 401, count=8),
}


@pytest.mark.parametrize("fault", RESUMABLE)
def test_a_paid_job_stays_resumable_through_transient_faults(fake_fal: FakeFal, board: Path, fault: str) -> None:
    RESUMABLE[fault](fake_fal)
    first = render(board)
    assert set(states(first).values()) <= {"submitted", "done"}, first.results
    assert "submitted" in states(first).values()  # the fault hit at least one scene
    assert set(lock_states(board).values()) <= {"submitted", "done"}
    assert len(fake_fal.jobs) == 2
    fake_fal.clear_faults()
    again = render(board)
    assert set(states(again).values()) <= {"done", "cached"} and again.spent == 0
    assert len(fake_fal.jobs) == 2  # not one job more


def test_a_submit_whose_response_is_dropped_is_unknown_and_not_resent(fake_fal: FakeFal, board: Path) -> None:
    fake_fal.drop_next("submit", count=20, after_processing=True)  # fal takes each one; every answer is lost
    first = render(board)
    assert states(first) == {"meet": "unknown", "rest": "unknown"}
    assert len(fake_fal.jobs) == 2  # one each: nobody (storyc or fal_client) sent one twice
    fake_fal.clear_faults()
    again = render(board)
    assert states(again) == {"meet": "unknown", "rest": "unknown"}
    assert len(fake_fal.jobs) == 2
    assert lock_states(board) == {"meet": "unknown", "rest": "unknown"}


def test_an_ingress_error_on_submit_is_never_resent(fake_fal: FakeFal, board: Path) -> None:
    fake_fal.fail_next("submit", 503, count=1, ingress=True)  # fal_client itself would re-send this one
    first = render(board)
    assert sorted(states(first).values()) == ["done", "unknown"]
    assert fake_fal.count("submit") == 2  # exactly one POST per scene


def test_429s_on_submit_are_retried_without_a_duplicate_warning(fake_fal: FakeFal, board: Path) -> None:
    fake_fal.fail_next("submit", 429, count=2)
    first = render(board)
    assert states(first) == {"meet": "done", "rest": "done"}
    assert len(fake_fal.jobs) == 2
    assert all(not r.notes and not r.error for r in first.results)


def test_a_429_storm_is_not_sent_and_not_recorded(fake_fal: FakeFal, board: Path) -> None:
    fake_fal.fail_next("submit", 429, count=100)
    first = render(board)
    assert states(first) == {"meet": "failed", "rest": "failed"}
    assert all("nothing was paid" in (r.error or "") for r in first.results) and first.spent == 0
    assert fake_fal.jobs == [] and read(lock_path(board)).renders == {}
