"""Merging lock files across git branches: the rules, conflict markers, the driver, repair, real git."""

from __future__ import annotations

import itertools
import os
import shlex
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import GIT_ENV
from hypothesis import given, settings
from hypothesis import strategies as st

import storyc
from storyc.cli import cli
from storyc.lock.lockfile import RENDER_STATES, Lock, LockError, Render, Upload, Video, dumps, loads, video_path
from storyc.lock.merge import (
    ATTRIBUTES_LINE,
    STATE_RANK,
    ensure_gitattributes,
    merge_driver,
    merge_locks,
    repair,
    split_conflict,
)

CHECKOUT = Path(storyc.__file__).resolve().parent.parent  # subprocesses run this checkout's storyc
ENDPOINT = "fal-ai/kling-video/o3/4k/reference-to-video"
T0 = datetime(2026, 11, 25, 10, tzinfo=UTC)
T1 = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


def key(n: int) -> str:
    return f"sha256:{n:064x}"


def render(scene: str, state: str, **fields: object) -> Render:
    defaults: dict[str, object] = {"seconds": 5, "cost_usd": Decimal("2.10")}
    if state in ("submitted", "done", "failed", "lost"):
        defaults["request_id"] = f"req-{scene}"
    if state == "done":
        defaults["video"] = Video(url=f"https://v3b.fal.media/{scene}.mp4", bytes=100, sha256=key(0xABC))
    return Render(scene=scene, endpoint=ENDPOINT, state=state, **{**defaults, **fields})  # type: ignore[arg-type]


def both_ways(base: Lock | None, a: Lock, b: Lock) -> Lock:
    """Merge a and b each way round; renders and uploads must not depend on the order."""
    ab, ba = merge_locks(base, a, b), merge_locks(base, b, a)
    assert ab.renders == ba.renders and ab.uploads == ba.uploads
    return ab


# --- the rules ----------------------------------------------------------------------------------

RANKED = ["done", "submitted", "unknown", "intent", "lost", "failed"]


def test_the_rank_is_the_documented_one() -> None:
    assert sorted(RENDER_STATES, key=STATE_RANK.__getitem__, reverse=True) == RANKED


@pytest.mark.parametrize(("high", "low"), list(itertools.combinations(RANKED, 2)))
def test_the_more_advanced_state_wins_whichever_side_it_is_on(high: str, low: str) -> None:
    k = key(1)
    merged = both_ways(None, Lock(renders={k: render("meet", high)}), Lock(renders={k: render("meet", low)}))
    assert merged.renders[k].state == high


@pytest.mark.parametrize(
    ("richer", "poorer"),
    [
        (render("meet", "done"), render("meet", "done", video=Video(url="https://v3b.fal.media/meet.mp4"))),
        (render("meet", "submitted", video=Video(url="https://v3b.fal.media/x.mp4")), render("meet", "submitted")),
        (render("meet", "unknown", request_id="r1", error="timeout"), render("meet", "unknown", error="timeout")),
    ],
    ids=["verified-video", "video-url", "request-id"],
)
def test_same_state_keeps_the_entry_with_more_information(richer: Render, poorer: Render) -> None:
    k = key(1)
    merged = both_ways(None, Lock(renders={k: richer}), Lock(renders={k: poorer}))
    assert merged.renders[k] == richer


def test_same_state_and_information_is_decided_by_content_not_by_side() -> None:
    k = key(1)
    a = Lock(renders={k: render("meet", "failed", error="content policy")})
    b = Lock(renders={k: render("meet", "failed", error="bad image")})
    assert both_ways(None, a, b).renders[k] == both_ways(None, b, a).renders[k]


def test_renders_and_uploads_are_unions_and_the_newer_upload_wins() -> None:
    digest = key(0x77)
    ours = Lock(
        renders={key(1): render("meet", "done")},
        uploads={digest: Upload("https://a", T0), key(0x78): Upload("https://x", T0)},
    )
    theirs = Lock(renders={key(2): render("play", "submitted")}, uploads={digest: Upload("https://b", T1)})
    merged = both_ways(None, ours, theirs)
    assert set(merged.renders) == {key(1), key(2)}
    assert merged.uploads == {digest: Upload("https://b", T1), key(0x78): Upload("https://x", T0)}
    same_time = both_ways(None, Lock(uploads={digest: Upload("https://a", T1)}), theirs)
    assert same_time.uploads[digest] == Upload("https://b", T1)  # a tie: decided by content


