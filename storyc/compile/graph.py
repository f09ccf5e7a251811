"""The board as a graph: stills and scenes are steps, image slots taking another step's output are edges.

A step is a still (`StillJob`: one request to an image endpoint, `variants`
candidates) or a scene (`Job`: one request to a video endpoint).  An image
slot (a character's `frontal` or `references`, a style's `image`, a scene's
`start_frame` or `end_frame`) may take `{still: NAME}` (the still's picked
candidate) or `{last_frame_of: SCENE}` / `{first_frame_of: SCENE}` (a frame
of that scene's render in the same profile).  A step uses a slot when it
sends it: a scene sends its frames and its characters' and styles' images; a
still sends the frontal of each character and the image of each style its
prompt names.

The compiled form, for whoever renders the graph:

- Each step carries its `endpoint`, its `arguments` (the request), its `key`,
  its price (`cost_usd`) and `depends_on`: one `Edge` per upstream output it
  sends, in the order they first appear in the arguments.
- In `arguments`, an upstream output stands as the edge's `placeholder`:
  `still://NAME/PICK` or `frame://SCENE/last` (`/first`).  No asset a board
  may write looks like that (an asset is a local path or an https URL), so a
  placeholder is never mistaken for a file.  At render time,
  `arguments_with(url_of, output_of)` puts the uploaded URL of each local file
  (`url_of`, as today) and of each upstream output (`output_of(edge)`: the
  picked candidate's file, or the frame extracted from the upstream scene's
  video, uploaded once per content like any local file) in their places.
- Keys are Merkle: a step's key is the hash of its request with each local
  file replaced by its bytes' hash and each placeholder by the edge's
  `hashed` form, the upstream's own key plus the pick (`still:KEY#2`) or the
  frame (`last_frame_of:KEY`).  So every key is known before anything is
  paid; a change upstream changes the keys of everything downstream of it and
  nothing else; reverting brings the old keys back; renaming a still or a
  scene changes no key.  `pick` is not in the still's own key: choosing
  another candidate never pays for the still again, it re-renders only what
  uses the still.
- `order(...)` gives the steps upstreams first (what a render runs in; steps
  with no path between them may run at the same time).

Here: the located checks of the graph (unknown still or scene names, cycles,
a frame of another aspect ratio, a still nobody uses), the dependency order,
and the keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from storyc.compile.compiler import CompiledBoard, Edge, Job, StillJob, content_key
from storyc.compile.model import ImageRef, Reference, Scene, Storyboard, Upstream, upstreams_of
from storyc.compile.source import JsonPath
from storyc.diagnostics import DEPENDENCY_CYCLE, FRAME_SHAPE, UNKNOWN_STEP, UNUSED, Diagnostics, did_you_mean

StepKind = Literal["still", "scene"]
StepId = tuple[StepKind, str]


@dataclass(frozen=True)
class Need:
    """An image slot a step sends that takes another step's output."""

    slot: Upstream
    via: str | None = None  # the character or style whose slot it is (None: the step's own frame)

    @property
    def target(self) -> StepId:
        return ("still", self.slot.name) if self.slot.kind == "still" else ("scene", self.slot.name)


def scene_needs(scene: Scene, references: Iterable[Reference]) -> list[Need]:
    """What a scene sends of other steps: its own frames, then its references' images."""
    needs = [Need(slot) for slot in upstreams_of((scene.start_frame, scene.end_frame))]
    for ref in references:
        needs += [Need(slot, ref.name) for slot in upstreams_of(ref.slots)]
    return needs


def still_needs(references: Iterable[Reference]) -> list[Need]:
    """What a still sends of other steps: the frontal of each character, the image of each style."""
    return [Need(slot, ref.name) for ref in references if isinstance(slot := still_image(ref), Upstream)]


def still_image(ref: Reference) -> ImageRef | None:
    """The one image of a reference a still sends: a character's frontal, a style's image."""
    return ref.frontal if ref.kind == "character" else ref.image  # type: ignore[union-attr]


