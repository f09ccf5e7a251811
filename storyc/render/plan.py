"""Stage 6, plan: compiled jobs + what is already rendered -> what a render would do and cost.

Each scene gets one action:

- `cached`: its key already has a finished render; nothing is sent or paid.
- `resume`: fal accepted its request earlier (the lock has the request id); it is
  picked up by that id, never submitted again, and costs nothing more.
- `render`: new, changed, failed before or lost; it is submitted and paid for.
- `store`: not in this lock, but done in the team store (another clone paid for
  it): its video is fetched from the store, at no cost.
- `unknown`: a submit was sent earlier and its answer never arrived (a kill, a
  dropped connection): fal may have accepted it.  It is not sent again (and
  costs nothing in the plan) unless the user asks to re-send, which may pay twice.

Scenes with identical requests are one render: the first carries the cost.

A board with stills or frames is a graph (`storyc.compile.graph`): its plan
lists every step, stills and scenes, upstreams first.  A step whose inputs are
made in the same run is priced anyway and says what it waits for (`render
after meet`); a step brought in because a selected scene needs it says so
(`needed_by`).

Planning reads no network; it is the same for every backend, which only says
how it knows a key is rendered (the lock file for fal, a local cache for animatics).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Literal

from storyc.compile.compiler import VIDEO_INPUT_CAVEAT, CompiledBoard, Job, StillJob
from storyc.compile.graph import Step, StepId, step_id, step_label, upstream_of
from storyc.lock.lockfile import Lock, Render
from storyc.lock.merge import settle

Action = Literal["cached", "store", "resume", "render", "unknown"]


@dataclass(frozen=True)
class PlanItem:
    job: Step  # a scene's request (`Job`) or a still's (`StillJob`)
    action: Action
    note: str  # why, in a few words: "new scene", "prompt changed", "failed before: ...", ...
    previous: Render | None = None  # the lock's entry for this key, if any
    price: Decimal = Decimal("0")  # what the action costs: the job's cost for a paid `render`, else 0
    waiting: tuple[str, ...] = ()  # the upstream steps made in this same run, which it starts after
    needed_by: str | None = None  # brought in by `--scene`: the selected step that needs it

    @property
    def scene(self) -> str:
        """What people call the step: a scene's id, or `still NAME` (never a scene id: they can't contain spaces)."""
        return step_label(self.job)

    @property
    def id(self) -> StepId:
        return step_id(self.job)

    @property
    def is_still(self) -> bool:
        return isinstance(self.job, StillJob)

    @property
    def seconds(self) -> int:
        """Seconds of video it makes: none for a still."""
        return 0 if isinstance(self.job, StillJob) else self.job.seconds

    @property
    def uncertain(self) -> Decimal:
        """The part of `price` that is an estimate (a request with a video input): all of it, or 0.

        A still's price notes (an endpoint whose price is not on fal's page) are said on its own line
        (`caveat`); the total's uncertain part keeps its one meaning, video input.
        """
        return Decimal("0") if self.job.price_certain or self.is_still else self.price

    @property
    def caveat(self) -> str | None:
        """Why the price is only an estimate, in words; None when it is the price list's."""
        if self.job.price_certain:
            return None
        if isinstance(self.job, StillJob):
            return "; ".join(self.job.price_notes)
        return VIDEO_INPUT_CAVEAT

    @property
    def shown_note(self) -> str:
        """The note, with what the step waits for first (`after meet`): priced now, made once those are."""
        return f"after {', '.join(self.waiting)}; {self.note}" if self.waiting else self.note

    def to_json(self) -> dict[str, Any]:
        if isinstance(self.job, StillJob):
            return {
                "still": self.job.still,
                "state": self.action,
                "key": self.job.key,
                "variants": self.job.variants,
                "cost_usd": self.price,
                "price_certain": self.job.price_certain,
                "note": self.note,
                "depends_on": [e.to_json() for e in self.job.depends_on],
                **self._graph_fields(),
            }
        data: dict[str, Any] = {
            "scene": self.scene,
            "state": self.action,
            "key": self.job.key,
            "seconds": self.job.seconds,
            "cost_usd": self.price,
            "price_certain": self.job.price_certain,
            "note": self.note,
        }
        return data

    def _graph_fields(self) -> dict[str, Any]:
        data: dict[str, Any] = {"waiting_for": list(self.waiting)}
        if self.needed_by is not None:
            data["needed_by"] = self.needed_by
        return data

    def graph_json(self) -> dict[str, Any]:
        """`to_json` with what a step of a graph depends on (a board with stills or frames)."""
        if isinstance(self.job, StillJob):
            return self.to_json()
        return {**self.to_json(), "depends_on": [e.to_json() for e in self.job.depends_on], **self._graph_fields()}


