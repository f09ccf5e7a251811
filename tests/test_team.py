"""The team store in front of the service: two clones of one board, one in-memory "fal", one store.

Clones are two project folders with the same board and images (so the same content keys), each
with its own lock; they share a real obstore store (memory://, or a directory) and one
MemoryService, which counts the jobs "fal" accepted.  The end-to-end runs with concurrent
`storyc render` processes against the fake fal server are in test_team_processes.py.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from helpers import ELLIE_BOARD, ELLIE_IMAGES, make_project
from memservice import MemoryService

from storyc.compile.compiler import CompiledBoard, Job
from storyc.compile.pipeline import compile_file
from storyc.diagnostics import StorycError
from storyc.lock.lockfile import lock_path, now_utc, read
from storyc.render.ledger import LedgerSettings
from storyc.render.run import RenderSummary
from storyc.render.session import ledger_session
from storyc.team.layer import TeamLayer, open_team
from storyc.team.liveness import Pace, Watch, process_gone, this_holder
from storyc.team.store import ClaimInfo, Holder, open_team_store

BOARD, IMAGES = ELLIE_BOARD, ELLIE_IMAGES


@pytest.fixture
def store_url() -> str:
    return f"memory://team-{uuid.uuid4().hex}"


@pytest.fixture
def clones(tmp_path: Path) -> tuple[Path, Path]:
    return make_project(tmp_path / "alice", BOARD, IMAGES), make_project(tmp_path / "bob", BOARD, IMAGES)


def team(url: str, lease: timedelta = timedelta(minutes=15)) -> TeamLayer:
    return TeamLayer(open_team_store(url), lease=lease, poll=0.01)


def render(
    board: Path,
    service: MemoryService,
    layer: TeamLayer | None,
    scenes: Sequence[str] = (),
    settings: LedgerSettings | None = None,
) -> RenderSummary:
    result = compile_file(board, use_cache=False)
    assert result.board is not None, [d.format() for d in result.diagnostics]
    jobs = [j for j in result.board.jobs if not scenes or j.scene in scenes]
    with ledger_session(result.board, jobs, service, settings, layer) as session:
        return session.run(concurrency=2)


def states(summary: RenderSummary) -> dict[str, str]:
    return {r.scene: r.state for r in summary.results}


def test_a_second_clone_takes_every_render_from_the_store_for_free(clones: tuple[Path, Path], store_url: str) -> None:
    alice, bob = clones
    fal = MemoryService()
    first = render(alice, fal, team(store_url))
    assert states(first) == {"meet": "done", "rest": "done"} and len(fal.jobs) == 2

    with ledger_session(*_compiled(bob), fal, None, team(store_url)) as session:
        assert [i.action for i in session.plan.items] == ["store", "store"]
        assert session.plan.cost == 0
        second = session.run()
    assert states(second) == {"meet": "cached", "rest": "cached"} and second.spent == 0
    assert len(fal.jobs) == 2 and fal.submit_calls == 2 and fal.uploads.count(fal.uploads[0]) == 1
    lock = read(lock_path(bob))
    for result in second.results:
        entry = lock.renders[result.key]
        assert entry.state == "done" and entry.video is not None and entry.video.path == result.path
        assert (bob.parent / result.path).read_bytes() == (alice.parent / result.path).read_bytes()  # type: ignore[operator]


def test_a_clone_resumes_the_request_another_clone_submitted(clones: tuple[Path, Path], store_url: str) -> None:
    alice, bob = clones
    fal = MemoryService()
    fal.script("wait", "pending")  # alice's wait fails: her job stays submitted, its id in the store
    (first,) = render(alice, fal, team(store_url), ["meet"]).results
    assert first.state == "submitted"
    (second,) = render(bob, fal, team(store_url), ["meet"]).results
    assert second.state == "done" and second.request_id == first.request_id and second.spent == 0
    assert len(fal.jobs) == 1


def test_another_clones_unanswered_submit_is_unknown_here_too(clones: tuple[Path, Path], store_url: str) -> None:
    alice, bob = clones
    fal = MemoryService()
    fal.script("submit", "no_answer")
    assert states(render(alice, fal, team(store_url), ["meet"])) == {"meet": "unknown"}
    (second,) = render(bob, fal, team(store_url), ["meet"]).results
    assert second.state == "unknown" and "may have accepted it" in (second.error or "")
    assert len(fal.jobs) == 1 and read(lock_path(bob)).renders[second.key].state == "unknown"


def test_a_clone_killed_while_sending_is_unknown_to_the_others(clones: tuple[Path, Path], store_url: str) -> None:
    alice, bob = clones
    fal = MemoryService()

    def killed() -> None:
        raise SystemExit("kill -9 while the submit is in flight")

    fal.on_submit = killed
    with pytest.raises(SystemExit):
        render(alice, fal, team(store_url, lease=timedelta(0)), ["meet"])
    fal.on_submit = None
    (second,) = render(bob, fal, team(store_url), ["meet"]).results
    assert second.state == "unknown"  # its lease is over, but it was sending: fal may have it
    assert fal.submit_calls == 1


def test_a_claim_whose_holder_died_before_sending_frees_the_key_after_its_lease(
    clones: tuple[Path, Path], store_url: str
) -> None:
    alice, bob = clones
    key = _compiled(alice)[1][0].key
    won, _ = open_team_store(store_url).claim(key, "alice@laptop pid 1", timedelta(0))  # then she died
    assert won
    fal = MemoryService()
    (second,) = render(bob, fal, team(store_url), ["meet"]).results
    assert second.state == "done" and len(fal.jobs) == 1


def test_a_submit_fal_did_not_take_releases_the_claim_at_once(clones: tuple[Path, Path], store_url: str) -> None:
    alice, bob = clones
    fal = MemoryService()
    fal.script("submit", "not_sent")
    assert states(render(alice, fal, team(store_url), ["meet"])) == {"meet": "failed"}
    (second,) = render(bob, fal, team(store_url), ["meet"]).results  # no 15-minute wait on alice's claim
    assert second.state == "done" and len(fal.jobs) == 1


def test_an_unreachable_store_sends_nothing_and_says_how_to_go_without(
    clones: tuple[Path, Path], tmp_path: Path
) -> None:
    from storyc.team.store import StoreError

    alice, _ = clones
    folder = empty_folder(tmp_path / "share")
    layer = team(folder.as_uri())
    fal = MemoryService()
    with ledger_session(*_compiled(alice), fal, None, layer) as session:  # planned while the store was there
        folder.rmdir()  # then the share went away: a file stands where it was
        folder.write_text("not a directory")
        summary = session.run()
    for result in summary.results:
        error = result.error or ""
        assert result.state == "failed" and "--no-store" in error and "nothing was paid" in error
    assert fal.submit_calls == 0 and fal.uploads == [] and read(lock_path(alice)).renders == {}
    with pytest.raises(StoreError, match="STORYC_STORE=none"), ledger_session(*_compiled(alice), fal, None, layer):
        pass  # planning asks the store too: a clear error, not a silent render without it


def test_pull_takes_a_video_from_the_store_when_fals_url_is_gone(clones: tuple[Path, Path], store_url: str) -> None:
    from storyc.lock.lockfile import open_store
    from storyc.render.inventory import pull

    alice, bob = clones
    fal = MemoryService()
    render(alice, fal, team(store_url))
    lock_path(bob).write_bytes(lock_path(alice).read_bytes())  # a fresh clone of alice's commit
    _, jobs = _compiled(bob)
    with open_store(bob) as store:
        pulled = pull(bob.parent, jobs, store, team=team(store_url))
    assert [p.ok for p in pulled] == [True, True]
    assert all("from the team store" in p.detail for p in pulled)
    for p in pulled:
        assert (bob.parent / p.path).read_bytes() == (alice.parent / p.path).read_bytes()


def test_push_puts_what_a_clone_rendered_before_the_team_had_a_store(
    clones: tuple[Path, Path], store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from storyc.cli import cli

    alice, bob = clones
    fal = MemoryService()
    render(alice, fal, None)  # no store yet
    monkeypatch.setenv("STORYC_STORE", store_url)
    monkeypatch.chdir(alice.parent)
    result = CliRunner().invoke(cli, ["push", "board.yaml"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"{store_url}: 2 renders pushed, 0 already there, 0 failed"
    again = CliRunner().invoke(cli, ["push", "board.yaml", "--json"], catch_exceptions=False)
    assert [r["state"] for r in __import__("json").loads(again.stdout)["renders"]] == ["present", "present"]
    second = render(bob, fal, team(store_url))
    assert states(second) == {"meet": "cached", "rest": "cached"} and len(fal.jobs) == 2


def empty_folder(path: Path) -> Path:
    path.mkdir()
    return path


def _compiled(board: Path) -> tuple[CompiledBoard, list[Job]]:
    result = compile_file(board, use_cache=False)
    assert result.board is not None
    return result.board, list(result.board.jobs)


# --- liveness: heartbeats while a claim is in hand, and how a waiting clone judges them -----------

FAST = Pace(beat_every=0.05, dead_after=1.0)


def beating_team(url: str) -> TeamLayer:
    return TeamLayer(open_team_store(url), poll=0.01, pace=FAST)


def heartbeats_running() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("storyc heartbeat")]


def slow_submit(fal: MemoryService, seconds: float) -> None:
    def wait() -> None:
        time.sleep(seconds)

    fal.on_submit = wait


@pytest.mark.parametrize("outcome", ["accept", "not_sent", "refused", "no_answer"])
def test_a_claim_beats_while_in_hand_and_stops_with_its_answer(
    clones: tuple[Path, Path], store_url: str, outcome: str
) -> None:
    alice, _ = clones
    fal = MemoryService()
    fal.script("submit", outcome)
    slow_submit(fal, 0.4)  # some beats while the submit is out
    layer = beating_team(store_url)
    render(alice, fal, layer, ["meet"])
    assert heartbeats_running() == [] and layer.notes == []
    key = _compiled(alice)[1][0].key
    beats = beats_listed(layer, key)
    assert len(beats) >= 3
    time.sleep(0.2)
    assert beats_listed(layer, key) == beats  # none after the answer


def beats_listed(layer: TeamLayer, key: str) -> list[str]:
    import obstore

    prefix = f"claims/{key.removeprefix('sha256:')}/1.alive/"
    return sorted(meta["path"] for chunk in obstore.list(layer.store._store, prefix) for meta in chunk)


def test_a_claim_stops_beating_when_the_run_is_killed(clones: tuple[Path, Path], store_url: str) -> None:
    alice, _ = clones
    fal = MemoryService()

    def killed() -> None:
        time.sleep(0.2)
        raise KeyboardInterrupt

    fal.on_submit = killed
    with pytest.raises(KeyboardInterrupt):
        render(alice, fal, beating_team(store_url), ["meet"])
    assert heartbeats_running() == []


def test_a_heartbeat_the_store_refuses_is_a_note_never_a_failure(clones: tuple[Path, Path], tmp_path: Path) -> None:
    alice, _ = clones
    folder = tmp_path / "share"
    key = _compiled(alice)[1][0].key
    claims = folder / "claims" / key.removeprefix("sha256:")
    claims.mkdir(parents=True)
    (claims / "1.alive").write_text("a file where the heartbeats' folder goes: every beat fails")
    fal = MemoryService()
    slow_submit(fal, 0.4)
    layer = beating_team(folder.as_uri())
    (result,) = render(alice, fal, layer, ["meet"]).results
    assert result.state == "done" and len(fal.jobs) == 1
    (note,) = layer.notes  # said once, not once per beat
    assert note.startswith(f"could not record that this clone is alive on claim 1 of {key}")
    assert heartbeats_running() == []


def claim_of(holder: Holder, beats: int = 0) -> ClaimInfo:
    at = now_utc()
    return ClaimInfo("sha256:" + "ab" * 32, 1, "alice", at, at + timedelta(minutes=15), holder=holder, beats=beats)


def test_a_claim_elsewhere_is_dead_when_its_heartbeats_stop_for_dead_after() -> None:
    clock = [100.0]
    watch = Watch(clock=lambda: clock[0])
    elsewhere = Holder("other-host", os.getpid(), "another-boot/pid:[1]/5", 0.5, 2.0)
    assert not watch.holder_gone(claim_of(elsewhere, beats=1))  # first look: its timer starts now
    clock[0] += 1.9
    assert not watch.holder_gone(claim_of(elsewhere, beats=1))
    assert not watch.holder_gone(claim_of(elsewhere, beats=2))  # a new beat: alive, timer again
    clock[0] += 1.9
    assert not watch.holder_gone(claim_of(elsewhere, beats=2))
    clock[0] += 0.1
    assert watch.holder_gone(claim_of(elsewhere, beats=2))
    clock[0] += 1000
    assert not watch.holder_gone(replace(claim_of(elsewhere), holder=None))  # an older storyc's: its lease decides


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process checks read /proc")
def test_a_claim_on_this_machine_is_dead_as_soon_as_its_process_is() -> None:
    report = "from storyc.team.liveness import Pace, this_holder; print(this_holder(Pace()).to_data())"
    done = subprocess.run([sys.executable, "-c", report], capture_output=True, text=True, check=True)
    exited = Holder.from_data(ast.literal_eval(done.stdout))
    assert exited is not None and process_gone(exited)  # no such process any more
    me = this_holder(Pace())
    assert not process_gone(me)  # alive: its heartbeats decide
    assert process_gone(replace(me, process=me.process + "0"))  # the same pid, another process: reused
    assert not process_gone(replace(me, process="another-boot/" + me.process.split("/", 1)[1]))  # can't tell


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STORYC_CLAIM_HEARTBEAT": "0"}, "STORYC_CLAIM_HEARTBEAT must be a number of seconds"),
        ({"STORYC_CLAIM_DEAD_AFTER": "soon"}, "STORYC_CLAIM_DEAD_AFTER must be a number of seconds"),
        ({"STORYC_CLAIM_HEARTBEAT": "30", "STORYC_CLAIM_DEAD_AFTER": "45"}, "at least twice STORYC_CLAIM_HEARTBEAT"),
    ],
)
def test_bad_heartbeat_settings_are_refused(
    clones: tuple[Path, Path], store_url: str, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    monkeypatch.setenv("STORYC_STORE", store_url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(StorycError, match=message):
        open_team(clones[0])


def test_a_clone_taken_over_before_it_sends_steps_back_and_sends_nothing_twice(
    clones: tuple[Path, Path], tmp_path: Path
) -> None:
    from obstore.store import LocalStore

    from storyc.team.store import TeamStore

    alice, _ = clones
    folder = empty_folder(tmp_path / "share")
    key = _compiled(alice)[1][0].key
    asked: list[str] = []

    def clock() -> datetime:
        """Alice's store asks the time when it claims, then when it writes `.sending`: bob takes over in between."""
        asked.append("now")
        if len(asked) == 2:  # bob took alice for dead (a lid closed for a minute), and holds a short lease
            won, _ = open_team_store(folder.as_uri()).claim(key, "bob", timedelta(seconds=0.3), gone=lambda c: True)
            assert won
        return now_utc()

    layer = TeamLayer(TeamStore(folder.as_uri(), LocalStore(folder), clock=clock), poll=0.05, pace=FAST)
    fal = MemoryService()
    (result,) = render(alice, fal, layer, ["meet"]).results
    assert result.state == "done" and len(fal.jobs) == 1 and fal.submit_calls == 1
    claims = folder / "claims" / key.removeprefix("sha256:")
    assert "claim 2 took the key over" in (claims / "1.released.json").read_text()  # alice stood back on claim 1
    assert (claims / "3.submitted.json").is_file()  # then claimed again when bob's lease ended, and sent once
    assert read(lock_path(alice)).renders[key].state == "done"
