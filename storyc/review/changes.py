"""`storyc diff`: a board at two git revisions, compared scene by scene, with what it costs.

Both sides are compiled by the ordinary pipeline; a revision's files (the
board, its template files, its local assets) are read from git objects
(`storyc.review.gitfs`), the working tree from disk.  Scenes are matched by id:

- `added` / `removed`: the id is on one side only;
- `renamed`: a removed id and an added id with the same content key (the
  same request under a new name), shown once instead of as remove + add;
- `changed` (the key differs) or `unchanged`.

A changed scene says which request fields changed, a word-level diff of each
prompt with references by name (`@ellie`, not `@Element1`), which assets
were repainted (same path, new bytes), moved or replaced, and which
references it gained or dropped.  The cost is what rendering the added and
changed scenes would spend, less those whose key is already `done` in the
lock at head.  The renderings (text, markdown, json) are in
`storyc.review.formats`.

A board with stills is a graph (`storyc.compile.graph`), and keys are Merkle:
a changed still changes the key of every step downstream of it.  Stills are
matched by name like scenes (`added`, `removed`, `changed`, `unchanged`, or
`picked`: the same still, another candidate flowing on, which is never paid
again).  Each step whose key changed because of an upstream says which
(`upstream`: "uses still meet-open, changed"), each changed or re-picked
still names every step it re-renders through the graph, and the cost counts
stills and scenes alike.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from storyc.compile.compiler import REQUEST_SETTINGS, CompileResult, Job, StillJob, map_assets
from storyc.compile.graph import Step, StepId, step_id, upstream_of
from storyc.diagnostics import StorycError
from storyc.lock.lockfile import Lock, LockError, loads, lock_path, read
from storyc.review.gitfs import GitError, GitRepo, GitTree

Status = Literal["added", "removed", "changed", "unchanged", "renamed"]
StillStatus = Literal["added", "removed", "changed", "picked", "unchanged"]
AssetChangeKind = Literal["repainted", "replaced", "moved", "added", "removed"]
Chunk = tuple[str, str]  # ("=" | "-" | "+", text)
STATUS_ORDER: tuple[Status, ...] = ("changed", "added", "removed", "renamed", "unchanged")
STILL_STATUS_ORDER: tuple[StillStatus, ...] = ("changed", "picked", "added", "removed", "unchanged")
STILL_SETTINGS = ("num_images", "aspect_ratio", "resolution")

# Request fields shown as `name: old -> new` when they change.
SETTINGS = REQUEST_SETTINGS


class ReviewError(StorycError):
    """The comparison can't be made at all (not a git repository, unknown revision, unreadable lock)."""


# --- what a review holds ----------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """The board at one revision (`rev` None: the working tree)."""

    rev: str | None
    commit: str | None
    result: CompileResult | None  # None: there is no board at this revision

    @property
    def label(self) -> str:
        if self.rev is None or self.commit is None:
            return "working tree"
        short = self.commit[:7]
        return short if self.commit.startswith(self.rev) else f"{self.rev} ({short})"

    @property
    def exists(self) -> bool:
        return self.result is not None

    @property
    def ok(self) -> bool:
        return self.result is None or self.result.ok

    @property
    def jobs(self) -> tuple[Job, ...]:
        if self.result is None or self.result.board is None:
            return ()
        return self.result.board.jobs

    @property
    def stills(self) -> tuple[StillJob, ...]:
        if self.result is None or self.result.board is None:
            return ()
        return self.result.board.stills


@dataclass(frozen=True)
class PromptChange:
    label: str  # "prompt" or "shot N"
    chunks: tuple[Chunk, ...]  # the word-level diff, references by name


@dataclass(frozen=True)
class AssetChange:
    role: str  # "@ellie frontal", "@ellie reference 2", "@dawn", "start frame"
    kind: AssetChangeKind
    old: str | None  # path as written (or URL)
    new: str | None


@dataclass(frozen=True)
class SettingChange:
    name: str
    old: str
    new: str