@dataclass(frozen=True)
class Plan:
    storyboard: str
    backend: str
    items: tuple[PlanItem, ...]

    @property
    def cost(self) -> Decimal:
        """What carrying the plan out would spend."""
        return sum((i.price for i in self.items), Decimal("0.00"))

    @property
    def uncertain(self) -> Decimal:
        """How much of `cost` is an estimate: scenes whose request has a video input."""
        return sum((i.uncertain for i in self.items), Decimal("0.00"))

    def count(self, action: Action) -> int:
        return sum(1 for i in self.items if i.action == action)

    @property
    def to_render(self) -> tuple[PlanItem, ...]:
        return tuple(i for i in self.items if i.action == "render")

    @property
    def is_graph(self) -> bool:
        """Whether any step is a still or takes another step's output: the plan says so (boards without
        stills or frames keep the plan they always had)."""
        return any(isinstance(i.job, StillJob) or i.job.depends_on for i in self.items)

    @property
    def scenes(self) -> tuple[PlanItem, ...]:
        return tuple(i for i in self.items if not isinstance(i.job, StillJob))

    @property
    def stills(self) -> tuple[PlanItem, ...]:
        return tuple(i for i in self.items if isinstance(i.job, StillJob))

    def to_json(self) -> dict[str, Any]:
        if not self.is_graph:
            return {
                "storyboard": self.storyboard,
                "backend": self.backend,
                "scenes": [i.to_json() for i in self.items],
                "cost_usd": self.cost,  # Decimals: storyc.jsontext writes amounts exactly
                "uncertain_usd": self.uncertain,
            }
        stills, scenes = self.stills, self.scenes
        return {
            "storyboard": self.storyboard,
            "backend": self.backend,
            "stills": [i.graph_json() for i in stills],
            "scenes": [i.graph_json() for i in scenes],
            "totals": {
                "stills_usd": sum((i.price for i in stills), Decimal("0.00")),
                "video_usd": sum((i.price for i in scenes), Decimal("0.00")),
                "video_seconds": sum(i.seconds for i in scenes if i.action == "render"),
            },
            "cost_usd": self.cost,
            "uncertain_usd": self.uncertain,
        }


@dataclass(frozen=True)
class Steps:
    """What a render of some scenes runs: the steps, upstreams first, and who brought each upstream in."""

    steps: tuple[Step, ...]
    needed_by: dict[StepId, str]  # a step not selected -> the selected step that needs it


def with_upstreams(board: CompiledBoard, jobs: Sequence[Job]) -> Steps:
    """`jobs` and every still and scene they need, upstreams first (all stills with the whole board).

    Done upstreams are steps of the run too (`cached`): their files are made sure of, and their
    outputs are what the downstream steps send.
    """
    board_steps: list[Step] = [*board.stills, *board.jobs]
    every = {step_id(s): s for s in board_steps}
    selected = {step_id(j) for j in jobs}
    wanted = set(selected)
    if len(selected) == len(board.jobs):
        wanted.update(step_id(s) for s in board.stills)
    needed_by: dict[StepId, str] = {}
    stack = [(s, s) for s in selected]
    while stack:
        current, root = stack.pop()
        for edge in every[current].depends_on:
            upstream = upstream_of(edge)
            if upstream not in wanted and upstream in every:
                wanted.add(upstream)
                needed_by[upstream] = _label(root)
                stack.append((upstream, root))
    from storyc.compile.graph import order

    return Steps(tuple(order(s for s in every.values() if step_id(s) in wanted)), needed_by)


def _label(step: StepId) -> str:
    return f"still {step[1]}" if step[0] == "still" else step[1]


def plan_with_lock(
    storyboard: str,
    jobs: Iterable[Step],
    lock: Lock,
    backend: str = "fal",
    *,
    resend_unknown: bool = False,
    in_store: frozenset[str] | set[str] = frozenset(),
    needed_by: dict[StepId, str] | None = None,
) -> Plan:
    """The plan for a paid backend whose renders are recorded in the lock file.

    `jobs` are steps upstreams first (`with_upstreams`); `needed_by`: the steps brought in for others.
    """
    items: list[PlanItem] = []
    first_of: dict[str, PlanItem] = {}
    for job in jobs:
        first = first_of.get(job.key)
        if first is None:
            first_of[job.key] = item = _classify(job, lock, resend_unknown)
            if item.action == "render" and job.key in in_store:
                item = PlanItem(job, "store", "done in the team store: fetched from there at no cost", item.previous)
        else:  # the same request as an earlier scene: one render serves both
            item = replace(first, job=job, note=f"same request as scene '{first.scene}'", price=Decimal("0"))
        items.append(item)
    return Plan(storyboard, backend, tuple(with_waiting(items, needed_by or {})))