def test_a_render_one_side_removed_is_kept() -> None:
    """gc on one branch, not the other: the render stays (gc drops it again; a request id can't come back)."""
    base = Lock(renders={key(1): render("meet", "done")})
    assert key(1) in merge_locks(base, Lock(), base).renders
    assert key(1) in merge_locks(base, base, Lock()).renders


@pytest.mark.parametrize(
    ("base", "ours", "theirs", "expected"),
    [
        ({}, {"meet": "a"}, {"play": "b"}, {"meet": "a", "play": "b"}),  # one side only: kept
        ({"meet": "a"}, {}, {"meet": "a"}, {"meet": "a"}),  # removed on one side: still kept
        ({"meet": "a"}, {"meet": "a"}, {"meet": "b"}, {"meet": "b"}),  # only theirs changed it
        ({"meet": "a"}, {"meet": "b"}, {"meet": "a"}, {"meet": "b"}),  # only ours changed it
        ({"meet": "a"}, {"meet": "b"}, {"meet": "c"}, {"meet": "b"}),  # both changed it: ours
        (None, {"meet": "b"}, {"meet": "c"}, {"meet": "b"}),  # no base: ours
    ],
)
def test_scenes(
    base: dict[str, str] | None, ours: dict[str, str], theirs: dict[str, str], expected: dict[str, str]
) -> None:
    base_lock = Lock(scenes=base) if base is not None else None
    assert merge_locks(base_lock, Lock(scenes=ours), Lock(scenes=theirs)).scenes == expected


# --- properties -------------------------------------------------------------------------------

words = st.text("abcxyz-", min_size=1, max_size=4)
videos = st.builds(
    Video,
    url=st.sampled_from(["https://v/1.mp4", "https://v/2.mp4"]),
    bytes=st.none() | st.integers(0, 9),
    sha256=st.none() | st.sampled_from([key(5), key(6)]),
    # each clone downloads its request to the key's own file: a merge moves another request's away from it
    path=st.none() | st.sampled_from(["renders/meet-000000000000.mp4", "renders/play-000000000000.mp4"]),
)
renders = st.builds(
    Render,
    scene=st.sampled_from(["meet", "play"]),
    endpoint=st.just(ENDPOINT),
    state=st.sampled_from(RENDER_STATES),
    seconds=st.integers(3, 15),
    cost_usd=st.sampled_from([Decimal("2.10"), Decimal("3.36")]),
    request_id=st.none() | words,
    video=st.none() | videos,
    error=st.none() | words,
    sent_at=st.none() | st.sampled_from([T0, T1]),
)
uploads = st.builds(Upload, url=st.sampled_from(["https://a", "https://b"]), uploaded=st.sampled_from([T0, T1]))
small_keys = st.sampled_from([key(n) for n in range(4)])
locks = st.builds(
    Lock,
    scenes=st.dictionaries(st.sampled_from(["meet", "play", "walk"]), small_keys, max_size=3),
    renders=st.dictionaries(small_keys, renders, max_size=4),
    uploads=st.dictionaries(small_keys, uploads, max_size=3),
)