@dataclass(frozen=True)
class SceneChange:
    scene: str
    status: Status
    base: Job | None
    head: Job | None
    fields: tuple[str, ...] = ()  # request fields that differ (changed scenes)
    settings: tuple[SettingChange, ...] = ()
    prompts: tuple[PromptChange, ...] = ()
    assets: tuple[AssetChange, ...] = ()
    refs_added: tuple[str, ...] = ()
    refs_dropped: tuple[str, ...] = ()
    rendered: bool = False  # added or changed, but its key is already done in the lock at head
    cost_usd: Decimal = Decimal("0.00")
    upstream: tuple[str, ...] = ()  # why its key changed through the graph: "uses still meet-open, changed"

    @property
    def seconds(self) -> int:
        job = self.head or self.base
        assert job is not None
        return job.seconds

    @property
    def renamed_from(self) -> str | None:
        return self.base.scene if self.status == "renamed" and self.base is not None else None

    @property
    def to_render(self) -> bool:
        return self.status in ("added", "changed") and not self.rendered

    @property
    def price_certain(self) -> bool:
        """False when the request has a video input: then `cost_usd` is an estimate."""
        job = self.head or self.base
        return job is None or job.price_certain

    @property
    def uncertain_usd(self) -> Decimal:
        return Decimal("0.00") if self.price_certain else self.cost_usd


@dataclass(frozen=True)
class StillChange:
    """A still at both sides, matched by name."""

    still: str
    status: StillStatus
    base: StillJob | None
    head: StillJob | None
    settings: tuple[SettingChange, ...] = ()  # its pick too, which is not in its key
    prompts: tuple[PromptChange, ...] = ()
    upstream: tuple[str, ...] = ()  # as SceneChange.upstream
    downstream: tuple[str, ...] = ()  # every step it re-renders through the graph: "scene meet", "still x"
    rendered: bool = False
    cost_usd: Decimal = Decimal("0.00")

    @property
    def to_render(self) -> bool:
        return self.status in ("added", "changed") and not self.rendered

    @property
    def images(self) -> int:
        still = self.head or self.base
        assert still is not None
        return still.variants

    @property
    def price_certain(self) -> bool:
        still = self.head or self.base
        return still is None or still.price_certain


@dataclass(frozen=True)
class Review:
    storyboard: str  # as displayed
    base: Side
    head: Side
    scenes: tuple[SceneChange, ...] = field(default=())
    profile: str | None = None  # the head's profile compared (None: the board declares none)
    # the change's cost in each profile of the head board: (profile, cost, uncertain part), None: does not compile
    profile_costs: tuple[tuple[str, Decimal | None, Decimal | None], ...] = ()
    stills: tuple[StillChange, ...] = ()  # in head's order, then the removed ones

    @property
    def ok(self) -> bool:
        """Both sides compile (a side without the board counts as an empty board)."""
        return self.base.ok and self.head.ok

    @property
    def has_graph(self) -> bool:
        """Either side has stills or frames: the review says what flows through the graph."""
        return bool(self.stills) or any(s.upstream for s in self.scenes)

    @property
    def cost_usd(self) -> Decimal | None:
        """What rendering the change spends: its scenes and its stills."""
        if not self.ok:
            return None
        return self.scenes_usd + self.stills_usd

    @property
    def scenes_usd(self) -> Decimal:
        return sum((s.cost_usd for s in self.scenes), Decimal("0.00"))

    @property
    def stills_usd(self) -> Decimal:
        return sum((s.cost_usd for s in self.stills), Decimal("0.00"))

    @property
    def uncertain_usd(self) -> Decimal | None:
        """How much of `cost_usd` is an estimate (scenes with a video input)."""
        if not self.ok:
            return None
        return sum((s.uncertain_usd for s in self.scenes), Decimal("0.00"))

    def count(self, status: Status) -> int:
        return sum(1 for s in self.scenes if s.status == status)


# --- reading both sides from git ----------------------------------------------------------


def review(
    board: Path,
    base: str = "HEAD",
    head: str | None = None,
    display: str | None = None,
    profile: str | None = None,
) -> Review:
    """Compare the board at `base` with `head` (None: the working tree), both as `profile`.

    A base that lacks the profile (it came with this change) is compiled as its default.
    Raises `ReviewError`, or UnknownProfile when the head does not declare `profile`.
    """
    from storyc.compile.source import display_path

    where = _absolute(board)
    shown = display if display is not None else display_path(board)
    try:
        with GitRepo.around(where.parent) as repo:
            if not where.is_relative_to(repo.toplevel):
                raise ReviewError(f"{board} is not inside the git repository at {repo.toplevel}")
            if head is None:
                head_side, lock = _in_work_tree(where, shown, profile), _lock_on_disk(where)
            else:
                head_side, head_tree = _at_revision(repo, head, where, shown, profile)
                lock = _lock_in_tree(head_tree, where)
            base_side = _at_revision(repo, base, where, shown, _head_profile(head_side, profile), lenient=True)[0]
    except GitError as exc:
        raise ReviewError(str(exc)) from exc
    if not base_side.exists and not head_side.exists:
        raise ReviewError(f"{shown}: no such storyboard at {base_side.label} nor at {head_side.label}")
    if not (base_side.ok and head_side.ok):
        return Review(shown, base_side, head_side, profile=_head_profile(head_side, profile))
    scenes, stills = compare_graph(base_side, head_side, lock)
    return Review(shown, base_side, head_side, scenes, profile=_head_profile(head_side, profile), stills=stills)