def with_waiting(items: list[PlanItem], needed_by: dict[StepId, str]) -> list[PlanItem]:
    """Each step with the upstreams it waits for in this run, and who brought it in."""
    by_id = {i.id: i for i in items}
    graphed = []
    for item in items:
        waiting = [
            by_id[u].scene
            for e in item.job.depends_on
            if (u := upstream_of(e)) in by_id and by_id[u].action != "cached"
        ]
        graphed.append(replace(item, waiting=tuple(dict.fromkeys(waiting)), needed_by=needed_by.get(item.id)))
    return graphed


def _classify(job: Step, lock: Lock, resend_unknown: bool) -> PlanItem:
    previous = lock.renders.get(job.key)
    if previous is not None and previous.also_paid:  # a failed own request must not hide a pending other
        previous = settle(job.key, previous)  # one (a hand edit, a killed run): that one is resumed, not re-sent
    if previous is not None and previous.state == "done":
        return PlanItem(job, "cached", _cached_note(job, previous), previous)
    if previous is not None and previous.state == "submitted":
        note = "download pending" if previous.video else f"submitted earlier (request {previous.request_id})"
        return PlanItem(job, "resume", note, previous)
    if previous is not None and previous.uncertain:
        when = f" at {previous.sent_at:%Y-%m-%d %H:%M} UTC" if previous.sent_at else ""
        if resend_unknown:
            note = f"re-sending a submit whose outcome is unknown (sent{when}): may pay twice"
            return PlanItem(job, "render", note, previous, job.cost_usd)
        note = f"sent{when}, no answer recorded: fal may have accepted it; not sent again without --resend-unknown"
        return PlanItem(job, "unknown", note, previous)
    if previous is not None:  # failed or lost: paying again is a new decision
        reason = previous.error or previous.state
        return PlanItem(job, "render", f"{previous.state} before: {reason}", previous, job.cost_usd)
    return PlanItem(job, "render", _why_render(job, lock), None, job.cost_usd)


def _cached_note(job: Step, render: Render) -> str:
    if isinstance(job, StillJob):
        return f"rendered ({len(render.images)} candidate{'s' if len(render.images) != 1 else ''})"
    if render.scene != job.scene:
        return f"same request as scene '{render.scene}' rendered"
    return "rendered"


def _why_render(job: Step, lock: Lock) -> str:
    """`lock.scenes` only says what the board was; a scene with no render of its own was never rendered.

    A render of the scene on another endpoint (a draft, when this is the final) is not an earlier
    version of this request: the scene is new on this endpoint, not changed.
    """
    if isinstance(job, StillJob):
        made = [r for r in lock.renders.values() if r.still == job.still]
        return "changed since last render" if made else f"new still ({_candidates(job.variants)})"
    here = [r for r in lock.renders.values() if r.scene == job.scene]
    if any(r.endpoint == job.endpoint for r in here):
        return "changed since last render"
    if here:
        from storyc.compile.endpoints import tier_name

        return f"not rendered on {tier_name(job.endpoint)} yet"
    return "new scene"


def _candidates(variants: int) -> str:
    return f"{variants} candidate{'s' if variants != 1 else ''}"


# --- the price of each fidelity tier, before anything is paid (`storyc plan --compare`) ------------


@dataclass(frozen=True)
class TierPrice:
    column: str  # an endpoint id (tiers), or a profile name (profiles)
    price: Decimal | None  # None: this tier or profile refuses the request (see `note`)
    note: str = ""  # "done": the lock has it; else why it is refused


