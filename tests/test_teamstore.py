"""The team store against real stores: obstore's memory and local directory stores, and S3 served by moto.

moto (5.2.5, the newest) answers a second `If-None-Match: *` PUT with 412, which obstore reports as
AlreadyExistsError (test_moto_refuses_a_second_create), but it checks and stores in two steps
without a lock: under thread contention two concurrent creates of one key can both succeed (seen
here in about 1 run in 100 of 16 racing writers with a 1 µs GIL switch interval).  Real S3 makes
the check and the write one atomic step, so the moto server the S3 tests use serializes
conditional PUTs (_SerializedConditionalPuts): the race tests then test storyc's protocol against
the guarantee S3 gives, not moto's gap.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from s3server import SECRET, aws_env, new_bucket

from storyc.team.store import (
    DEFAULT_LEASE,
    ClaimInfo,
    DoneRecord,
    Holder,
    StoreError,
    TeamStore,
    open_team_store,
    store_url,
)

ROOT = Path(__file__).resolve().parent.parent
KEY = "sha256:" + "ab" * 32
OTHER_KEY = "sha256:" + "cd" * 32
LONG = timedelta(minutes=5)
EXPIRED = timedelta(0)

pytestmark = pytest.mark.timeout(60)


def key_of(i: int) -> str:
    return "sha256:" + hashlib.sha256(str(i).encode()).hexdigest()


@pytest.fixture(params=["memory", "file", "s3"])
def url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty store of each kind."""
    if request.param == "memory":
        return f"memory://test-{uuid.uuid4().hex}"
    if request.param == "file":
        folder = tmp_path / "team store"
        folder.mkdir()
        return folder.as_uri()
    endpoint = request.getfixturevalue("moto_endpoint")
    aws_env(monkeypatch, endpoint)
    return f"s3://{new_bucket(endpoint)}/team/film"