def _head_profile(side: Side, asked: str | None) -> str | None:
    """The profile the head was compiled as: the one asked for, else the head board's default."""
    if asked is not None or side.result is None or side.result.board is None:
        return asked
    return side.result.board.profile


def _absolute(board: Path) -> Path:
    """The board's absolute path with its folder's symlinks resolved (the board itself may be missing)."""
    absolute = board.absolute()
    return absolute.parent.resolve() / absolute.name


def _at_revision(
    repo: GitRepo, rev: str, board: Path, shown: str, profile: str | None, *, lenient: bool = False
) -> tuple[Side, GitTree]:
    """The board at `rev` as `profile`; `lenient`: as its default when it lacks that profile (the base)."""
    from storyc.compile.pipeline import compile_file
    from storyc.compile.profiles import UnknownProfile

    commit = repo.commit(rev)
    tree = repo.tree(commit)
    result = None
    if tree.exists(board):
        try:
            result = compile_file(board, shown, files=tree, profile=profile)
        except UnknownProfile:
            if not lenient:
                raise
            result = compile_file(board, shown, files=tree)
    return Side(rev, commit, result), tree


def _in_work_tree(board: Path, shown: str, profile: str | None) -> Side:
    from storyc.compile.pipeline import compile_file

    return Side(None, None, compile_file(board, shown, profile=profile) if board.exists() else None)


def _lock_on_disk(board: Path) -> Lock:
    try:
        return read(lock_path(board))
    except LockError as exc:
        raise ReviewError(str(exc)) from exc


def _lock_in_tree(tree: GitTree, board: Path) -> Lock:
    path = lock_path(board)
    if not tree.exists(path):
        return Lock()
    try:
        return loads(tree.read_bytes(path).decode("utf-8"), f"{path} at {tree.commit[:7]}")
    except (LockError, UnicodeDecodeError) as exc:
        raise ReviewError(str(exc)) from exc


# --- comparing scenes ---------------------------------------------------------------------


def compare(base: Sequence[Job], head: Sequence[Job], lock: Lock) -> list[SceneChange]:
    """Scene by scene, in head's order, then the removed scenes in base's order."""
    before = {job.scene: job for job in base}
    head_ids = {job.scene for job in head}
    gone = [job for job in base if job.scene not in head_ids]
    renames = _renames(gone, [job for job in head if job.scene not in before])
    changes: list[SceneChange] = []
    for job in head:
        old = before.get(job.scene)
        if old is None:
            was = renames.get(job.scene)
            changes.append(SceneChange(job.scene, "renamed", was, job) if was else _new(job, lock))
        elif old.key == job.key:
            changes.append(SceneChange(job.scene, "unchanged", old, job))
        else:
            changes.append(_changed(old, job, lock))
    renamed = {job.scene for job in renames.values()}
    changes += [SceneChange(job.scene, "removed", job, None) for job in gone if job.scene not in renamed]
    return changes


# --- the graph: stills, and what a change flows into ----------------------------------------------


