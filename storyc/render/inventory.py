"""What is rendered, locally and in the lock: `storyc status`, `storyc pull`, `storyc gc`.

None of these renders or pays for anything.  `pull` only downloads videos
that are already paid for (from the URL the lock recorded), and `gc` only
forgets renders no current scene uses.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from storyc.compile.assets import sha256_file
from storyc.compile.compiler import Edge, Job, StillJob
from storyc.compile.endpoints import tier_name
from storyc.compile.graph import Step, step_label
from storyc.fsutil import contained_or_none
from storyc.lock.lockfile import (
    Lock,
    LockError,
    LockStore,
    Render,
    Video,
    also_paid_video_path,
    still_path,
    video_path,
    video_target,
)

if TYPE_CHECKING:
    import httpx

    from storyc.compile.compiler import CompiledBoard
    from storyc.team.layer import TeamLayer

SceneStatusWord = Literal[
    "done", "missing", "altered", "submitted", "unknown", "failed", "lost", "stale", "new", "outdated"
]


@dataclass(frozen=True)
class SceneStatus:
    scene: str
    key: str
    status: SceneStatusWord
    detail: str
    path: str | None = None
    also_paid: tuple[Render, ...] = ()  # other requests fal accepted for this key (`Render.also_paid`)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any]
        if self.scene.startswith("still "):  # a still's label (scene ids never hold a space)
            data = {"still": self.scene.removeprefix("still ")}
        else:
            data = {"scene": self.scene}
        data.update(state=self.status, key=self.key, path=self.path, detail=self.detail)
        if self.also_paid:
            data["also_paid"] = [_paid_json(r) for r in self.also_paid]
        return data


def _paid_json(render: Render) -> dict[str, Any]:
    path = render.video.path if render.video is not None else None
    return {"request_id": render.request_id, "state": render.state, "path": path}


def _also_paid(status: SceneStatus, render: Render | None) -> SceneStatus:
    """A status that names every other paid request of its key: paid for, so never silently out of sight."""
    if render is None or not render.also_paid:
        return status
    others = tuple(render.also_paid.values())
    named = "; ".join(r.also_paid_note() for r in others)
    return replace(status, detail=f"{status.detail}; {named}", also_paid=others)


def scene_status(
    board_dir: Path, jobs: Sequence[Step], lock: Lock, current: Collection[str] = frozenset()
) -> list[SceneStatus]:
    """Each step's render state (scenes, and the stills of a graph board); `current`: keys of the
    board's requests in its other profiles.

    A scene's render in another profile (its final, say) is not an earlier version of this
    profile's request: without `current` a draft never rendered would say `stale`.
    """
    return [_also_paid(_status(board_dir, job, lock, current), lock.renders.get(job.key)) for job in jobs]


def _status(board_dir: Path, job: Step, lock: Lock, current: Collection[str] = frozenset()) -> SceneStatus:
    if isinstance(job, StillJob):
        return _still_status(board_dir, job, lock, current)
    render = lock.renders.get(job.key)
    if render is None:
        mine = [(key, r) for key, r in lock.renders.items() if r.scene == job.scene and key not in current]
        # a render on another endpoint (this scene's draft, when this is its final) is no earlier version
        earlier = [r for _, r in mine if r.endpoint == job.endpoint]
        if earlier:
            why = _made_from_earlier(job, earlier, lock) or "changed since its last render"
            return SceneStatus(job.scene, job.key, "stale", f"{why}; `storyc render` renders it")
        if mine:
            return SceneStatus(job.scene, job.key, "new", f"not rendered on {tier_name(job.endpoint)} yet")
        return SceneStatus(job.scene, job.key, "new", "never rendered")
    if render.state == "done":
        return _outdated(job, render, lock) or _local_file_status(board_dir, job, render)
    return _pending_status(job, render)


def _pending_status(job: Step, render: Render) -> SceneStatus:
    """A render that is not done: submitted, unknown, failed or lost."""
    label = step_label(job)
    if render.state == "submitted":
        what = "result fetched, download pending" if render.video else f"request {render.request_id} on fal"
        return SceneStatus(label, job.key, "submitted", f"{what}; `storyc render` resumes it at no new cost")
    if render.uncertain:
        when = f" at {render.sent_at:%Y-%m-%d %H:%M} UTC" if render.sent_at else ""
        detail = f"a submit sent{when} got no answer: fal may have accepted it; see `storyc plan`"
        return SceneStatus(label, job.key, "unknown", detail)
    state: SceneStatusWord = "lost" if render.state == "lost" else "failed"
    return SceneStatus(label, job.key, state, render.error or render.state)


def _still_status(board_dir: Path, job: StillJob, lock: Lock, current: Collection[str]) -> SceneStatus:
    label = step_label(job)
    render = lock.renders.get(job.key)
    if render is None:
        earlier = [r for k, r in lock.renders.items() if r.still == job.still and k not in current]
        if earlier:
            why = _made_from_earlier(job, earlier, lock) or "changed since its last render"
            return SceneStatus(label, job.key, "stale", f"{why}; `storyc render` renders it")
        return SceneStatus(label, job.key, "new", "never rendered")
    if render.state != "done":
        return _pending_status(job, render)
    outdated = _outdated(job, render, lock)
    if outdated is not None:
        return outdated
    if not render.images:
        return SceneStatus(label, job.key, "missing", "the lock records no candidate files")
    for image in render.images:
        problem = _file_problem(board_dir, image)
        if problem is not None:
            return SceneStatus(label, job.key, problem[0], problem[1], image.path)
    paths = [image.path or "" for image in render.images]
    picked = f" (pick {job.pick})" if len(paths) > 1 else ""
    return SceneStatus(
        label, job.key, "done", ", ".join(paths) + picked, paths[job.pick - 1 if job.pick <= len(paths) else 0]
    )


def _output_sha(edge: Edge, lock: Lock) -> str | None:
    """The sha256 of an upstream's output as the lock has it now: the picked candidate, or the video."""
    upstream = lock.done(edge.key)
    if upstream is None:
        return None
    if edge.kind == "still":
        images = upstream.images
        return images[edge.pick - 1].sha256 if edge.pick is not None and 0 < edge.pick <= len(images) else None
    return upstream.video.sha256 if upstream.video is not None else None


