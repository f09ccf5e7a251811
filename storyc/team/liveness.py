"""Is a claim's holder still alive? Heartbeats in the store, and the process itself on this machine.

A clone that wins a claim says it is alive while it holds it: a `Heartbeat` thread creates
`claims/<hex>/<n>.alive/<k>.json` (k = 1, 2, ...) every `beat_every` seconds until the submit's
answer is written.  The claim records how often (`beat_every`) and after how long without a new
beat it may be taken for dead (`dead_after`), and where its process runs (`Holder`).

A clone waiting on the claim (`Watch`) judges it:
- On the same machine (same boot and pid namespace), it asks the operating system: no such
  process, a zombie, or another process under the same pid (its start time differs) is dead at
  once.  A live process is not enough to be alive: the holder may have abandoned the claim (a
  failed lock write), so it is judged by its heartbeats like any other.
- Anywhere: a claim whose newest heartbeat number has not changed for `dead_after` seconds, as
  measured by the waiting clone's own monotonic clock, is dead.  No two clocks are compared: not
  the holder's and the waiter's wall clocks (they may differ by seconds), nor the store's
  last_modified and the waiter's (the same problem again, with a third clock).  The price is that
  a waiter that arrives long after the holder died still watches `dead_after` seconds before it
  decides, which keeps the bound "about a minute" either way.
- The lease stays the outer bound, as before: a claim whose lease is over is free (or "unknown"
  if its holder was sending) whatever its heartbeats say; a claim written without heartbeats (an
  older storyc) is judged by its lease alone.

Being taken for dead while alive (a store that refuses the holder's heartbeats, a laptop lid
closed for a minute) must never make two clones pay: the holder checks, after writing `.sending`
and before the submit goes out, that nobody claimed the key after it (`TeamStore.mark_sending`).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from storyc.team.store import ClaimInfo, Holder

DEFAULT_BEAT_EVERY = 20.0  # seconds between heartbeats (STORYC_CLAIM_HEARTBEAT)
DEFAULT_DEAD_AFTER = 60.0  # seconds without a new heartbeat before a holder is taken for dead (STORYC_CLAIM_DEAD_AFTER)
_STOP_WAIT = 2.0  # seconds `Heartbeat.stop` waits for a heartbeat write in flight; the thread is a daemon


@dataclass(frozen=True)
class Pace:
    """How often a holder beats, and how long a waiter lets it go without a beat."""

    beat_every: float = DEFAULT_BEAT_EVERY
    dead_after: float = DEFAULT_DEAD_AFTER


# --- this machine's processes -------------------------------------------------------------------


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _machine() -> str | None:
    """This boot of this kernel and this pid namespace: where a pid means the same process; None off Linux."""
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        namespace = str(Path("/proc/self/ns/pid").readlink())
    except OSError:
        return None
    return f"{boot}/{namespace}" if boot else None


def _stat(which: str) -> tuple[str, str] | None:
    """(state letter, start time in clock ticks since boot) of /proc/<which>/stat, or None if there is none."""
    raw = _read(f"/proc/{which}/stat")
    if raw is None:
        return None
    fields = raw.rpartition(")")[2].split()  # after the command name, which may hold spaces and parentheses
    return (fields[0], fields[19]) if len(fields) > 19 else None


def this_holder(pace: Pace) -> Holder:
    """The claim's record of this process: host (for people), pid, and what identifies it on this machine."""
    machine, stat = _machine(), _stat("self")
    process = f"{machine}/{stat[1]}" if machine and stat else ""
    return Holder(socket.gethostname(), os.getpid(), process, pace.beat_every, pace.dead_after)


def process_gone(holder: Holder) -> bool:
    """True when the holder ran on this machine and its process is no more; False when alive or can't tell."""
    machine = _machine()
    if not holder.process or machine is None or not holder.process.startswith(machine + "/"):
        return False  # another machine, another pid namespace, or no /proc: its heartbeats decide
    stat = _stat(str(holder.pid))
    if stat is None:
        return True  # no such process
    state, started = stat
    return state in {"Z", "X"} or holder.process != f"{machine}/{started}"  # a zombie, or the pid was reused


# --- the holder's side ----------------------------------------------------------------------------


class Heartbeat:
    """A daemon thread that calls `beat(k)`, k = 1, 2, ..., every `every` seconds until `stop()`.

    A beat that fails is reported once through `failed` and tried again at the next tick: a
    heartbeat never stops a render, it only lets others know this clone is alive.
    """

    def __init__(self, name: str, every: float, beat: Callable[[int], None], failed: Callable[[str], None]) -> None:
        self._every = every
        self._beat = beat
        self._failed = failed
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"storyc heartbeat {name}", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        """No beat starts after this returns; one in flight is given a moment, never a store timeout."""
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(_STOP_WAIT)

    def _run(self) -> None:
        k = 0
        told = False
        while not self._stopped.wait(self._every):
            k += 1
            try:
                self._beat(k)
            except Exception as exc:  # any failure: said once, never raised (nobody would catch it here)
                if not told:
                    self._failed(str(exc))
                    told = True


# --- the waiting side -----------------------------------------------------------------------------


class Watch:
    """A waiting clone's view of other clones' claims: is the holder gone? Safe to share between threads."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._seen: dict[tuple[str, int], tuple[int, float]] = {}  # claim -> (newest beat, when first seen)
        self._lock = threading.Lock()

    def holder_gone(self, claim: ClaimInfo) -> bool:
        """The claim's holder died: its process is gone from this machine, or its heartbeats stopped."""
        holder = claim.holder
        if holder is None:
            return False  # written without heartbeats (an older storyc): its lease decides
        if process_gone(holder):
            return True
        now = self._clock()
        with self._lock:
            beats, since = self._seen.get((claim.key, claim.n), (-1, now))
            if beats != claim.beats:
                self._seen[(claim.key, claim.n)] = (claim.beats, now)
                return False
        return now - since >= holder.dead_after
