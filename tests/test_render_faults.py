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
from helpers import ELLIE_BOARD, ELLIE_IMAGES, fast_fal, kill_once_accepted, make_project

from storyc.compile.pipeline import compile_file
from storyc.lock.lockfile import lock_path, read
from storyc.render.ledger import LedgerSettings
from storyc.render.run import RenderSummary
from storyc.render.session import fal_session

FAST = fast_fal()



@pytest.fixture
def board(tmp_path: Path) -> Path:
    return make_project(tmp_path / "film", ELLIE_BOARD, ELLIE_IMAGES)


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


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_accepted_then_answered_with_a_5xx_is_unknown_never_resent(fake_fal: FakeFal, board: Path, status: int) -> None:
    fake_fal.fail_next("submit", status, count=2, after_processing=True)  # fal took both; both answers are errors
    first = render(board)
    assert states(first) == {"meet": "unknown", "rest": "unknown"}
    assert fake_fal.accepted_count() == 2
    fake_fal.clear_faults()
    again = render(board)
    assert states(again) == {"meet": "unknown", "rest": "unknown"} and fake_fal.accepted_count() == 2


def test_an_ingress_5xx_after_acceptance_is_not_resent_by_fal_client(fake_fal: FakeFal, board: Path) -> None:
    fake_fal.fail_next("submit", 503, count=1, after_processing=True, ingress=True)  # fal_client would re-send
    render(board)
    assert fake_fal.accepted_count() == 2  # one per scene: no hidden duplicate


def test_a_cancelled_status_ends_the_job_as_failed(fake_fal: FakeFal, board: Path) -> None:
    fake_fal.report_status_next("CANCELLED", count=50)
    first = render(board)
    assert states(first) == {"meet": "failed", "rest": "failed"}
    assert all("cancelled" in (r.error or "") for r in first.results)
    assert lock_states(board) == {"meet": "failed", "rest": "failed"}


def test_an_unknown_status_word_keeps_the_job_submitted(fake_fal: FakeFal, board: Path) -> None:
    fake_fal.report_status_next("PAUSED", count=50)
    first = render(board)
    assert states(first) == {"meet": "submitted", "rest": "submitted"}
    assert all("unexpected status 'PAUSED'" in (r.error or "") for r in first.results)
    fake_fal.clear_faults()
    again = render(board)
    assert states(again) == {"meet": "done", "rest": "done"} and fake_fal.accepted_count() == 2


def test_killed_between_acceptance_and_the_answer_is_unknown_and_not_resent(fake_fal: FakeFal, board: Path) -> None:
    fake_fal.delay_next("submit", 30, after_processing=True)  # the kill window: accepted, answer not yet back
    kill_once_accepted(fake_fal, board, ["render", "board.yaml", "--yes", "--scene", "meet"])
    fake_fal.clear_faults()
    summary = render(board)
    assert states(summary) == {"meet": "unknown", "rest": "done"}
    assert fake_fal.accepted_count() == 2  # meet once (the killed run's), rest once


# --- fal's answers read by what they prove (408 and 409 on submit; status retries bounded) -------


def test_a_408_on_submit_proves_not_taken_and_is_sent_again_once(fake_fal: FakeFal, board: Path) -> None:
    fake_fal.fail_next("submit", 408)  # fal timed out reading one request: it took nothing
    first = render(board)
    assert states(first) == {"meet": "done", "rest": "done"}
    assert fake_fal.count("submit") == 3 and fake_fal.accepted_count() == 2  # one POST again, one job each


def test_a_408_twice_is_not_sent_a_third_time_and_costs_nothing(fake_fal: FakeFal, board: Path) -> None:
    fake_fal.fail_next("submit", 408, count=100)
    first = render(board)
    assert states(first) == {"meet": "failed", "rest": "failed"}
    assert all("timed out reading the request twice" in (r.error or "") for r in first.results)
    assert all("nothing was paid" in (r.error or "") for r in first.results) and first.spent == 0
    assert fake_fal.count("submit") == 4 and fake_fal.accepted_count() == 0  # two POSTs a scene
    assert read(lock_path(board)).renders == {}


@pytest.mark.parametrize("taken", [True, False], ids=["fal-took-it", "fal-did-not"])
def test_a_409_on_submit_is_unknown_never_a_refusal_that_pays_again(
    fake_fal: FakeFal, board: Path, taken: bool
) -> None:
    """A conflict does not prove "not accepted" (it may be with the very job fal took): `unknown`."""
    fake_fal.fail_next("submit", 409, count=2, after_processing=taken)
    first = render(board)
    assert states(first) == {"meet": "unknown", "rest": "unknown"}
    assert lock_states(board) == {"meet": "unknown", "rest": "unknown"}
    assert fake_fal.count("submit") == 2  # neither storyc nor fal_client sent one again
    accepted = fake_fal.accepted_count()
    assert accepted == (2 if taken else 0)
    fake_fal.clear_faults()
    again = render(board)
    assert states(again) == {"meet": "unknown", "rest": "unknown"}
    assert fake_fal.accepted_count() == accepted  # nothing paid twice: the rerun sends nothing


STATUS_FAULTS: dict[str, Callable[[FakeFal], None]] = {
    "408": lambda fal: fal.fail_next("status", 408, count=1000),
    "409": lambda fal: fal.fail_next("status", 409, count=1000),
    "429": lambda fal: fal.fail_next("status", 429, count=1000),
    "ingress 503": lambda fal: fal.fail_next("status", 503, count=1000, ingress=True),
}


@pytest.mark.parametrize("fault", STATUS_FAULTS)
def test_a_failing_status_costs_a_bounded_number_of_gets_then_the_job_waits(
    fake_fal: FakeFal, board: Path, fault: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What fal_client retries on status (408, 409, 429, ingress 5xx) is retried by one policy,
    storyc's: `Retrying.attempts` GETs per check, not fal_client's 10 inside each of them."""
    from fakefal.plugin import fast_retries

    fast_retries(monkeypatch)  # were fal_client's own retries still nested, they would be quick to count
    STATUS_FAULTS[fault](fake_fal)
    first = render(board)
    assert states(first) == {"meet": "submitted", "rest": "submitted"}  # a paid job is never failed by this
    assert fake_fal.count("status") == 2 * FAST.retrying.attempts  # per scene: one check, 4 GETs
    fake_fal.clear_faults()
    again = render(board)
    assert states(again) == {"meet": "done", "rest": "done"} and again.spent == 0
    assert fake_fal.accepted_count() == 2