def _upstream_words(edge: Edge) -> str:
    return f"still '{edge.name}'" if edge.kind == "still" else f"scene '{edge.name}'"


def _outdated(job: Step, render: Render, lock: Lock) -> SceneStatus | None:
    """A done step made from an upstream output that is no longer the one on record (the upstream was
    rendered again, its output differs): worth knowing before it is cut into the film."""
    for edge in job.depends_on:
        made_from = render.made_from.get(edge.hashed)
        now = _output_sha(edge, lock)
        if made_from is not None and now is not None and made_from != now:
            detail = (
                f"made from an earlier output of {_upstream_words(edge)}: the one on record now differs "
                "(it was rendered again, or the lock was merged)"
            )
            path = render.video.path if render.video else None
            return SceneStatus(step_label(job), job.key, "outdated", detail, path)
    return None


def _made_from_earlier(job: Step, earlier: Sequence[Render], lock: Lock) -> str | None:
    """Why a step's earlier render is not its render now, when an upstream is the reason: another
    pick of a still (`made from an earlier pick of still 'meet-open' (2; now 3)`), another version."""
    for edge in job.depends_on:
        for render in earlier:
            for hashed in render.made_from:
                kind, _, rest = hashed.partition(":")
                key, _, pick = rest.partition("#")
                if hashed == edge.hashed or kind != edge.hashed.partition(":")[0]:
                    continue
                if key == edge.key and edge.kind == "still":
                    return f"made from an earlier pick of {_upstream_words(edge)} ({pick}; now {edge.pick})"
                previous = lock.renders.get(key)
                if previous is not None and (previous.still or previous.scene) == edge.name:
                    return f"made from an earlier version of {_upstream_words(edge)}"
    return None