class Graph:
    """The steps of one board and what each needs; checks it and orders it."""

    def __init__(self, board: Storyboard, diags: Diagnostics) -> None:
        self.board = board
        self.doc = board.doc
        self.diags = diags
        self.scenes = {s.id: s for s in board.scenes}
        self.needs: dict[StepId, list[Need]] = {}

    def known(self, slot: Upstream) -> bool:
        return slot.name in (self.board.stills if slot.kind == "still" else self.scenes)

    def check_slots(self) -> None:
        """Every slot naming a still or a scene names one that exists; a scene's frame has its aspect ratio."""
        for ref in self._references():
            for slot in upstreams_of(ref.slots):
                self._check_name(slot)
        for scene in self.board.scenes:
            for slot in upstreams_of((scene.start_frame, scene.end_frame)):
                if self._check_name(slot):
                    self._check_aspect(scene, slot)

    def _check_name(self, slot: Upstream) -> bool:
        if self.known(slot):
            return True
        if slot.kind == "still":
            if slot.name not in self.board.broken_stills:  # else its own errors are reported
                names = list(self.board.stills)
                self.diags.error(UNKNOWN_STEP, self.doc.loc(slot.path), _unknown("still", slot.name, names))
            return False
        self.diags.error(UNKNOWN_STEP, self.doc.loc(slot.path), _unknown("scene", slot.name, list(self.scenes)))
        return False

    def _check_aspect(self, scene: Scene, slot: Upstream) -> None:
        """A frame of another shape is cropped or stretched by the model: say so, it is rarely meant."""
        if slot.kind == "still":
            shape = self.board.stills[slot.name].aspect_ratio
            if shape == "auto":
                return
        else:
            shape = self.scenes[slot.name].aspect_ratio
        if shape != scene.aspect_ratio:
            self.diags.warning(
                FRAME_SHAPE,
                self.doc.loc(slot.path),
                f"scene '{scene.id}' is {scene.aspect_ratio}, but {slot.what} is {shape}: "
                "the model will crop or stretch it",
            )

    def add(self, step: StepId, needs: Sequence[Need]) -> None:
        self.needs[step] = [n for n in needs if self.known(n.slot)]

    def warn_unused_stills(self) -> None:
        used = {slot.name for slot in self._all_slots() if slot.kind == "still"}
        for name, still in self.board.stills.items():
            if name not in used:
                self.diags.warning(
                    UNUSED, self.doc.key_loc(still.path), f"still '{name}' is declared but nothing uses it"
                )

    def _all_slots(self) -> list[Upstream]:
        slots: list[ImageRef | None] = []
        for ref in self._references():
            slots += ref.slots
        for scene in self.board.scenes:
            slots += [scene.start_frame, scene.end_frame]
        return list(upstreams_of(tuple(slots)))

    def _references(self) -> list[Reference]:
        return [*self.board.characters.values(), *self.board.styles.values()]

    def check_cycles(self) -> bool:
        """Report each cycle at the slot that closes it, naming every step in it; whether there were none."""
        cycles = 0
        state: dict[StepId, int] = {}  # 1: on the path being walked, 2: done
        for root in sorted(self.needs, key=self._line):
            if root in state:
                continue
            path: list[StepId] = [root]
            into: list[Need | None] = [None]  # the need by which each step on the path was reached
            pending: list[list[Need]] = [list(reversed(self.needs[root]))]
            state[root] = 1
            while path:
                if not pending[-1]:
                    state[path.pop()] = 2
                    into.pop()
                    pending.pop()
                    continue
                need = pending[-1].pop()
                target = need.target
                if state.get(target) == 1:
                    self._report_cycle(path[path.index(target) :], into[path.index(target) + 1 :], need)
                    cycles += 1
                elif target not in state and target in self.needs:
                    state[target] = 1
                    path.append(target)
                    into.append(need)
                    pending.append(list(reversed(self.needs[target])))
        return cycles == 0

    def _report_cycle(self, steps: list[StepId], reached_by: list[Need | None], closing: Need) -> None:
        words = [_step(steps[0])]
        for step, need in zip([*steps[1:], steps[0]], [*reached_by, closing], strict=True):
            through = f" (through @{need.via})" if need is not None and need.via else ""
            words.append(_step(step) + through)
        self.diags.error(
            DEPENDENCY_CYCLE,
            self.doc.loc(closing.slot.path),
            f"dependency cycle: {' -> '.join(words)}; no step in it can be made first",
        )

    def _line(self, step: StepId) -> tuple[int, int]:
        path: JsonPath = self.board.stills[step[1]].path if step[0] == "still" else self.scenes[step[1]].path
        loc = self.doc.loc(path)
        return (loc.line, loc.col)