@pytest.fixture(params=["file", "s3"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A store that other processes can reach too."""
    if request.param == "file":
        folder = tmp_path / "shared"
        folder.mkdir()
        return folder.as_uri()
    endpoint = request.getfixturevalue("moto_endpoint")
    aws_env(monkeypatch, endpoint)
    return f"s3://{new_bucket(endpoint)}/team"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_video(path: Path, size: int, seed: int = 0) -> str:
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB
    data = (block * (size // len(block) + 1))[:size]
    path.write_bytes(data)
    return "sha256:" + hashlib.sha256(data).hexdigest()


def record(key: str, video_sha256: str, video_bytes: int, request_id: str = "req-1") -> DoneRecord:
    return DoneRecord(
        key=key,
        scene="s01",
        endpoint="fal-ai/kling-video/o3/4k/reference-to-video",
        request_id=request_id,
        seconds=8,
        cost_usd=Decimal("3.36"),
        video_sha256=video_sha256,
        video_bytes=video_bytes,
        stored_at=datetime(2026, 12, 3, 10, 0, tzinfo=UTC),
    )


# --- where the store is ------------------------------------------------------------------------


def test_store_url_env_wins_and_none_disables() -> None:
    assert store_url({}, None) is None
    assert store_url({}, "s3://team/film") == "s3://team/film"
    assert store_url({"STORYC_STORE": "file:///srv/x"}, "s3://team/film") == "file:///srv/x"
    assert store_url({"STORYC_STORE": "none"}, "s3://team/film") is None
    assert store_url({"STORYC_STORE": "NONE"}, "s3://team/film") is None
    assert store_url({"STORYC_STORE": ""}, "s3://team/film") is None
    assert store_url({"STORYC_STORE": "  "}, "s3://team/film") is None
    assert store_url({}, "none") is None
    assert store_url({"OTHER": "x"}, " gs://b/p ") == "gs://b/p"


@pytest.mark.parametrize(
    ("url", "expect"),
    [
        ("", "is empty"),
        ("team/film", "has no scheme"),
        ("ftp://host/dir", "unsupported scheme 'ftp'"),
        ("s3://", "needs a bucket name"),
        ("s3://bucket/a/../b", "'..'"),
        (f"s3://AKID:{SECRET}@bucket/p", "carries credentials"),
        (f"s3://bucket/p?secret={SECRET}", "query"),
        ("file://relative/dir", "names a host"),
    ],
)
def test_bad_urls_name_the_accepted_forms(url: str, expect: str) -> None:
    with pytest.raises(StoreError) as err:
        open_team_store(url, environ={})
    message = str(err.value)
    assert expect in message
    assert "s3://BUCKET[/PREFIX]" in message and "file:///ABSOLUTE/DIR" in message
    assert SECRET not in message


def test_missing_directory_is_refused(tmp_path: Path) -> None:
    url = (tmp_path / "typo").as_uri()
    with pytest.raises(StoreError, match="no such directory"):
        open_team_store(url, environ={})
    assert not (tmp_path / "typo").exists()


def test_bad_timeout_setting() -> None:
    with pytest.raises(StoreError, match="STORYC_STORE_TIMEOUT"):
        open_team_store("s3://bucket/p", environ={"STORYC_STORE_TIMEOUT": "soon"})


def test_memory_urls_share_one_store_per_url() -> None:
    name = f"memory://share-{uuid.uuid4().hex}"
    first, second = open_team_store(name), open_team_store(name + "/")
    other = open_team_store(f"memory://other-{uuid.uuid4().hex}")
    assert first.claim(KEY, "a", LONG)[0]
    assert isinstance(second.lookup(KEY), ClaimInfo)
    assert other.lookup(KEY) is None
    assert first.url == second.url == name


def test_s3_display_url_and_http_guard(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    aws_env(monkeypatch, moto_endpoint)
    bucket = new_bucket(moto_endpoint)
    store = open_team_store(f"s3://{bucket}/team/film/")
    assert store.url == f"s3://{bucket}/team/film"
    assert store.requests == 1  # the reachability check
    monkeypatch.delenv("AWS_ALLOW_HTTP")
    with pytest.raises(StoreError, match="AWS_ALLOW_HTTP=true"):
        open_team_store(f"s3://{bucket}/team/film")


def test_s3_settings_come_from_the_given_environ(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    aws_env(monkeypatch, moto_endpoint)
    bucket = new_bucket(moto_endpoint)
    environ = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    store = open_team_store(f"s3://{bucket}/p", environ=environ)
    assert store.claim(KEY, "a", LONG)[0]


def test_obstore_is_not_imported_with_storyc() -> None:
    code = "import sys, storyc.team.store, storyc.cli; print('obstore' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- claims ------------------------------------------------------------------------------------


def test_first_claim_wins_and_blocks_others(url: str) -> None:
    alice, bob = open_team_store(url), open_team_store(url)
    assert alice.lookup(KEY) is None
    won, mine = alice.claim(KEY, "alice@laptop pid 1", LONG)
    assert won and isinstance(mine, ClaimInfo)
    assert (mine.key, mine.n, mine.owner, mine.request_id, mine.unknown) == (KEY, 1, "alice@laptop pid 1", None, False)
    assert mine.lease_until - mine.claimed_at == LONG
    assert mine.live(datetime.now(UTC)) and not mine.live(mine.lease_until)

    won, theirs = bob.claim(KEY, "bob@ci pid 2", LONG)
    assert not won and isinstance(theirs, ClaimInfo)
    assert (theirs.n, theirs.owner) == (1, "alice@laptop pid 1")
    assert bob.lookup(KEY) == theirs
    assert bob.lookup(OTHER_KEY) is None


def test_expired_claim_without_submit_is_claimed_again(url: str) -> None:
    alice, bob = open_team_store(url), open_team_store(url)
    assert alice.claim(KEY, "alice", EXPIRED)[0]
    won, mine = bob.claim(KEY, "bob", LONG)
    assert won and isinstance(mine, ClaimInfo) and mine.n == 2
    lookup = alice.lookup(KEY)
    assert isinstance(lookup, ClaimInfo) and (lookup.n, lookup.owner) == (2, "bob")


def test_submitted_claim_blocks_even_when_expired(url: str) -> None:
    alice, bob = open_team_store(url), open_team_store(url)
    won, mine = alice.claim(KEY, "alice", EXPIRED)
    assert won and isinstance(mine, ClaimInfo)
    alice.mark_submitted(mine, "req-123", "fal-ai/kling")
    alice.mark_submitted(mine, "req-123", "fal-ai/kling")  # a retried write of the same news is fine
    with pytest.raises(StoreError, match="already marked submitted as request req-123"):
        alice.mark_submitted(mine, "req-999", "fal-ai/kling")

    won, blocker = bob.claim(KEY, "bob", LONG)
    assert not won and isinstance(blocker, ClaimInfo)
    assert (blocker.n, blocker.request_id, blocker.endpoint, blocker.unknown) == (1, "req-123", "fal-ai/kling", False)
    assert bob.lookup(KEY) == blocker


def test_notes_written_to_the_store_never_carry_the_fal_key(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reason is fal's words (they may echo the key), and the store is read by the whole team."""
    key_id, secret = "team-key-id-0123", "team-key-secret-4567"
    monkeypatch.setenv("FAL_KEY", f"{key_id}:{secret}")
    alice = open_team_store(url)
    for mark in (alice.mark_unknown, alice.mark_released):
        won, mine = alice.claim(KEY if mark == alice.mark_unknown else OTHER_KEY, "alice", EXPIRED)
        assert won and isinstance(mine, ClaimInfo)
        mark(mine, f"HTTP 409: conflict for key {key_id}:{secret}, id {key_id}")
    import obstore

    notes = [bytes(obstore.get(alice._store, m["path"]).bytes()).decode() for m in obstore.list(alice._store).collect()]
    reasons = [json.loads(n)["reason"] for n in notes if "reason" in n]
    assert reasons == ["HTTP 409: conflict for key [redacted], id [redacted]"] * 2


def test_unknown_claim_blocks_even_when_expired(url: str) -> None:
    alice, bob = open_team_store(url), open_team_store(url)
    won, mine = alice.claim(KEY, "alice", EXPIRED)
    assert won and isinstance(mine, ClaimInfo)
    alice.mark_unknown(mine, "ReadTimeout")
    alice.mark_unknown(mine, "ReadTimeout")
    won, blocker = bob.claim(KEY, "bob", LONG)
    assert not won and isinstance(blocker, ClaimInfo)
    assert (blocker.n, blocker.unknown, blocker.reason, blocker.request_id) == (1, True, "ReadTimeout", None)
    looked = bob.lookup(KEY)
    assert isinstance(looked, ClaimInfo) and looked.unknown


def test_a_late_submit_on_an_older_claim_still_blocks(url: str) -> None:
    """Claim 1's holder outlived its lease, claim 2 was taken, then fal accepted claim 1: nobody pays a third time."""
    alice, bob, carol = open_team_store(url), open_team_store(url), open_team_store(url)
    won, first = alice.claim(KEY, "alice", EXPIRED)
    assert won and isinstance(first, ClaimInfo)
    assert bob.claim(KEY, "bob", EXPIRED)[0]
    alice.mark_submitted(first, "req-late", "fal-ai/kling")
    won, blocker = carol.claim(KEY, "carol", LONG)
    assert not won and isinstance(blocker, ClaimInfo)
    assert (blocker.n, blocker.request_id) == (1, "req-late")


HOLDER = Holder("laptop", 4242, "boot/pid:[1]/777", 0.5, 2.0)


def test_a_claim_records_its_holder_and_its_newest_heartbeat(url: str) -> None:
    alice, bob = open_team_store(url), open_team_store(url)
    won, mine = alice.claim(KEY, "alice", LONG, holder=HOLDER)
    assert won and isinstance(mine, ClaimInfo) and mine.holder == HOLDER and mine.beats == 0
    for k in (1, 2, 3, 3):  # a beat written twice (a retried request that landed) is the same news
        alice.beat(mine, k)
    seen = bob.lookup(KEY)
    assert isinstance(seen, ClaimInfo) and (seen.n, seen.holder, seen.beats) == (1, HOLDER, 3)
    assert ClaimInfo.from_json(mine.to_json()) == mine


@pytest.mark.parametrize(
    "holder",
    [None, "laptop", {"host": "laptop", "pid": 1, "process": "", "beat_every": 5, "dead_after": 2}, {"pid": "1"}],
)
def test_a_claim_without_a_usable_holder_is_judged_by_its_lease(holder: object) -> None:
    """Written by an older storyc (no holder), or by hand: nobody may take it for dead before its lease ends."""
    at = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    mine = ClaimInfo(KEY, 1, "alice", at, at + timedelta(minutes=15))
    data = json.loads(mine.to_json())
    assert "holder" not in data
    data["holder"] = holder
    assert ClaimInfo.from_json(json.dumps(data)).holder is None


def test_a_claim_judged_gone_is_taken_over_and_its_holder_then_sends_nothing(url: str) -> None:
    alice, bob = open_team_store(url), open_team_store(url)
    won, first = alice.claim(KEY, "alice", LONG, holder=HOLDER)
    assert won and isinstance(first, ClaimInfo)
    assert bob.claim(KEY, "bob", LONG, gone=lambda claim: False) == (False, first)
    won, second = bob.claim(KEY, "bob", LONG, gone=lambda claim: claim.owner == "alice")  # within its lease
    assert won and isinstance(second, ClaimInfo) and second.n == 2
    assert alice.mark_sending(first) is False  # alive after all (a lid closed for a minute): she must not send
    assert bob.mark_sending(second) is True
    found = alice.lookup(KEY)
    assert isinstance(found, ClaimInfo) and (found.n, found.sending, found.owner) == (2, True, "bob")


def test_a_claim_sending_stops_the_clone_that_took_the_key_over(url: str) -> None:
    """Alice's `.sending` lands after bob judged her gone and claimed, before bob looks again: bob must not send."""
    import obstore

    alice, bob = open_team_store(url), open_team_store(url)
    won, first = alice.claim(KEY, "alice", LONG, holder=HOLDER)
    assert won and isinstance(first, ClaimInfo)
    won, second = bob.claim(KEY, "bob", LONG, gone=lambda claim: True)
    assert won and isinstance(second, ClaimInfo) and second.n == 2
    # Alice writes `.sending` (the first half of her mark_sending), then bob checks before alice does.
    note = b'{"sent_at": "2026-12-03T10:00:00Z"}'
    obstore.put(alice._store, f"claims/{KEY.removeprefix('sha256:')}/1.sending.json", note)
    assert bob.mark_sending(second) is False  # bob stands back (and releases claim 2)...
    assert alice.mark_sending(first) is True  # ...so alice, looking after him, sends: one submit in all
    found = bob.lookup(KEY)
    assert isinstance(found, ClaimInfo) and (found.n, found.sending) == (1, True)
    assert bob.claim(KEY, "bob", LONG, gone=lambda claim: True) == (False, found)  # sending: never taken over


def test_claim_race_between_threads(url: str) -> None:
    clones = [open_team_store(url) for _ in range(8)]
    start = threading.Barrier(len(clones))
    results: list[tuple[bool, DoneRecord | ClaimInfo]] = [None] * len(clones)  # type: ignore[list-item]

    def run(i: int) -> None:
        start.wait()
        results[i] = clones[i].claim(KEY, f"clone {i}", LONG)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clones))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [got for won, got in results if won]
    assert len(winners) == 1
    winner = winners[0]
    assert isinstance(winner, ClaimInfo) and winner.n == 1
    for _won, got in results:
        assert isinstance(got, ClaimInfo) and (got.n, got.owner) == (1, winner.owner)
    assert clones[0].lookup(KEY) == winner