def compare_graph(base: Side, head: Side, lock: Lock) -> tuple[tuple[SceneChange, ...], tuple[StillChange, ...]]:
    """Scenes as `compare`, stills by name; each changed step says which upstream changed it, and each
    changed or re-picked still every step it re-renders downstream."""
    scenes = compare(base.jobs, head.jobs, lock)
    stills = compare_stills(base.stills, head.stills, lock)
    old_steps: list[Step] = [*base.stills, *base.jobs]
    steps: list[Step] = [*head.stills, *head.jobs]
    if not any(step.depends_on for step in (*old_steps, *steps)):
        return tuple(scenes), tuple(stills)
    before = {step_id(step): step for step in old_steps}
    changed_heads: list[Step | None] = [c.head for c in stills if c.status == "changed"]
    changed_heads += [c.head for c in scenes if c.status == "changed"]
    changed = {step_id(step) for step in changed_heads if step is not None}
    users = _users(steps)
    scenes = [replace(c, upstream=_why(c.head, before)) if c.status == "changed" and c.head else c for c in scenes]
    stills = [
        replace(
            c,
            upstream=_why(c.head, before) if c.status == "changed" and c.head else (),
            downstream=_downstream(("still", c.still), users, changed) if c.status in ("changed", "picked") else (),
        )
        for c in stills
    ]
    return tuple(scenes), tuple(stills)


def _users(steps: Sequence[Step]) -> dict[StepId, list[StepId]]:
    """Each step -> the steps that send its output, in the order given."""
    users: dict[StepId, list[StepId]] = {}
    for step in steps:
        for edge in step.depends_on:
            users.setdefault(upstream_of(edge), []).append(step_id(step))
    return users


def _downstream(start: StepId, users: dict[StepId, list[StepId]], changed: set[StepId]) -> tuple[str, ...]:
    """Every changed step downstream of `start`, transitively, nearest first: 'scene meet', 'still x'."""
    found: dict[StepId, None] = {}
    queue = list(users.get(start, []))
    while queue:
        step = queue.pop(0)
        if step in found or step == start:
            continue
        found[step] = None
        queue += users.get(step, [])
    return tuple(f"{kind} {name}" for kind, name in found if (kind, name) in changed)


def _why(step: Step, before: dict[StepId, Step]) -> tuple[str, ...]:
    """Which of the step's upstreams changed since base: 'uses still meet-open, changed',
    'uses still meet-open, candidate 3 instead of 2', 'uses last frame of meet, re-rendered'."""
    old = before.get(step_id(step))
    if old is None:
        return ()
    old_edges = {(e.kind, e.name): e for e in old.depends_on}
    reasons = []
    for edge in step.depends_on:
        was = old_edges.get((edge.kind, edge.name))
        if was is None:  # a new input: the fields and assets say so
            continue
        what = _slot(edge.placeholder)
        if edge.key != was.key:
            reasons.append(f"uses {what}, {'changed' if edge.kind == 'still' else 're-rendered'}")
        elif edge.pick != was.pick:
            reasons.append(f"uses {what}, candidate {edge.pick} instead of {was.pick}")
    return tuple(dict.fromkeys(reasons))


def compare_stills(base: Sequence[StillJob], head: Sequence[StillJob], lock: Lock) -> list[StillChange]:
    """Still by still, in head's order, then the removed stills in base's order."""
    before = {still.still: still for still in base}
    names = {still.still for still in head}
    changes: list[StillChange] = []
    for still in head:
        old = before.get(still.still)
        rendered = lock.done(still.key) is not None
        cost = Decimal("0.00") if rendered else still.cost_usd
        if old is None:
            prompt = PromptChange("prompt", (("+", _still_prompt(still)),))
            changes.append(StillChange(still.still, "added", None, still, prompts=(prompt,), rendered=rendered,
                                       cost_usd=cost))  # fmt: skip
        elif old.key == still.key:
            status: StillStatus = "picked" if old.pick != still.pick else "unchanged"
            changes.append(StillChange(still.still, status, old, still, settings=tuple(_still_settings(old, still))))
        else:
            prompt_diff = word_diff(_still_prompt(old), _still_prompt(still))
            changes.append(
                StillChange(
                    still.still,
                    "changed",
                    old,
                    still,
                    settings=tuple(_still_settings(old, still)),
                    prompts=(PromptChange("prompt", prompt_diff),)
                    if _still_prompt(old) != _still_prompt(still)
                    else (),
                    rendered=rendered,
                    cost_usd=cost,
                )
            )
    changes += [StillChange(s.still, "removed", s, None) for s in base if s.still not in names]
    return changes


def _still_prompt(still: StillJob) -> str:
    """The compiled prompt with references by name (`@ellie`, not "image 1")."""
    return "".join(text for text, _ in still.segments)