def _step(step: StepId) -> str:
    return f"{step[0]} '{step[1]}'"


def _unknown(kind: str, name: str, names: list[str]) -> str:
    suggestion = did_you_mean(name, names)
    if suggestion or not names:
        known = "" if names else f"; the board has no {kind}s"
        return f"unknown {kind} '{name}'{suggestion}{known}"
    return f"unknown {kind} '{name}'; {kind}s: {', '.join(names[:12])}{' ...' if len(names) > 12 else ''}"


Step = Job | StillJob


def step_id(step: Step) -> StepId:
    return ("still", step.still) if isinstance(step, StillJob) else ("scene", step.scene)


def step_label(step: Step) -> str:
    """What people call a step: a scene's id, or `still NAME` (a scene id never holds a space)."""
    return f"still {step.still}" if isinstance(step, StillJob) else step.scene


def step_words(step: Step) -> str:
    """A step in a sentence: `scene 'meet'`, `still 'meet-open'`."""
    return f"still '{step.still}'" if isinstance(step, StillJob) else f"scene '{step.scene}'"


def upstream_of(edge: Edge) -> StepId:
    return ("still", edge.name) if edge.kind == "still" else ("scene", edge.name)


def order(steps: Iterable[Step]) -> list[Step]:
    """The steps, each after every step it depends on (otherwise in the order given).

    The compiler refuses a cycle; one here is a ValueError. Iterative: a continuity chain through
    thousands of scenes must not hit Python's recursion limit.
    """
    by_id = {step_id(s): s for s in steps}
    done: dict[StepId, Step] = {}
    for root in by_id:
        stack = [root]
        opened: set[StepId] = set()  # steps whose upstreams were pushed and are not all done yet
        while stack:
            current = stack[-1]
            if current in done:
                stack.pop()
                continue
            waiting = [u for e in by_id[current].depends_on if (u := upstream_of(e)) not in done and u in by_id]
            if waiting:
                if current in opened:
                    raise ValueError(f"dependency cycle through {_step(current)}")
                opened.add(current)
                stack.extend(reversed(waiting))
            else:
                done[current] = by_id[current]
                stack.pop()
    return list(done.values())


def assign_keys(jobs: Sequence[Job], stills: Sequence[StillJob]) -> tuple[tuple[Job, ...], tuple[StillJob, ...]]:
    """Every step's key, upstreams first: its request with each upstream output by the upstream's key.

    A step without upstreams keeps the key it was built with (the one it always had).
    """
    keyed: dict[StepId, Step] = {}
    for step in order([*stills, *jobs]):
        if step.depends_on:
            edges = tuple(replace(e, key=keyed[upstream_of(e)].key) for e in step.depends_on)
            key = content_key(step.endpoint, step.arguments, step.files, edges)
            step = replace(step, depends_on=edges, key=key)
        keyed[step_id(step)] = step
    new_jobs = tuple(keyed[step_id(j)] for j in jobs)
    new_stills = tuple(keyed[step_id(s)] for s in stills)
    return new_jobs, new_stills  # type: ignore[return-value]


def upstream_stills(board: CompiledBoard, jobs: Iterable[Job]) -> tuple[StillJob, ...]:
    """The stills `jobs` need, directly or through other steps, in the order declared."""
    every: list[Step] = [*board.stills, *board.jobs]
    steps = {step_id(s): s for s in every}
    seen: set[StepId] = set()
    stack = [step_id(j) for j in jobs]
    while stack:
        current = stack.pop()
        if current in seen or current not in steps:
            continue
        seen.add(current)
        stack += [upstream_of(e) for e in steps[current].depends_on]
    return tuple(s for s in board.stills if step_id(s) in seen)