RACER = """
import json, sys, time
from datetime import timedelta
from storyc.team.store import open_team_store
url, owner, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
store = open_team_store(url)
while time.time() < start:
    time.sleep(0.0005)
won, got = store.claim(sys.argv[4], owner, timedelta(minutes=5))
print(json.dumps({"won": won, "owner": got.owner, "n": got.n}))
"""


def test_claim_race_between_processes(shared_url: str) -> None:
    start = time.time() + 2.0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, shared_url, f"process {i}", str(start), KEY],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(6)
    ]
    answers = []
    for racer in racers:
        out, err = racer.communicate(timeout=30)
        assert racer.returncode == 0, err
        answers.append(json.loads(out))
    winners = [a for a in answers if a["won"]]
    assert len(winners) == 1, answers
    assert all(a["owner"] == winners[0]["owner"] and a["n"] == 1 for a in answers)


# --- videos ------------------------------------------------------------------------------------


def test_video_round_trip(url: str, tmp_path: Path) -> None:
    store = open_team_store(url)
    source = tmp_path / "render.mp4"
    size = 6 * 1024 * 1024 + 123  # past obstore's 5 MiB multipart threshold
    digest = make_video(source, size)
    assert not store.has_video(digest)
    store.put_video(digest, source)
    assert store.has_video(digest)
    store.put_video(digest, source)  # already there: success, nothing uploaded

    other = open_team_store(url)
    dest = tmp_path / "clone" / "renders" / "s01.mp4"
    assert other.get_video(digest, dest) == size
    assert dest.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["s01.mp4"]