def _still_settings(old: StillJob, new: StillJob) -> Iterator[SettingChange]:
    if old.endpoint != new.endpoint:
        yield SettingChange("endpoint", old.endpoint, new.endpoint)
    for name in STILL_SETTINGS:
        a, b = old.arguments.get(name), new.arguments.get(name)
        if a != b:
            yield SettingChange("variants" if name == "num_images" else name, _setting_text(a), _setting_text(b))
    if old.pick != new.pick:
        yield SettingChange("pick", str(old.pick), str(new.pick))


def _renames(gone: list[Job], added: list[Job]) -> dict[str, Job]:
    """Added scene id -> the removed scene with the same key (each paired once, in order)."""
    free = list(gone)
    pairs: dict[str, Job] = {}
    for job in added:
        match = next((old for old in free if old.key == job.key), None)
        if match is not None:
            free.remove(match)
            pairs[job.scene] = match
    return pairs


def _price(job: Job, lock: Lock) -> tuple[bool, Decimal]:
    """(already rendered, cost to render) for a scene that is added or changed."""
    if lock.done(job.key) is not None:
        return True, Decimal("0.00")
    return False, job.cost_usd


def _new(job: Job, lock: Lock) -> SceneChange:
    rendered, cost = _price(job, lock)
    prompts = tuple(PromptChange(label, (("+", text),)) for label, text in named_prompts(job))
    return SceneChange(job.scene, "added", None, job, prompts=prompts, rendered=rendered, cost_usd=cost)


def _changed(old: Job, new: Job, lock: Lock) -> SceneChange:
    rendered, cost = _price(new, lock)
    old_refs, new_refs = list(old.references.values()), list(new.references.values())
    return SceneChange(
        new.scene,
        "changed",
        old,
        new,
        fields=changed_fields(old, new),
        settings=tuple(_settings(old, new)),
        prompts=tuple(prompt_changes(old, new)),
        assets=tuple(asset_changes(old, new)),
        refs_added=tuple(n for n in new_refs if n not in old_refs),
        refs_dropped=tuple(n for n in old_refs if n not in new_refs),
        rendered=rendered,
        cost_usd=cost,
    )


def _hashed(job: Job) -> dict[str, Any]:
    """The arguments as the key sees them: local assets by the hash of their bytes.

    Another step's output is its slot (`still://meet-open`): that the upstream changed, or which of a
    still's candidates flows on, is said as `upstream`, not as a change of the scene's own fields.
    """
    hashed: dict[str, Any] = map_assets(job.arguments, lambda v: job.files[v].sha256 if v in job.files else _slot(v))
    return hashed


def _slot(value: str) -> str:
    """Another step's output as people name it, a still without its pick (`still://meet-open/2` -> 'still
    meet-open', `frame://meet/last` -> 'last frame of meet'); any other value as it is."""
    if value.startswith("still://"):
        return "still " + value.removeprefix("still://").rpartition("/")[0]
    if value.startswith("frame://"):
        scene, _, which = value.removeprefix("frame://").rpartition("/")
        return f"{which} frame of {scene}"
    return value


def changed_fields(old: Job, new: Job) -> tuple[str, ...]:
    """The request fields whose content differs (a renamed file with the same bytes is no change)."""
    a, b = _hashed(old), _hashed(new)
    names = [*b, *(k for k in a if k not in b)]
    found = [k for k in names if a.get(k) != b.get(k)]
    return ("endpoint", *found) if old.endpoint != new.endpoint else tuple(found)


def _settings(old: Job, new: Job) -> Iterator[SettingChange]:
    if old.endpoint != new.endpoint:
        yield SettingChange("endpoint", old.endpoint, new.endpoint)
    for name in SETTINGS:
        a, b = old.arguments.get(name), new.arguments.get(name)
        if a != b:
            yield SettingChange(name, _setting_text(a), _setting_text(b))
    old_shots, new_shots = old.arguments.get("multi_prompt") or [], new.arguments.get("multi_prompt") or []
    for i, (a, b) in enumerate(zip(old_shots, new_shots, strict=False), 1):
        if a["duration"] != b["duration"]:
            yield SettingChange(f"shot {i} duration", a["duration"], b["duration"])