@settings(max_examples=150, deadline=None)
@given(base=st.none() | locks, a=locks, b=locks, c=locks)
def test_merge_properties(base: Lock | None, a: Lock, b: Lock, c: Lock) -> None:
    merged = both_ways(base, a, b)  # commutative in renders and uploads
    assert dumps(merge_locks(base, a, a)) == dumps(a)  # idempotent
    assert dumps(merge_locks(base, merged, merged)) == dumps(merged)
    assert set(merged.renders) == set(a.renders) | set(b.renders)  # a union: nothing paid for is dropped
    assert set(merged.uploads) == set(a.uploads) | set(b.uploads)
    assert set(merged.scenes) == set(a.scenes) | set(b.scenes)
    for k, entry in merged.renders.items():
        sides = [s.renders[k] for s in (a, b) if k in s.renders]
        assert replace(entry, also_paid={}) in [r.requests().get(entry.request_id or "", r) for r in sides]
        assert all(STATE_RANK[entry.state] >= STATE_RANK[r.state] for r in sides)
        paid = {rid for r in sides for rid in r.requests()}  # no request fal accepted is dropped
        assert paid <= set(entry.requests())
        others = entry.also_paid.values()  # the key's own file is the entry's alone
        assert all(r.video is None or r.video.path != video_path(r.scene, k) for r in others)
    left = merge_locks(None, merge_locks(None, a, b), c)  # associative: the order branches land in is moot
    right = merge_locks(None, a, merge_locks(None, b, c))
    assert left.renders == right.renders and left.uploads == right.uploads
    assert loads(dumps(merged)).to_data() == merged.to_data()  # what is written reads back the same


# --- conflict markers --------------------------------------------------------------------------

TWO_WAY = """\
version: 1
scenes:
  meet: a
<<<<<<< HEAD
  play: b
=======
  walk: c
>>>>>>> other
renders: {}
<<<<<<< HEAD
uploads: {}
=======
uploads:
  x:
    url: u
>>>>>>> other
"""


def test_split_two_way_with_several_hunks() -> None:
    assert split_conflict(TWO_WAY) == (
        "version: 1\nscenes:\n  meet: a\n  play: b\nrenders: {}\nuploads: {}\n",
        "version: 1\nscenes:\n  meet: a\n  walk: c\nrenders: {}\nuploads:\n  x:\n    url: u\n",
        None,
    )


def test_split_diff3_gives_the_base_and_reads_crlf_and_longer_markers() -> None:
    text = (
        "version: 1\n"
        "scenes:\n"
        "<<<<<<<< ours\n  meet: b\n|||||||| base\n  meet: a\n========\n  meet: c\n>>>>>>>> theirs\n"
        "renders: {}\n"
        "<<<<<<< ours\nuploads: {}\n||||||| merged common ancestors\nuploads: {}\n=======\n>>>>>>> theirs\n"
    )
    ours, theirs, base = split_conflict(text.replace("\n", "\r\n")) or ("", "", None)
    assert ours.replace("\r", "") == "version: 1\nscenes:\n  meet: b\nrenders: {}\nuploads: {}\n"
    assert theirs.replace("\r", "") == "version: 1\nscenes:\n  meet: c\nrenders: {}\n"
    assert base is not None and base.replace("\r", "") == "version: 1\nscenes:\n  meet: a\nrenders: {}\nuploads: {}\n"


def test_no_markers_is_none() -> None:
    assert split_conflict(dumps(Lock(scenes={"meet": "a"}))) is None


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("version: 1\n=======\n", 2, "without an opening"),
        ("version: 1\n>>>>>>> theirs\n", 2, "without an opening"),
        ("a: 1\n<<<<<<< ours\nb: 1\n=======\nb: 2\n", 2, "never closed"),
        ("<<<<<<< ours\nb: 1\n>>>>>>> theirs\n", 3, "before the '======='"),
        ("<<<<<<< ours\n<<<<<<< again\n=======\n>>>>>>> theirs\n", 2, "inside the conflict opened at line 1"),
        ("<<<<<<< ours\n=======\n||||||| base\n>>>>>>> theirs\n", 3, "out of place"),
        ("<<<<<<< ours\n=======\n=======\n>>>>>>> theirs\n", 3, "a second '======='"),
        ("<<<<<<< ours\n========\n>>>>>>> theirs\n", 2, "malformed conflict marker"),
    ],
    ids=["stray-middle", "stray-close", "unclosed", "no-middle", "nested", "late-base", "two-middles", "wrong-size"],
)
def test_malformed_markers_are_located(text: str, line: int, problem: str) -> None:
    with pytest.raises(LockError, match=rf"^board\.lock:{line}:1: error: .*{problem}"):
        split_conflict(text)