def test_put_video_refuses_a_file_that_is_not_its_sha256(url: str, tmp_path: Path) -> None:
    store = open_team_store(url)
    source = tmp_path / "render.mp4"
    digest = make_video(source, 100_000)
    with source.open("r+b") as f:  # one flipped byte
        f.seek(5000)
        f.write(b"\xff")
    with pytest.raises(StoreError, match="its sha256 is sha256:[0-9a-f]{64}, not " + digest):
        store.put_video(digest, source)
    assert not store.has_video(digest)


def test_get_video_never_leaves_a_partial_file(url: str, tmp_path: Path) -> None:
    store = open_team_store(url)
    dest = tmp_path / "out" / "s01.mp4"
    dest.parent.mkdir()
    dest.write_bytes(b"the previous render")
    good = tmp_path / "good.mp4"
    digest = make_video(good, 300_000, seed=1)

    with pytest.raises(StoreError, match="not in the store"):
        store.get_video(digest, dest)
    # A damaged copy under the video's name (written behind storyc's back) is refused after download.
    import obstore

    obstore.put(store._videos, f"videos/{digest.removeprefix('sha256:')}.mp4", b"x" * 300_000)
    with pytest.raises(StoreError, match="does not have the sha256 it is named by"):
        store.get_video(digest, dest)
    assert dest.read_bytes() == b"the previous render"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["s01.mp4"]


