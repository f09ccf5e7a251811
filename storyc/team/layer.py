"""The team layer: the team store (`storyc.team.store`) between the ledger and the render service.

    ledger (board.lock)  ->  team store (shared by every clone)  ->  fal

The lock answers first for this clone; the team store answers for everyone
else's: a key done in the store is taken from it ($0, no request to fal); a key
another clone has submitted is resumed by that clone's request id; a key
another clone is about to submit is waited for, while its holder shows it is
alive (heartbeats, and its process when it runs on this machine: see
`storyc.team.liveness`).  Only a clone that wins the create-only claim on a key
submits it, so a team pays once per request.

Which store: `STORYC_STORE` in the environment wins; else `store = "..."` in
`storyc.toml` beside the board (committed, so every clone and CI agree);
`STORYC_STORE=none` (or `--no-store`) renders without one, explicitly.
"""

from __future__ import annotations

import os
import threading
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from storyc.diagnostics import StorycError
from storyc.lock.lockfile import Render, Video, now_utc, video_target

if TYPE_CHECKING:
    from storyc.compile.graph import Step
    from storyc.team.liveness import Heartbeat, Pace
    from storyc.team.store import ClaimInfo, DoneRecord, TeamStore

PROJECT_FILE = "storyc.toml"


class _Updates(Protocol):
    def update(self, scene: str, state: str, detail: str = "") -> None: ...


class Waiting(Protocol):
    """What the team layer needs of a render run while it waits on a teammate's claim.

    `storyc.render.run.RunContext` is one; the render stage sits above this one,
    so the layer names the shape it uses instead of importing it.
    """

    @property
    def progress(self) -> _Updates: ...

    def check(self) -> None:
        """Raise if the user asked to stop."""

    def sleep(self, seconds: float) -> None:
        """Wait, unless the user asks to stop first."""


# How long a claim keeps other clones from submitting a key.  The ledger claims after the uploads,
# right before the submit; a submit is at most 4 attempts (only when fal proves it did not take
# one: 429, no connection), each bounded by fal_client's 120 s timeout, with backoff under 20 s:
# under 9 minutes in the worst case.  15 minutes covers that with room for clocks that differ by
# seconds.  It is the outer bound: a claimer that died is known much sooner by its heartbeats.
CLAIM_LEASE = timedelta(minutes=15)
POLL = 2.0  # seconds between looks at a claim another clone holds (shorter if heartbeats are more often)


def configured_store_url(board: Path, environ: Mapping[str, str] | None = None) -> str | None:
    """The team store URL for a board: STORYC_STORE, else storyc.toml's `store`, else None."""
    from storyc.team.store import store_url

    return store_url(os.environ if environ is None else environ, _project_default(board))


def open_team(board: Path, *, use_store: bool = True) -> TeamLayer | None:
    """The team layer for a board, or None when no store is configured or `use_store` is False.

    A configured store that can't be reached is a StoreError: rendering without it is a choice
    (`--no-store`), never a silent fallback.
    """
    if not use_store:
        return None
    url = configured_store_url(board)
    if url is None:
        return None
    from storyc.team.store import open_team_store

    pace = _pace(os.environ)
    return TeamLayer(open_team_store(url), lease=_lease(os.environ), poll=min(POLL, pace.beat_every), pace=pace)


def _seconds(environ: Mapping[str, str], name: str, default: float, *, positive: bool = False) -> float:
    """`name` from the environment, in seconds (under a day), or `default` when it is not set."""
    raw = environ.get(name)
    if raw is None:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < 86400 or (positive and seconds == 0):
        least = "more than 0" if positive else "0"
        raise StorycError(f"{name} must be a number of seconds ({least} to 86400), found {raw!r}")
    return seconds


def _lease(environ: Mapping[str, str]) -> timedelta:
    """CLAIM_LEASE, or STORYC_CLAIM_LEASE seconds (for tests and unusual networks)."""
    return timedelta(seconds=_seconds(environ, "STORYC_CLAIM_LEASE", CLAIM_LEASE.total_seconds()))


def _pace(environ: Mapping[str, str]) -> Pace:
    """Heartbeats every STORYC_CLAIM_HEARTBEAT seconds (20), dead after STORYC_CLAIM_DEAD_AFTER (60)."""
    from storyc.team.liveness import DEFAULT_BEAT_EVERY, DEFAULT_DEAD_AFTER, Pace

    every = _seconds(environ, "STORYC_CLAIM_HEARTBEAT", DEFAULT_BEAT_EVERY, positive=True)
    dead = _seconds(environ, "STORYC_CLAIM_DEAD_AFTER", DEFAULT_DEAD_AFTER, positive=True)
    if dead < 2 * every:  # a beat may be late by a store request or a poll: two missed beats are not death
        raise StorycError(
            f"STORYC_CLAIM_DEAD_AFTER ({dead:g} s) must be at least twice STORYC_CLAIM_HEARTBEAT ({every:g} s)"
        )
    return Pace(every, dead)