# --- the driver and repair, in process -------------------------------------------------------------


def test_driver_merges_into_ours_and_treats_missing_or_empty_as_empty(tmp_path: Path) -> None:
    ours = Lock(scenes={"meet": key(1)}, renders={key(1): render("meet", "done")})
    (tmp_path / "empty").write_text("", "utf-8")
    (tmp_path / "ours").write_text(dumps(ours), "utf-8")
    merge_driver(tmp_path / "missing", tmp_path / "ours", tmp_path / "empty")
    assert (tmp_path / "ours").read_text("utf-8") == dumps(ours)


def test_driver_refuses_an_invalid_side_located_and_leaves_ours(tmp_path: Path) -> None:
    good = dumps(Lock(renders={key(1): render("meet", "done")}))
    bad = good.replace("state: done", "state: finished")
    for name, text in (("base", good), ("ours", good), ("theirs", bad)):
        (tmp_path / name).write_text(text, "utf-8")
    line = bad.splitlines().index("    state: finished") + 1
    with pytest.raises(LockError, match=rf"^board\.lock:{line}:5: error: renders\..*\(in the theirs version\)"):
        merge_driver(tmp_path / "base", tmp_path / "ours", tmp_path / "theirs", name="board.lock")
    result = CliRunner().invoke(cli, ["lock", "merge", *(str(tmp_path / n) for n in ("base", "ours", "theirs"))])
    assert result.exit_code == 1 and f"theirs:{line}:5: error: renders." in result.stderr
    assert (tmp_path / "ours").read_text("utf-8") == good


def test_driver_refuses_a_side_committed_with_conflict_markers(tmp_path: Path) -> None:
    (tmp_path / "ours").write_text(TWO_WAY, "utf-8")
    with pytest.raises(LockError, match=r"^board\.lock:4:1: error: the ours version has unresolved conflict markers"):
        merge_driver(tmp_path / "base", tmp_path / "ours", tmp_path / "theirs", name="board.lock")


def conflicted(ours: Lock, theirs: Lock) -> str:
    """A lock as git writes it when the driver is not configured: one hunk holding both sides whole."""
    return f"<<<<<<< HEAD\n{dumps(ours)}=======\n{dumps(theirs)}>>>>>>> other\n"


def test_repair_merges_the_sides_and_reports_where_entries_came_from(tmp_path: Path) -> None:
    shared = {key(1): render("meet", "done")}
    ours = Lock(scenes={"meet": key(1)}, renders={**shared, key(2): render("play", "submitted")})
    theirs = Lock(scenes={"meet": key(1)}, renders={**shared, key(3): render("walk", "done")})
    lock_file = tmp_path / "board.lock"
    lock_file.write_text(conflicted(ours, theirs), "utf-8")
    report = repair(lock_file)
    assert lock_file.read_text("utf-8") == dumps(merge_locks(None, ours, theirs))
    assert (report.hunks, report.from_ours, report.from_theirs, report.same) == (1, 1, 1, 2)
    assert report.sections["renders"] == (1, 1, 1)
    assert (
        report.summary()
        == f"{lock_file}: repaired 1 conflict: 1 entry from ours, 1 from theirs, 2 the same on both sides"
    )


def test_repair_without_markers_leaves_the_file_byte_identical(tmp_path: Path) -> None:
    lock_file = tmp_path / "board.lock"
    original = b"# hand-formatted\r\nversion: 1\r\nscenes: {meet: a}\r\n"
    lock_file.write_bytes(original)
    before = lock_file.stat().st_mtime_ns
    report = repair(lock_file)
    assert not report.repaired and "nothing to repair" in report.summary()
    assert lock_file.read_bytes() == original and lock_file.stat().st_mtime_ns == before