# --- done records ------------------------------------------------------------------------------


def test_done_record_json_round_trip() -> None:
    done = record(KEY, OTHER_KEY, 1234)
    data = json.loads(done.to_json())
    assert data == {
        "key": KEY,
        "scene": "s01",
        "endpoint": "fal-ai/kling-video/o3/4k/reference-to-video",
        "request_id": "req-1",
        "seconds": 8,
        "cost_usd": "3.36",
        "video": {"sha256": OTHER_KEY, "bytes": 1234},
        "stored_at": "2026-12-03T10:00:00Z",
    }
    assert DoneRecord.from_json(done.to_json()) == done
    with pytest.raises(ValueError, match="cost_usd"):
        DoneRecord.from_json(done.to_json().replace('"3.36"', '"lots"'))
    with pytest.raises(ValueError, match="stored_at"):
        DoneRecord.from_json(done.to_json().replace("10:00:00Z", "10:00:00+01:00"))


def test_done_record_in_the_store(url: str, tmp_path: Path) -> None:
    alice, bob = open_team_store(url), open_team_store(url)
    first, second = tmp_path / "a.mp4", tmp_path / "b.mp4"
    first_sha, second_sha = make_video(first, 50_000, seed=1), make_video(second, 60_000, seed=2)
    won, claim = alice.claim(KEY, "alice", LONG)
    assert won and isinstance(claim, ClaimInfo)
    alice.mark_submitted(claim, "req-1", "fal-ai/kling")

    done = record(KEY, first_sha, 50_000)
    with pytest.raises(StoreError, match="is not in the store yet"):
        alice.put_done(done)
    alice.put_video(first_sha, first)
    alice.put_done(done)
    alice.put_done(done)  # the same record again: success
    bob.put_video(second_sha, second)
    bob.put_done(record(KEY, second_sha, 60_000, request_id="req-2"))  # a different one: the first stays

    assert bob.lookup(KEY) == done
    won, blocker = bob.claim(KEY, "bob", LONG)
    assert not won and blocker == done
    target = tmp_path / "fetched.mp4"
    assert bob.get_video(blocker.video_sha256, target) == 50_000