def _file_problem(board_dir: Path, file: Video) -> tuple[SceneStatusWord, str] | None:
    """Whether a done render's file is here and is the one rendered: None, or (missing | altered, why)."""
    path = file.path
    if path is None:
        return ("missing", "the lock records no local file")
    target = board_dir / path
    if not target.is_file():
        return ("missing", f"{path} is gone; `storyc pull` fetches it again")
    if (file.bytes is not None and target.stat().st_size != file.bytes) or (
        file.sha256 is not None and sha256_file(target) != file.sha256
    ):
        return ("altered", f"{path} is not the rendered file; `storyc pull` restores it")
    return None


def _local_file_status(board_dir: Path, job: Job, render: Render) -> SceneStatus:
    video = render.video
    path = video.path if video else None
    if video is None:
        return SceneStatus(job.scene, job.key, "missing", "the lock records no local file", path)
    problem = _file_problem(board_dir, video)
    if problem is not None or path is None:
        word, why = problem or ("missing", "the lock records no local file")
        return SceneStatus(job.scene, job.key, word, why, path)
    return SceneStatus(job.scene, job.key, "done", path, path)


def animatic_status(compiled: CompiledBoard, jobs: Sequence[Step], size: str = "preview") -> list[SceneStatus]:
    """Each step's animatic: done (its file, a still's cards) when the current request has one, else new."""
    from storyc.render.backends.animatic import AnimaticBackend

    backend = AnimaticBackend(compiled.path.parent, compiled.title, size)
    statuses = []
    for job in jobs:
        paths = backend.card_paths(job) if isinstance(job, StillJob) else (backend.output_path(job),)
        if backend.is_cached(job):
            statuses.append(SceneStatus(step_label(job), job.key, "done", ", ".join(paths), paths[0]))
        else:
            detail = "no animatic of this version yet; `storyc render --backend animatic` draws it (free)"
            statuses.append(SceneStatus(step_label(job), job.key, "new", detail))
    return statuses


def stale_animatics(compiled: CompiledBoard, jobs: Sequence[Step]) -> list[Path]:
    """Animatic files (cached and placed, every size; a still's cards too) that no current step has:
    `gc --animatics`."""
    from storyc.render.backends.animatic import CACHE_FOLDER, PLACED_FOLDER, SIZES, AnimaticBackend

    board_dir = compiled.path.parent
    keep: set[Path] = set()
    for size in SIZES:
        backend = AnimaticBackend(board_dir, compiled.title, size)
        for job in jobs:
            if isinstance(job, StillJob):
                keep.update(board_dir / p for p in backend.card_paths(job))
                keep.update(backend.cached_cards(job))
            else:
                keep.add(board_dir / backend.output_path(job))
                keep.add(backend.cached_file(job))
    # a folder that leads out of the board's (a symbolic link) has nothing of this board's to delete
    folders = [f for f in (contained_or_none(board_dir, name) for name in (PLACED_FOLDER, CACHE_FOLDER)) if f]
    found = [p for folder in folders for p in (*folder.glob("*.mp4"), *folder.glob("*.png"))]
    placed = contained_or_none(board_dir, f"{PLACED_FOLDER}/stills")
    found += list(placed.glob("*.png")) if placed is not None else []
    return sorted(p for p in found if p not in keep and p.name != "cut.mp4")


@dataclass(frozen=True)
class Pulled:
    scene: str
    path: str
    ok: bool
    detail: str