def test_repair_locates_a_bad_entry_at_its_line_in_the_conflicted_file(tmp_path: Path) -> None:
    theirs_text = dumps(Lock(renders={key(3): render("walk", "done")})).replace("seconds: 5", "seconds: many")
    text = f"<<<<<<< HEAD\n{dumps(Lock())}=======\n{theirs_text}>>>>>>> other\n"
    lock_file = tmp_path / "board.lock"
    lock_file.write_text(text, "utf-8")
    line = text.splitlines().index("    seconds: many") + 1
    result = CliRunner().invoke(cli, ["lock", "repair", str(tmp_path / "board.yaml")])
    assert result.exit_code == 1
    assert f"{lock_file}:{line}:5: error: renders.{key(3)}.seconds: expected a whole number" in result.stderr
    assert "(in the theirs version)" in result.stderr
    assert lock_file.read_text("utf-8") == text


# --- real git repositories -------------------------------------------------------------------


def run_git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["git", *args], cwd=root, env=subprocess_env(), capture_output=True, text=True, check=False, timeout=60
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def subprocess_env() -> dict[str, str]:
    return {**os.environ, **GIT_ENV, "PYTHONPATH": str(CHECKOUT)}


BASE_LOCK = Lock(scenes={"meet": key(1)}, renders={key(1): render("meet", "done")})
ONE_LOCK = Lock(
    scenes={"meet": key(1), "play": key(2)},
    renders={**BASE_LOCK.renders, key(2): render("play", "done")},
    uploads={key(0x77): Upload("https://v3b.fal.media/a.png", T0)},
)
TWO_LOCK = Lock(
    scenes={"meet": key(1), "walk": key(3)},
    renders={**BASE_LOCK.renders, key(3): render("walk", "submitted", sent_at=T1)},
    uploads={key(0x77): Upload("https://v3b.fal.media/b.png", T1)},
)


def git_repo(root: Path, *, driver: bool) -> None:
    """A new git repository at `root` with the `.gitattributes` line, and the lock merge driver configured or not."""
    root.mkdir()
    run_git(root, "init", "-q", "-b", "main")
    run_git(root, "config", "user.name", "Test")
    run_git(root, "config", "user.email", "test@example.org")
    if driver:
        command = f"{shlex.quote(sys.executable)} -m storyc lock merge %O %A %B %P"
        run_git(root, "config", "merge.storyc-lock.driver", command)
    ensure_gitattributes(root)  # what `storyc init` writes


def two_branches(root: Path, *, driver: bool) -> Path:
    """main (the base lock) with branches `one` and `two`, each of which rendered a scene of its own."""
    git_repo(root, driver=driver)
    lock_file = root / "board.lock"
    lock_file.write_text(dumps(BASE_LOCK), "utf-8")
    run_git(root, "add", "-A")
    run_git(root, "commit", "-q", "-m", "base")
    for branch, lock in (("one", ONE_LOCK), ("two", TWO_LOCK)):
        run_git(root, "checkout", "-q", "-b", branch, "main")
        lock_file.write_text(dumps(lock), "utf-8")
        run_git(root, "commit", "-q", "-am", f"render on {branch}")
    return lock_file


@pytest.mark.slow
def test_git_merge_with_the_driver_keeps_both_branches_renders(tmp_path: Path) -> None:
    lock_file = two_branches(tmp_path / "repo", driver=True)
    root = lock_file.parent
    assert "merge: storyc-lock" in run_git(root, "check-attr", "merge", "board.lock").stdout
    assert "merge: unspecified" in run_git(root, "check-attr", "merge", "uv.lock").stdout
    run_git(root, "checkout", "-q", "one")
    run_git(root, "merge", "-q", "--no-edit", "two")  # no conflict
    expected = merge_locks(BASE_LOCK, ONE_LOCK, TWO_LOCK)
    assert set(expected.renders) == {key(1), key(2), key(3)}
    assert lock_file.read_text("utf-8") == dumps(expected)
    assert run_git(root, "status", "--porcelain").stdout == ""
    run_git(root, "checkout", "-q", "-b", "other-way", "two")
    run_git(root, "merge", "-q", "--no-edit", "one")
    assert lock_file.read_bytes() == run_git(root, "show", "one:board.lock").stdout.encode()  # byte-identical