def _setting_text(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- prompts: a word-level diff with references by name -------------------------------------


def named_prompts(job: Job) -> list[tuple[str, str]]:
    """(label, text with @names) for the scene's prompt or each of its shots."""
    texts = [shot.text for shot in job.view.shots]
    if "prompt" in job.arguments:
        return [("prompt", texts[0] if texts else job.arguments["prompt"])]
    return [(f"shot {i}", text) for i, text in enumerate(texts, 1)]


def prompt_changes(old: Job, new: Job) -> Iterator[PromptChange]:
    before, after = dict(named_prompts(old)), dict(named_prompts(new))
    labels = [*after, *(label for label in before if label not in after)]
    for label in labels:
        a, b = before.get(label, ""), after.get(label, "")
        if a != b:
            yield PromptChange(label, word_diff(a, b))


_WORDS = re.compile(r"\s+|[^\s]+")


def word_diff(old: str, new: str) -> tuple[Chunk, ...]:
    """The changes from `old` to `new`, word by word: ("=", same), ("-", removed), ("+", added)."""
    a, b = _WORDS.findall(old), _WORDS.findall(new)
    ops: list[tuple[str, str, str]] = []  # (tag, old text, new text)
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        ops.append((tag, "".join(a[i1:i2]), "".join(b[j1:j2])))
    return tuple(_chunks(_absorb_spaces(ops)))


def _absorb_spaces(ops: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """A lone space kept between two changes joins them: `[-a b-]{+c d+}`, not `[-a-]{+c+} [-b-]{+d+}`."""
    merged: list[tuple[str, str, str]] = []
    for i, op in enumerate(ops):
        after_change = bool(merged) and merged[-1][0] != "equal"
        lone_space = op[0] == "equal" and not op[1].strip() and i + 1 < len(ops) and ops[i + 1][0] != "equal"
        if after_change and (op[0] != "equal" or lone_space):
            merged[-1] = ("replace", merged[-1][1] + op[1], merged[-1][2] + op[2])
        else:
            merged.append(op)
    return merged


def _chunks(ops: list[tuple[str, str, str]]) -> Iterator[Chunk]:
    for tag, old, new in ops:
        if tag == "equal":
            yield ("=", old)
            continue
        if old:
            yield ("-", old)
        if new:
            yield ("+", new)


# --- assets: by their role in the request ----------------------------------------------------


@dataclass(frozen=True)
class _Use:
    value: str  # path as written, or URL
    content: str  # sha256 of the bytes, or the URL
    owner: str | None  # the reference it belongs to (None: a start or end frame)


def asset_uses(job: Job) -> dict[str, _Use]:
    """Each asset of a request by its role: '@ellie frontal', '@ellie reference 1', '@dawn', 'start frame'."""
    args, refs = job.arguments, job.references
    uses: dict[str, _Use] = {}

    def add(role: str, value: str | None, owner: str | None) -> None:
        if value is not None:
            value = _slot(value)
            uses[role] = _Use(value, job.files[value].sha256 if value in job.files else value, owner)

    for i, element in enumerate(args.get("elements", []), 1):
        name = refs.get(f"@Element{i}", f"Element{i}")
        add(f"@{name} frontal", element.get("frontal_image_url"), name)
        for j, value in enumerate(element.get("reference_image_urls", []), 1):
            add(f"@{name} reference {j}", value, name)
        add(f"@{name} video", element.get("video_url"), name)
    for i, value in enumerate(args.get("image_urls", []), 1):
        name = refs.get(f"@Image{i}", f"Image{i}")
        add(f"@{name}", value, name)
    add("start frame", args.get("start_image_url"), None)
    add("end frame", args.get("end_image_url"), None)
    return uses


def asset_changes(old: Job, new: Job) -> Iterator[AssetChange]:
    """Assets repainted (same path, new bytes), moved (new path, same bytes), replaced, added or removed.

    An asset that comes or goes with its whole reference is not listed: the reference change says it.
    """
    before, after = asset_uses(old), asset_uses(new)
    kept = set(old.references.values()) & set(new.references.values())
    for role in [*after, *(r for r in before if r not in after)]:
        a, b = before.get(role), after.get(role)
        if a is not None and b is not None:
            kind = _kind(a, b)
            if kind is not None:
                yield AssetChange(role, kind, a.value, b.value)
        elif a is None and b is not None and (b.owner is None or b.owner in kept):
            yield AssetChange(role, "added", None, b.value)
        elif b is None and a is not None and (a.owner is None or a.owner in kept):
            yield AssetChange(role, "removed", a.value, None)


def _kind(a: _Use, b: _Use) -> AssetChangeKind | None:
    if a.content == b.content:
        return None if a.value == b.value else "moved"
    return "repainted" if a.value == b.value else "replaced"