def pull(
    board_dir: Path,
    jobs: Sequence[Step],
    store: LockStore,
    *,
    team: TeamLayer | None = None,
    on_scene: Callable[[str, str], None] = lambda scene, what: None,
) -> list[Pulled]:
    """Download each file of a done render (a scene's video, a still's candidates) that is missing or
    altered locally, verifying its sha256; the files of the other requests paid for a key (`also_paid`) too.

    From the team store first when there is one (it keeps every paid video; fal's URLs expire),
    else from the URL the lock recorded.
    """
    from storyc.render.download import new_client

    with new_client() as client:
        return [
            _pull_one(board_dir, client, store, missing, team, on_scene)
            for missing in _to_pull(board_dir, jobs, store.lock)
        ]


@dataclass(frozen=True)
class _Missing:
    """One file of a paid request that is missing or altered here."""

    label: str  # the step, as people call it
    key: str
    render: Render  # the request whose file it is: the entry's own, or one of `also_paid`
    file: Video  # as the lock records it
    path: str  # where it goes
    candidate: int | None = None  # a still's candidate (1-based); None: a scene's video

    @property
    def kind(self) -> str:
        return "video" if self.candidate is None else "image"


def _to_pull(board_dir: Path, jobs: Sequence[Step], lock: Lock) -> list[_Missing]:
    """Each file of a paid request missing or altered here, each request once (two scenes, one key)."""
    wanted: list[_Missing] = []
    seen: set[tuple[str, str | None]] = set()
    for job in jobs:
        entry = lock.renders.get(job.key)
        if entry is None:
            continue
        for request in (entry, *entry.also_paid.values()):
            if request.state != "done" or (job.key, request.request_id) in seen:
                continue
            seen.add((job.key, request.request_id))
            wanted += _missing_files(board_dir, job, request, own=request is entry)
    return wanted


def _missing_files(board_dir: Path, job: Step, request: Render, *, own: bool) -> list[_Missing]:
    label = step_label(job)
    if isinstance(job, StillJob):
        if not own:  # another paid request of a still: its candidates stay listed, not fetched
            return []
        files = [
            (n, image, image.path or still_path(job.still, job.key, n)) for n, image in enumerate(request.images, 1)
        ]
        return [
            _Missing(label, job.key, request, image, path, n)
            for n, image, path in files
            if _file_problem(board_dir, replace(image, path=path)) is not None
        ]
    video = request.video
    if video is None or (not own and request.request_id is None):
        return []
    default = (
        video_path(job.scene, job.key) if own else also_paid_video_path(job.scene, job.key, request.request_id or "")
    )
    path = video.path or default
    if _file_problem(board_dir, replace(video, path=path)) is None and video.path is not None:
        return []
    return [_Missing(label, job.key, request, video, path)]


def _pull_one(
    board_dir: Path,
    client: httpx.Client,
    store: LockStore,
    missing: _Missing,
    team: TeamLayer | None,
    on_scene: Callable[[str, str], None],
) -> Pulled:
    from storyc.render.download import DownloadError, fetch

    label, path, file = missing.label, missing.path, missing.file
    on_scene(label, f"downloading {path}")
    try:
        target = video_target(board_dir, path)  # a hand-edited lock may point outside renders/
    except LockError as exc:
        return Pulled(label, path, False, str(exc))
    if team is not None:
        size, why_not = team.try_fetch(file.sha256, target, missing.kind)
        if size is not None:
            return Pulled(label, path, True, f"{size:,} bytes from the team store, sha256 verified")
        on_scene(label, f"not from the team store ({why_not}); trying the lock's URL")
    try:
        got = fetch(client, file.url, target, expected_size=file.bytes, expected_sha256=file.sha256)
    except (DownloadError, LockError, OSError) as exc:
        return Pulled(label, path, False, str(exc))
    if file.path is None or file.sha256 is None:  # the lock learns where it is and what it is
        known = replace(file, path=path, bytes=got.size, sha256=got.sha256)
        render = missing.render
        if missing.candidate is None:
            render = replace(render, video=known)
        else:
            images = list(render.images)
            images[missing.candidate - 1] = known
            render = replace(render, images=tuple(images))
        store.set_render(missing.key, render)  # the request's own record: `Render.with_request`
    return Pulled(label, path, True, f"{got.size:,} bytes, sha256 verified")