@dataclass(frozen=True)
class Comparison:
    """Per scene (and per still), what rendering it would cost in each column, less what is done.

    The columns are the board's profiles when it declares some, else every tier of
    each scene's endpoint family (the same request on another endpoint: another key).
    A still is priced in each profile's own compile (a profile may set `still_endpoint` and
    `still_resolution`); across video tiers it is the same request, so the same price.
    """

    kind: Literal["tiers", "profiles"]
    columns: tuple[str, ...]  # endpoint ids, cheapest first; or profile names, as declared
    rows: tuple[tuple[Job, tuple[TierPrice, ...]], ...]
    stills: tuple[tuple[StillJob, tuple[TierPrice, ...]], ...] = ()

    def total(self, column: str) -> Decimal | None:
        """The column's total, scenes and stills, or None when it refuses one."""
        return _column_total([*self.rows, *self.stills], column)

    def scenes_total(self, column: str) -> Decimal | None:
        return _column_total(self.rows, column)

    def stills_total(self, column: str) -> Decimal | None:
        return _column_total(self.stills, column)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            self.kind: ["animatic", *self.columns],
            "scenes": [{"scene": job.scene, "seconds": job.seconds, **_prices_json(row)} for job, row in self.rows],
            "totals": {"animatic": 0.0, **{c: self.total(c) for c in self.columns}},
        }
        if self.stills:  # a board without stills: the form it always had
            data["stills"] = [{"still": s.still, "images": s.variants, **_prices_json(row)} for s, row in self.stills]
            data["totals_by_kind"] = {
                "scenes": {"animatic": 0.0, **{c: self.scenes_total(c) for c in self.columns}},
                "stills": {"animatic": 0.0, **{c: self.stills_total(c) for c in self.columns}},
            }
        return data


def _column_total(rows: Iterable[tuple[Job | StillJob, tuple[TierPrice, ...]]], column: str) -> Decimal | None:
    prices = [p.price for _, row in rows for p in row if p.column == column]
    return None if any(p is None for p in prices) else sum((p for p in prices if p is not None), Decimal("0.00"))


def _prices_json(row: tuple[TierPrice, ...]) -> dict[str, Any]:
    return {
        "prices": {"animatic": 0.0, **{p.column: p.price for p in row}},  # the animatic draws every step free
        "notes": {p.column: p.note for p in row if p.note},
    }


def compare_tiers(jobs: Iterable[Job], lock: Lock, stills: Iterable[StillJob] = ()) -> Comparison:
    """Every scene on every tier of its family (the same request, another endpoint: another key);
    `stills` (the ones these scenes need) at their own price in every column."""
    from storyc.compile import endpoints
    from storyc.compile.compiler import content_key

    rows = []
    every: dict[str, None] = {}
    for job in jobs:
        row = []
        for tier in endpoints.tiers(job.endpoint):
            every[tier.id] = None
            refused = _refusal(job, tier.limits)
            key = content_key(tier.id, job.arguments, job.files)
            if refused:
                row.append(TierPrice(tier.id, None, refused))
            else:
                audio = job.arguments.get("generate_audio") is True
                row.append(_price(tier.id, key, tier.cost(job.seconds, audio=audio), lock))
        rows.append((job, tuple(row)))
    priced = tuple((s, tuple(_price(tier, s.key, s.cost_usd, lock) for tier in every)) for s in stills)
    return Comparison("tiers", tuple(every), tuple(rows), priced)


def compare_profiles(
    jobs: Iterable[Job],
    profiles: Iterable[tuple[str, CompiledBoard | None]],
    lock: Lock,
    stills: Iterable[StillJob] = (),
) -> Comparison:
    """Every scene and every one of `stills` (by name) in every profile: each profile's own compile
    (None: it does not compile)."""
    columns = list(profiles)
    by_scene = {name: {j.scene: j for j in board.jobs} if board else None for name, board in columns}
    rows = []
    for job in jobs:
        row = []
        for name, _ in columns:
            compiled = by_scene[name]
            other = compiled.get(job.scene) if compiled is not None else None
            row.append(_in_profile(name, other, lock))
        rows.append((job, tuple(row)))
    still_rows = [
        (still, tuple(_in_profile(name, board.still(still.still) if board else None, lock) for name, board in columns))
        for still in stills
    ]
    return Comparison("profiles", tuple(name for name, _ in columns), tuple(rows), tuple(still_rows))


def _in_profile(name: str, step: Job | StillJob | None, lock: Lock) -> TierPrice:
    """A step's price in a profile; None: the profile does not compile."""
    if step is None:
        return TierPrice(name, None, f"does not compile (`storyc check --profile {name}`)")
    return _price(name, step.key, step.cost_usd, lock)


def _price(column: str, key: str, cost: Decimal, lock: Lock) -> TierPrice:
    if lock.done(key) is not None:
        return TierPrice(column, Decimal("0"), "done")
    return TierPrice(column, cost)


def _refusal(job: Job, limits: Any) -> str:
    """Why a tier would refuse this request (its reference limits), or ''."""
    from storyc.compile.endpoints import reference_refusal

    elements = job.arguments.get("elements", [])
    total = len(elements) + len(job.arguments.get("image_urls", []))
    refusal = reference_refusal(limits, total, any("video_url" in e for e in elements))
    return "" if refusal is None else str(refusal)
