"""Stage 7, render: carry a plan out on a backend, scenes in parallel, safely interruptible.

The orchestration is the same for every backend (fal, the local animatic):
a thread per step up to `concurrency`, progress events, one result per
step, a summary.  A step (a scene, or a still of a graph board) starts when
every upstream step of the plan it sends the output of is done; when one is
not (failed, unknown, skipped...), it is skipped, saying which and why, and
the rest goes on.  Ctrl-C sets a stop flag that every wait checks; work in
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

from storyc.diagnostics import StorycError
from storyc.render.plan import Plan, PlanItem, Steps

SceneState = Literal["done", "cached", "failed", "lost", "submitted", "unknown", "interrupted", "skipped"]
USABLE: tuple[SceneState, ...] = ("done", "cached")  # an upstream in these states has an output to send


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
    images: tuple[str, ...] = ()  # a still's candidate files, relative to the board

    @property
    def is_still(self) -> bool:
        return self.scene.startswith("still ")  # a still's label (scene ids never hold a space)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any]
        if self.is_still:  # a board without stills keeps the JSON it always had
            data = {"still": self.scene.removeprefix("still "), "state": self.state, "key": self.key}
            data.update(request_id=self.request_id, images=list(self.images))
        else:
            data = {"scene": self.scene, "state": self.state, "key": self.key}
            data.update(request_id=self.request_id, path=self.path)
        data["cost_usd"] = self.spent  # a Decimal: storyc.jsontext writes it exactly
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

    def plan(self, storyboard: str, steps: Steps) -> Plan:
        """What carrying out `steps` (upstreams first) would do and cost."""

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
        data: dict[str, Any] = {"backend": self.backend}
        if any(r.is_still for r in self.results):
            data["stills"] = [r.to_json() for r in self.results if r.is_still]
        data["scenes"] = [r.to_json() for r in self.results if not r.is_still]
        data["spent_usd"] = self.spent
        data["interrupted"] = self.interrupted
        return data


def execute(
    plan: Plan,
    backend: Backend,
    *,
    concurrency: int = 4,
    progress: Progress | None = None,
    on_interrupt: Callable[[], None] | None = None,
) -> RenderSummary:
    """Run every step of `plan`, each once its upstreams are done; on KeyboardInterrupt, stop cleanly
    and return what happened."""
    ctx = RunContext(progress or SilentProgress())
    graph = _Graph(plan)
    interrupted = False
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="storyc") as pool:
        running: dict[concurrent.futures.Future[SceneResult], PlanItem] = {}

        def start_ready() -> None:
            for item in graph.ready():
                running[pool.submit(_run_one, backend, item, ctx)] = item

        start_ready()
        failure: BaseException | None = None
        while running and failure is None:
            try:
                failure = _wait_some(running, graph)
                if ctx.stop.is_set():
                    graph.interrupt_waiting()
                if failure is None:
                    start_ready()
            except KeyboardInterrupt:
                interrupted = True
                ctx.stop.set()
                if on_interrupt is not None:
                    on_interrupt()
                # in-flight steps finish and record what fal accepted; the waiting ones never start;
                # a second Ctrl-C exits hard
        if failure is not None:  # a worker's bug (or an interrupt raised inside one) stops the run
            for other in running:
                other.cancel()
            raise failure
    ordered = tuple(graph.results[item.id] for item in plan.items)
    backend.finish(ordered, interrupted)
    return RenderSummary(backend.name, ordered, interrupted)


class _Graph:
    """The plan's steps, what each waits for, and the results so far."""

    def __init__(self, plan: Plan) -> None:
        from storyc.compile.graph import upstream_of

        self.items = {item.id: item for item in plan.items}
        self.upstreams = {
            item.id: list(dict.fromkeys(u for e in item.job.depends_on if (u := upstream_of(e)) in self.items))
            for item in plan.items
        }
        self.results: dict[Any, SceneResult] = {}
        self.started: set[Any] = set()

    def ready(self) -> list[PlanItem]:
        """Steps not started whose upstreams are all done; those with an upstream that is not are skipped."""
        ready = []
        changed = True
        while changed:  # a skip may settle the steps after it
            changed = False
            for step, item in self.items.items():
                if step in self.started:
                    continue
                ups = [self.results.get(u) for u in self.upstreams[step]]
                blocker = next((r for r in ups if r is not None and r.state not in USABLE), None)
                if blocker is not None:
                    self.started.add(step)
                    self.results[step] = skipped_result(item, blocker)
                    changed = True
                elif all(r is not None for r in ups):
                    self.started.add(step)
                    ready.append(item)
        return ready

    def interrupt_waiting(self) -> None:
        for step, item in self.items.items():
            if step not in self.started:
                self.started.add(step)
                self.results[step] = interrupted_result(item)


def _wait_some(running: dict[concurrent.futures.Future[SceneResult], PlanItem], graph: _Graph) -> BaseException | None:
    """Wait a moment for steps to finish and record their results (a timeout keeps the main thread
    responsive to Ctrl-C); a worker's exception is returned, for the caller to raise outside its
    Ctrl-C handling."""
    if not running:
        return None
    done, _ = concurrent.futures.wait(running, timeout=0.2, return_when=concurrent.futures.FIRST_COMPLETED)
    for future in done:
        item = running.pop(future)
        failure = future.exception()
        if failure is not None:
            return failure
        graph.results[item.id] = future.result()
    return None


def _run_one(backend: Backend, item: PlanItem, ctx: RunContext) -> SceneResult:
    if ctx.stop.is_set():
        return interrupted_result(item)
    try:
        return backend.run(item, ctx)
    except Interrupted:
        return interrupted_result(item)


def skipped_result(item: PlanItem, upstream: SceneResult) -> SceneResult:
    """A step not started because a step it needs has no output: nothing was sent for it."""
    what = {
        "failed": "failed",
        "lost": "was lost",
        "unknown": "has an unknown outcome",
        "skipped": "was skipped",
        "interrupted": "was interrupted",
        "submitted": "is not finished yet",
    }
    error = f"skipped: needs {upstream.scene}, which {what.get(upstream.state, upstream.state)}; nothing was sent"
    return SceneResult(item.scene, item.job.key, "skipped", error=error)


def interrupted_result(item: PlanItem) -> SceneResult:
    """A scene stopped before it finished: still `submitted` if fal had accepted it in an earlier run."""
    previous = item.previous
    rid = previous.request_id if previous is not None else None
    state: SceneState = "submitted" if rid else "interrupted"
    return SceneResult(item.scene, item.job.key, state, request_id=rid)