def _elsewhere(
    found: DoneRecord | ClaimInfo, gone: Callable[[ClaimInfo], bool]
) -> DoneElsewhere | SubmittedElsewhere | UnknownElsewhere | None:
    """What another clone's record or claim means here; None for a claim still in its holder's hands."""
    from storyc.team.store import DoneRecord

    if isinstance(found, DoneRecord):
        return DoneElsewhere(found)
    if found.request_id is not None and not found.released:
        return SubmittedElsewhere(found)
    # Its submit got no answer, or its holder died while sending (lease over, or known dead): fal may have it.
    if found.settled and (found.unknown or not found.live(now_utc()) or gone(found)):
        return UnknownElsewhere(found)
    return None


def _project_default(board: Path) -> str | None:
    path = board.parent / PROJECT_FILE
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise StorycError.at(str(path), None, None, f"can't read the project file: {exc}") from exc
    value = data.get("store")
    if value is not None and not isinstance(value, str):
        raise StorycError.at(str(path), None, None, '`store` must be a URL string, e.g. store = "s3://bucket/film"')
    return value


@dataclass(frozen=True)
class Claimed:
    """This clone won the claim: it submits, and tells the store what happened."""

    claim: ClaimInfo


@dataclass(frozen=True)
class DoneElsewhere:
    record: DoneRecord


@dataclass(frozen=True)
class SubmittedElsewhere:
    claim: ClaimInfo


@dataclass(frozen=True)
class UnknownElsewhere:
    claim: ClaimInfo


Decision = Claimed | DoneElsewhere | SubmittedElsewhere | UnknownElsewhere