def _rendered_files(job: Step, render: Render) -> tuple[Video, ...]:
    """A done render's files, each with the path it has, or gets, beside the board."""
    if isinstance(job, StillJob):
        return tuple(
            replace(i, path=i.path or still_path(job.still, job.key, n)) for n, i in enumerate(render.images, 1)
        )
    if render.video is None:
        return ()
    return (replace(render.video, path=render.video.path or video_path(job.scene, job.key)),)


def _pull_file(
    client: Any,
    board_dir: Path,
    label: str,
    file: Video,
    team: TeamLayer | None,
    on_scene: Callable[[str, str], None],
) -> tuple[Pulled | None, Video | None]:
    """One file, if missing or altered: what was done (None: it is here), and the file as now known."""
    from storyc.render.download import DownloadError, fetch

    path = file.path
    assert path is not None
    if _file_problem(board_dir, file) is None:
        return None, None
    on_scene(label, f"downloading {path}")
    try:
        target = video_target(board_dir, path)  # a hand-edited lock may point outside renders/
    except LockError as exc:
        return Pulled(label, path, False, str(exc)), None
    if team is not None:
        size, why_not = team.try_fetch(file.sha256, target, "image" if label.startswith("still ") else "video")
        if size is not None:
            return Pulled(label, path, True, f"{size:,} bytes from the team store, sha256 verified"), None
        on_scene(label, f"not from the team store ({why_not}); trying the lock's URL")
    try:
        got = fetch(client, file.url, target, expected_size=file.bytes, expected_sha256=file.sha256)
    except (DownloadError, LockError, OSError) as exc:
        return Pulled(label, path, False, str(exc)), None
    known = replace(file, bytes=got.size, sha256=got.sha256)
    return Pulled(label, path, True, f"{got.size:,} bytes, sha256 verified"), known


@dataclass(frozen=True)
class Dropped:
    key: str
    render: Render


def unused_renders(jobs: Sequence[Step], lock: Lock) -> list[Dropped]:
    used = {job.key for job in jobs}
    return [Dropped(key, render) for key, render in sorted(lock.renders.items()) if key not in used]


def gc(
    jobs: Sequence[Step], store: LockStore, board_dir: Path, *, delete_videos: bool, scenes: dict[str, str] | None
) -> list[Dropped]:
    """Forget renders no step in `jobs` uses (and uploads none needs); `scenes`: the lock's new `scenes:` map.

    `jobs` is every profile's kept scenes and stills; `scenes` the default profile's keys (None: leave
    the map).  A kept still's candidates stay uploaded (a scene sends the picked one); a frame taken
    from a video is uploaded again when next needed (its upload is not tied to an entry).
    """
    dropped = unused_renders(jobs, store.lock)
    gone = {d.key for d in dropped}
    needed_uploads = {f.sha256 for job in jobs for f in job.files.values()}
    needed_uploads |= {i.sha256 for k, r in store.lock.renders.items() if k not in gone for i in r.images if i.sha256}

    def change(lock: Lock) -> Lock:
        return replace(
            lock,
            scenes=lock.scenes if scenes is None else dict(scenes),
            renders={k: r for k, r in lock.renders.items() if k not in gone},
            uploads={k: u for k, u in lock.uploads.items() if k in needed_uploads},
        )

    store.update(change)
    if delete_videos:
        for d in dropped:
            for render in (d.render, *d.render.also_paid.values()):  # every paid file of the key
                for file in (render.video, *render.images):
                    if file is not None and file.path:
                        video_target(board_dir, file.path).unlink(missing_ok=True)
    return dropped