def test_done_keys_lists_once_for_many(url: str, tmp_path: Path) -> None:
    store = open_team_store(url)
    video = tmp_path / "v.mp4"
    digest = make_video(video, 10_000)
    store.put_video(digest, video)
    keys = [key_of(i) for i in range(20)]
    for key in keys[:5]:
        store.put_done(record(key, digest, 10_000))

    before = store.requests
    assert store.done_keys(keys) == set(keys[:5])
    assert store.requests - before == 1  # one listing of done/
    before = store.requests
    assert store.done_keys([keys[0], keys[10]]) == {keys[0]}
    assert store.requests - before == 2  # one HEAD each
    assert store.done_keys([]) == set()
    with pytest.raises(ValueError, match="not a content key"):
        store.done_keys(["sha256:nothex"])


def test_lookup_of_an_unseen_key_costs_two_requests(url: str) -> None:
    store = open_team_store(url)
    before = store.requests
    assert store.lookup(KEY) is None
    assert store.requests - before == 2  # done/ record, claims/ listing


def test_a_foreign_object_is_reported_not_trusted(url: str) -> None:
    import obstore

    store = open_team_store(url)
    obstore.put(store._store, f"done/{KEY.removeprefix('sha256:')}.json", b"{not json")
    with pytest.raises(StoreError, match=r"done/abab.*\.json is not a valid storyc object"):
        store.lookup(KEY)


# --- faults ------------------------------------------------------------------------------------


def test_unreachable_store_fails_fast_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    aws_env(monkeypatch, f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("STORYC_STORE_TIMEOUT", "2")
    began = time.monotonic()
    with pytest.raises(StoreError) as err:
        open_team_store("s3://bucket/team/film")
    elapsed = time.monotonic() - began
    message = str(err.value)
    assert elapsed < 8, elapsed
    assert message.startswith("team store s3://bucket/team/film: could not reach the store")
    assert "Connection refused" in message and "STORYC_STORE=none" in message
    assert SECRET not in message and "Debug source" not in message


def test_store_going_away_midway_is_a_store_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A store that answered at open and is unreachable later: every operation fails cleanly and quickly."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = closed_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        aws_env(monkeypatch, endpoint)
        monkeypatch.setenv("STORYC_STORE_TIMEOUT", "1")
        store = open_team_store(f"s3://{new_bucket(endpoint)}/p")
    finally:
        server.stop()
    video = tmp_path / "v.mp4"
    digest = make_video(video, 1000)
    calls: list[Callable[[], object]] = [
        lambda: store.lookup(KEY),
        lambda: store.claim(KEY, "me", LONG),
        lambda: store.has_video(digest),
        lambda: store.put_video(digest, video),
        lambda: store.get_video(digest, tmp_path / "out.mp4"),
        lambda: store.done_keys([KEY]),
    ]
    began = time.monotonic()
    for call in calls:
        with pytest.raises(StoreError) as err:
            call()
        assert str(err.value).startswith(f"team store {store.url}: could not ")
        assert SECRET not in str(err.value)
    assert time.monotonic() - began < 20
    assert not (tmp_path / "out.mp4").exists()


def test_missing_bucket_is_named(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    aws_env(monkeypatch, moto_endpoint)
    with pytest.raises(StoreError, match=r"NoSuchBucket.*check the bucket") as err:
        open_team_store("s3://no-such-bucket-here/p")
    assert SECRET not in str(err.value)


def test_moto_refuses_a_second_create(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stock moto (no serializing middleware) honours If-None-Match: * for creates that do not overlap."""
    import obstore
    from moto.server import ThreadedMotoServer
    from obstore.exceptions import AlreadyExistsError
    from obstore.store import S3Store

    port = closed_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        aws_env(monkeypatch, endpoint)
        store = S3Store(new_bucket(endpoint))
        obstore.put(store, "x", b"1", mode="create")
        with pytest.raises(AlreadyExistsError):
            obstore.put(store, "x", b"2", mode="create")
        assert bytes(obstore.get(store, "x").bytes()) == b"1"
    finally:
        server.stop()


def test_default_lease_is_minutes() -> None:
    assert timedelta(minutes=3) <= DEFAULT_LEASE <= timedelta(minutes=10)
    assert isinstance(TeamStore, type)