class TeamLayer:
    def __init__(
        self, store: TeamStore, *, lease: timedelta = CLAIM_LEASE, poll: float = POLL, pace: Pace | None = None
    ) -> None:
        from storyc.team.liveness import Pace, Watch
        from storyc.team.store import default_owner

        self.store = store
        self.owner = default_owner()
        self.lease = lease
        self.poll = poll  # seconds between looks at a claim another clone is about to submit
        self.pace = pace or Pace()
        self.notes: list[str] = []
        self._watch = Watch()
        self._beating: dict[tuple[str, int], Heartbeat] = {}  # claims held here -> their heartbeat
        self._beating_lock = threading.Lock()

    def done_keys(self, keys: list[str]) -> set[str]:
        return self.store.done_keys(keys) if keys else set()

    def look(self, job: Step) -> Decision | None:
        """What the store says of a key, without claiming it: None when nobody has it in hand."""

        found = self.store.lookup(job.key)
        if found is None:
            return None
        return _elsewhere(found, self._watch.holder_gone)  # None: in another clone's hands: decided when claiming

    def decide(self, job: Step, ctx: Waiting) -> Decision:
        """Claim the key, or learn who has it. Waits while another clone's claim has no answer yet.

        A claim won here beats (shows this clone alive) until `let_go`: the caller lets go of it
        in a `finally`, once the submit's answer is written or nothing will be sent.
        """
        from storyc.team.liveness import this_holder
        from storyc.team.store import DoneRecord

        gone = self._watch.holder_gone
        holder = this_holder(self.pace)
        while True:
            ctx.check()
            won, what = self.store.claim(job.key, self.owner, self.lease, holder=holder, gone=gone)
            if won and not isinstance(what, DoneRecord):
                self._hold(what)
                return Claimed(what)
            elsewhere = _elsewhere(what, gone)
            if elsewhere is not None:
                return elsewhere
            assert not isinstance(what, DoneRecord)
            from storyc.compile.graph import step_label

            ctx.progress.update(step_label(job), "waiting", f"claimed by {what.owner}")
            ctx.sleep(self.poll)

    def _hold(self, claim: ClaimInfo) -> None:
        from storyc.team.liveness import Heartbeat

        def failed(why: str) -> None:
            self.notes.append(f"could not record that this clone is alive on claim {claim.n} of {claim.key}: {why}")

        name = f"{claim.key[7:19]} {claim.n}"
        beat = Heartbeat(name, self.pace.beat_every, lambda k: self.store.beat(claim, k), failed)
        with self._beating_lock:
            self._beating[(claim.key, claim.n)] = beat.start()

    def let_go(self, claim: ClaimInfo) -> None:
        """This clone no longer has `claim` in hand (its answer is written, or nothing is sent): no more heartbeats."""
        with self._beating_lock:
            beat = self._beating.pop((claim.key, claim.n), None)
        if beat is not None:
            beat.stop()

    def sending(self, claim: ClaimInfo) -> bool:
        """Said before the submit goes out: if this clone dies now, the others see "unknown", not "free".

        False when the submit must not go out after all: another clone took the key over (it took
        this one for dead) or is sending it; the claim is then released.
        """
        return self.store.mark_sending(claim)  # a StoreError here stops the submit: nothing is sent unrecorded

    def accepted(self, claim: ClaimInfo, request_id: str, endpoint: str) -> None:
        self._quietly(lambda: self.store.mark_submitted(claim, request_id, endpoint), f"request {request_id}")

    def released(self, claim: ClaimInfo, reason: str) -> None:
        self._quietly(lambda: self.store.mark_released(claim, reason), "a submit fal did not take")

    def no_answer(self, claim: ClaimInfo, reason: str) -> None:
        self._quietly(lambda: self.store.mark_unknown(claim, reason), "an unanswered submit")

    def fetch(self, sha256: str, target: Path, kind: str = "video") -> int:
        return self.store.get_content(sha256, target, kind)

    def try_fetch(self, sha256: str | None, target: Path, kind: str = "video") -> tuple[int | None, str]:
        """A done render's missing file, from the store first (it keeps every paid video and still; fal's
        URLs expire): (its size, ''), or (None, why not), and the caller tries the URL the lock recorded."""
        from storyc.lock.lockfile import LockError
        from storyc.team.store import StoreError

        if sha256 is None:
            return None, "the lock has no sha256 for it"
        try:
            return self.fetch(sha256, target, kind), ""
        except (StoreError, LockError, OSError) as exc:
            return None, str(exc)

    def share(self, key: str, render: Render, board_dir: Path) -> None:
        """A finished render goes to the store (failures become notes): its files first, then its record."""

        def put() -> None:
            self.put(key, render, board_dir)

        what = f"the candidates of still '{render.still}'" if render.still is not None else f"scene '{render.scene}'"
        self._quietly(put, what if render.still is not None else f"the video of {what}")

    def put(self, key: str, render: Render, board_dir: Path) -> bool:
        """Store a done render: its files (each verified against its sha256), then its record; False if incomplete."""
        from storyc.team.store import DoneRecord

        files = (render.video,) if render.still is None else render.images
        if not files or render.request_id is None:
            return False
        if any(f is None or f.sha256 is None or f.bytes is None or f.path is None for f in files):
            return False
        kind = "image" if render.still is not None else "video"
        video = render.video
        record = DoneRecord(
            key=key,
            scene=render.scene,
            endpoint=render.endpoint,
            request_id=render.request_id,
            seconds=render.seconds,
            cost_usd=render.cost_usd,
            video_sha256=video.sha256 or "" if video is not None else "",
            video_bytes=video.bytes or 0 if video is not None else 0,
            stored_at=now_utc(),
            still=render.still,
            images=tuple((i.sha256, i.bytes) for i in render.images if i.sha256 and i.bytes is not None),
        )
        for file in files:
            assert file is not None and file.sha256 is not None and file.path is not None
            self.store.put_content(file.sha256, video_target(board_dir, file.path), kind)
        self.store.put_done(record)
        return True

    def done_render(self, record: DoneRecord, paths: tuple[str, ...]) -> Render:
        """The lock entry for a render another clone paid for; `paths`: where its files go here."""
        if record.still is not None:
            return Render(
                scene="",
                endpoint=record.endpoint,
                state="done",
                seconds=0,
                cost_usd=record.cost_usd,
                request_id=record.request_id,
                still=record.still,
                images=tuple(
                    Video(url=self.object_url(sha256, "image"), bytes=size, sha256=sha256, path=path)
                    for (sha256, size), path in zip(record.images, paths, strict=True)
                ),
            )
        return Render(
            scene=record.scene,
            endpoint=record.endpoint,
            state="done",
            seconds=record.seconds,
            cost_usd=record.cost_usd,
            request_id=record.request_id,
            video=Video(
                url=self.object_url(record.video_sha256),
                bytes=record.video_bytes,
                sha256=record.video_sha256,
                path=paths[0],
            ),
        )

    def adopted_render(self, entry: Render, claim: ClaimInfo) -> Render:
        """The lock entry (`entry`, new) for a request another clone submitted: resumed by its id, never sent again."""
        return replace(
            entry,
            endpoint=claim.endpoint or entry.endpoint,
            state="submitted",
            request_id=claim.request_id,
            sent_at=claim.claimed_at,
        )

    def object_url(self, sha256: str, kind: str = "video") -> str:
        from storyc.team.store import content_path

        return f"{self.store.url.rstrip('/')}/{content_path(sha256, kind)}"

    def _quietly(self, call: Callable[[], None], what: str) -> None:
        """The store is where a team shares; a failure to share is said, never fatal to a paid render."""
        from storyc.team.store import StoreError

        try:
            call()
        except StoreError as exc:
            self.notes.append(f"could not record {what} in the team store: {exc}")