@pytest.mark.slow
def test_git_merge_with_the_driver_reports_a_conflict_for_an_invalid_lock(tmp_path: Path) -> None:
    lock_file = two_branches(tmp_path / "repo", driver=True)
    root = lock_file.parent
    lock_file.write_text(dumps(TWO_LOCK).replace("state: submitted", "state: pending"), "utf-8")
    run_git(root, "commit", "-q", "-am", "hand edit")
    run_git(root, "checkout", "-q", "one")
    done = run_git(root, "merge", "--no-edit", "two", check=False)
    assert done.returncode != 0 and "CONFLICT" in done.stdout
    assert "board.lock:" in done.stderr and "state: expected one of" in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("style", ["merge", "diff3"])
def test_without_the_driver_git_leaves_markers_and_repair_fixes_them(tmp_path: Path, style: str) -> None:
    lock_file = two_branches(tmp_path / "repo", driver=False)
    root = lock_file.parent
    run_git(root, "checkout", "-q", "one")
    done = run_git(root, "-c", f"merge.conflictStyle={style}", "merge", "--no-edit", "two", check=False)
    assert done.returncode != 0
    text = lock_file.read_text("utf-8")
    assert "<<<<<<< HEAD" in text and (("|||||||" in text) == (style == "diff3"))
    fixed = subprocess.run(
        [sys.executable, "-m", "storyc", "lock", "repair", "board.yaml"],
        cwd=root,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.startswith("board.lock: repaired ")
    assert lock_file.read_text("utf-8") == dumps(merge_locks(BASE_LOCK, ONE_LOCK, TWO_LOCK))
    run_git(root, "add", "board.lock")
    run_git(root, "commit", "-q", "--no-edit")
    again = subprocess.run(
        [sys.executable, "-m", "storyc", "lock", "repair", "board.yaml"],
        cwd=root,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 0 and "nothing to repair" in again.stdout


# --- storyc init and .gitattributes -------------------------------------------------------------


def test_init_writes_gitattributes(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "film")])
    assert result.exit_code == 0, result.output
    attributes = (tmp_path / "film" / ".gitattributes").read_text("utf-8")
    assert attributes.splitlines().count(ATTRIBUTES_LINE) == 1
    assert 'git config merge.storyc-lock.driver "storyc lock merge %O %A %B"' in result.stdout


def test_init_appends_to_gitattributes_once(tmp_path: Path) -> None:
    existing = tmp_path / "film" / ".gitattributes"
    existing.parent.mkdir()
    existing.write_text("*.png binary", "utf-8")  # no final newline
    assert CliRunner().invoke(cli, ["init", str(tmp_path / "film")]).exit_code == 0
    lines = existing.read_text("utf-8").splitlines()
    assert lines[0] == "*.png binary" and lines.count(ATTRIBUTES_LINE) == 1
    assert not ensure_gitattributes(existing.parent)  # already there: unchanged
    assert existing.read_text("utf-8").splitlines() == lines
    spaced = tmp_path / "other" / ".gitattributes"
    spaced.parent.mkdir()
    spaced.write_text("board.lock\tmerge=storyc-lock\n", "utf-8")
    assert not ensure_gitattributes(spaced.parent)


def test_help_teaches_the_setup() -> None:
    for command in (["lock", "merge", "--help"], ["lock", "repair", "--help"]):
        out = CliRunner().invoke(cli, command).stdout
        assert 'git config merge.storyc-lock.driver "storyc lock merge %O %A %B"' in out
        assert "board.lock merge=storyc-lock" in out
    assert "*.lock" in CliRunner().invoke(cli, ["lock", "merge", "--help"]).stdout  # ... and why not that


def test_a_lock_that_merged_reads_back(tmp_path: Path) -> None:
    merged = merge_locks(BASE_LOCK, ONE_LOCK, replace(TWO_LOCK, scenes={"meet": key(4)}))
    assert merged.scenes["meet"] == key(4)  # theirs changed it, ours did not
    assert loads(dumps(merged)).to_data() == merged.to_data()
