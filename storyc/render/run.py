"""Stage 7, render: carry a plan out on a backend, scenes in parallel, safely interruptible.

The orchestration is the same for every backend (fal, the local animatic):
a thread per scene up to `concurrency`, progress events, one result per
scene, a summary.  Ctrl-C sets a stop flag that every wait checks; work in
flight finishes its current step (a submit that fal accepted is recorded),
nothing new starts, and the caller exits 130.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal, Protocol

from storyc.compile.compiler import Job
from storyc.diagnostics import StorycError
from storyc.render.plan import Plan, PlanItem

SceneState = Literal["done", "cached", "failed", "lost", "submitted", "unknown", "interrupted"]


class RenderError(StorycError):
    """Rendering can't start (no API key, a lock held by another run...): nothing was sent."""


class Interrupted(Exception):
    """Raised inside a scene's work when the user asked to stop."""


@dataclass(frozen=True)
class SceneResult:
    scene: str
    key: str
    state: SceneState
    request_id: str | None = None
    path: str | None = None  # the video, relative to the board
    spent: Decimal = Decimal("0")  # paid in this run for this scene (a new render that fal accepted)
    error: str | None = None
    location: tuple[int, int] | None = None  # the YAML line:col the error is about, when known
    notes: tuple[str, ...] = ()  # things to tell the user even on success (e.g. possible duplicate job)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "scene": self.scene,
            "state": self.state,
            "key": self.key,
            "request_id": self.request_id,
            "path": self.path,
            "cost_usd": self.spent,  # a Decimal: storyc.jsontext writes it exactly
        }
        if self.error:
            data["error"] = self.error
        if self.notes:
            data["notes"] = list(self.notes)
        return data


class Progress(Protocol):
    def update(self, scene: str, state: str, detail: str = "") -> None:
        """A scene moved: `state` is a short word (uploading, queued, running, downloading, done...)."""

    def note(self, message: str) -> None:
        """Something for the user that is not a scene's state."""


class SilentProgress:
    def update(self, scene: str, state: str, detail: str = "") -> None:
        pass

    def note(self, message: str) -> None:
        pass


@dataclass(frozen=True)
class RunContext:
    progress: Progress
    stop: threading.Event = field(default_factory=threading.Event)
    label: str = ""  # the scene this context works for, in progress updates

    def scene(self, label: str) -> RunContext:
        """The same run (same stop flag), working for one scene."""
        return replace(self, label=label)

    def sleep(self, seconds: float) -> None:
        """Wait, unless the user asks to stop first."""
        if self.stop.wait(seconds):
            raise Interrupted

    def check(self) -> None:
        if self.stop.is_set():
            raise Interrupted


class Backend(Protocol):
    name: str
    paid: bool  # whether carrying out a plan spends money (and so needs consent)

    def plan(self, storyboard: str, jobs: Sequence[Job]) -> Plan: ...

    def prepare(self, plan: Plan) -> None:
        """Check what must hold before anything is sent; raise RenderError if not."""

    def run(self, item: PlanItem, ctx: RunContext) -> SceneResult:
        """Bring one scene to a final state; never raises for fal's or the network's failures."""

    def finish(self, results: Sequence[SceneResult], interrupted: bool) -> None:
        """After all scenes (also after Ctrl-C): e.g. cancel what `--cancel-on-interrupt` asks."""


@dataclass(frozen=True)
class RenderSummary:
    backend: str
    results: tuple[SceneResult, ...]
    interrupted: bool

    @property
    def spent(self) -> Decimal:
        return sum((r.spent for r in self.results), Decimal("0.00"))

    def count(self, state: SceneState) -> int:
        return sum(1 for r in self.results if r.state == state)

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(r.state in ("done", "cached") for r in self.results)

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "scenes": [r.to_json() for r in self.results],
            "spent_usd": self.spent,
            "interrupted": self.interrupted,
        }


def execute(
    plan: Plan,
    backend: Backend,
    *,
    concurrency: int = 4,
    progress: Progress | None = None,
    on_interrupt: Callable[[], None] | None = None,
) -> RenderSummary:
    """Run every scene of `plan`; on KeyboardInterrupt, stop cleanly and return what happened."""
    ctx = RunContext(progress or SilentProgress())
    results: dict[str, SceneResult] = {}
    interrupted = False
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="storyc") as pool:
        futures = {pool.submit(_run_one, backend, item, ctx): item for item in plan.items}
        try:
            _wait_all(futures)
        except KeyboardInterrupt:
            interrupted = True
            ctx.stop.set()
            if on_interrupt is not None:
                on_interrupt()
            _wait_all(futures)  # in-flight steps finish and record what fal accepted; a second Ctrl-C exits hard
        for future, item in futures.items():
            results[item.scene] = future.result()
    ordered = tuple(results[item.scene] for item in plan.items)
    backend.finish(ordered, interrupted)
    return RenderSummary(backend.name, ordered, interrupted)


def _wait_all(futures: dict[concurrent.futures.Future[SceneResult], PlanItem]) -> None:
    pending = set(futures)
    while pending:
        # A timeout keeps the main thread responsive to Ctrl-C; a worker's bug stops the others.
        done, pending = concurrent.futures.wait(pending, timeout=0.2, return_when=concurrent.futures.FIRST_EXCEPTION)
        for future in done:
            if future.exception() is not None:
                for other in pending:
                    other.cancel()
                raise future.exception()  # type: ignore[misc]


def _run_one(backend: Backend, item: PlanItem, ctx: RunContext) -> SceneResult:
    if ctx.stop.is_set():
        return interrupted_result(item)
    try:
        return backend.run(item, ctx)
    except Interrupted:
        return interrupted_result(item)


def interrupted_result(item: PlanItem) -> SceneResult:
    """A scene stopped before it finished: still `submitted` if fal had accepted it in an earlier run."""
    previous = item.previous
    rid = previous.request_id if previous is not None else None
    state: SceneState = "submitted" if rid else "interrupted"
    return SceneResult(item.scene, item.job.key, state, request_id=rid)
