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
from storyc.compile.compiler import Job
from storyc.compile.endpoints import tier_name
from storyc.fsutil import contained_or_none
from storyc.lock.lockfile import Lock, LockError, LockStore, Render, also_paid_video_path, video_path, video_target

if TYPE_CHECKING:
    import httpx

    from storyc.compile.compiler import CompiledBoard
    from storyc.team.layer import TeamLayer

SceneStatusWord = Literal["done", "missing", "altered", "submitted", "unknown", "failed", "lost", "stale", "new"]


@dataclass(frozen=True)
class SceneStatus:
    scene: str
    key: str
    status: SceneStatusWord
    detail: str
    path: str | None = None
    also_paid: tuple[Render, ...] = ()  # other requests fal accepted for this key (`Render.also_paid`)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "scene": self.scene,
            "state": self.status,
            "key": self.key,
            "path": self.path,
            "detail": self.detail,
        }
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
    board_dir: Path, jobs: Sequence[Job], lock: Lock, current: Collection[str] = frozenset()
) -> list[SceneStatus]:
    """Each job's render state; `current`: keys of the board's requests in its other profiles.

    A scene's render in another profile (its final, say) is not an earlier version of this
    profile's request: without `current` a draft never rendered would say `stale`.
    """
    return [_also_paid(_status(board_dir, job, lock, current), lock.renders.get(job.key)) for job in jobs]


def _status(board_dir: Path, job: Job, lock: Lock, current: Collection[str] = frozenset()) -> SceneStatus:
    render = lock.renders.get(job.key)
    if render is None:
        mine = [(key, r) for key, r in lock.renders.items() if r.scene == job.scene and key not in current]
        # a render on another endpoint (this scene's draft, when this is its final) is no earlier version
        if any(r.endpoint == job.endpoint for _, r in mine):
            return SceneStatus(job.scene, job.key, "stale", "changed since its last render; `storyc render` renders it")
        if mine:
            return SceneStatus(job.scene, job.key, "new", f"not rendered on {tier_name(job.endpoint)} yet")
        return SceneStatus(job.scene, job.key, "new", "never rendered")
    if render.state == "done":
        return _local_file_status(board_dir, job, render)
    if render.state == "submitted":
        what = "result fetched, download pending" if render.video else f"request {render.request_id} on fal"
        return SceneStatus(job.scene, job.key, "submitted", f"{what}; `storyc render` resumes it at no new cost")
    if render.uncertain:
        when = f" at {render.sent_at:%Y-%m-%d %H:%M} UTC" if render.sent_at else ""
        detail = f"a submit sent{when} got no answer: fal may have accepted it; see `storyc plan`"
        return SceneStatus(job.scene, job.key, "unknown", detail)
    state: SceneStatusWord = "lost" if render.state == "lost" else "failed"
    return SceneStatus(job.scene, job.key, state, render.error or render.state)


def _local_file_status(board_dir: Path, job: Job, render: Render) -> SceneStatus:
    video = render.video
    path = video.path if video else None
    if video is None or path is None:
        return SceneStatus(job.scene, job.key, "missing", "the lock records no local file", path)
    target = board_dir / path
    if not target.is_file():
        return SceneStatus(job.scene, job.key, "missing", f"{path} is gone; `storyc pull` fetches it again", path)
    if (video.bytes is not None and target.stat().st_size != video.bytes) or (
        video.sha256 is not None and sha256_file(target) != video.sha256
    ):
        detail = f"{path} is not the rendered file; `storyc pull` restores it"
        return SceneStatus(job.scene, job.key, "altered", detail, path)
    return SceneStatus(job.scene, job.key, "done", path, path)


def animatic_status(compiled: CompiledBoard, jobs: Sequence[Job], size: str = "preview") -> list[SceneStatus]:
    """Each scene's animatic: done (its file) when the current request has one, else new."""
    from storyc.render.backends.animatic import AnimaticBackend

    backend = AnimaticBackend(compiled.path.parent, compiled.title, size)
    statuses = []
    for job in jobs:
        path = backend.output_path(job)
        if backend.is_cached(job):
            statuses.append(SceneStatus(job.scene, job.key, "done", path, path))
        else:
            detail = "no animatic of this version yet; `storyc render --backend animatic` draws it (free)"
            statuses.append(SceneStatus(job.scene, job.key, "new", detail))
    return statuses


def stale_animatics(compiled: CompiledBoard, jobs: Sequence[Job]) -> list[Path]:
    """Animatic files (cached and placed, every size) that no current scene has: `gc --animatics`."""
    from storyc.render.backends.animatic import CACHE_FOLDER, PLACED_FOLDER, SIZES, AnimaticBackend

    board_dir = compiled.path.parent
    keep: set[Path] = set()
    for size in SIZES:
        backend = AnimaticBackend(board_dir, compiled.title, size)
        for job in jobs:
            keep.add(board_dir / backend.output_path(job))
            keep.add(backend.cached_file(job))
    # a folder that leads out of the board's (a symbolic link) has nothing of this board's to delete
    folders = [f for f in (contained_or_none(board_dir, name) for name in (PLACED_FOLDER, CACHE_FOLDER)) if f]
    found = [p for folder in folders for p in folder.glob("*.mp4")]
    return sorted(p for p in found if p not in keep and p.name != "cut.mp4")


@dataclass(frozen=True)
class Pulled:
    scene: str
    path: str
    ok: bool
    detail: str


def pull(
    board_dir: Path,
    jobs: Sequence[Job],
    store: LockStore,
    *,
    team: TeamLayer | None = None,
    on_scene: Callable[[str, str], None] = lambda scene, what: None,
) -> list[Pulled]:
    """Download each done render whose local file is missing or altered, verifying its sha256; the videos of
    the other requests paid for a scene's key (`also_paid`) too.

    From the team store first when there is one (it keeps every paid video; fal's URLs expire),
    else from the URL the lock recorded.
    """
    from storyc.render.download import new_client

    with new_client() as client:
        return [
            _pull_one(board_dir, client, store, key, render, scene, path, team, on_scene)
            for scene, key, render, path in _to_pull(board_dir, jobs, store.lock)
        ]


def _to_pull(board_dir: Path, jobs: Sequence[Job], lock: Lock) -> list[tuple[str, str, Render, str]]:
    """(scene, key, render, the path its video goes to) of each paid video missing or altered here."""
    wanted: list[tuple[str, str, Render, str]] = []
    for job, status in zip(jobs, scene_status(board_dir, jobs, lock), strict=True):
        entry = lock.renders.get(job.key)
        if entry is None:
            continue
        if status.status in ("missing", "altered") and entry.video is not None:
            wanted.append((job.scene, job.key, entry, entry.video.path or video_path(job.scene, job.key)))
        for other in entry.also_paid.values():
            if other.state != "done" or other.video is None or other.request_id is None:
                continue
            if any(r.request_id == other.request_id for _, _, r, _ in wanted):  # two scenes, one request
                continue
            if _local_file_status(board_dir, job, other).status in ("missing", "altered"):
                path = other.video.path or also_paid_video_path(job.scene, job.key, other.request_id)
                wanted.append((job.scene, job.key, other, path))
    return wanted


def _pull_one(
    board_dir: Path,
    client: httpx.Client,
    store: LockStore,
    key: str,
    render: Render,
    scene: str,
    path: str,
    team: TeamLayer | None,
    on_scene: Callable[[str, str], None],
) -> Pulled:
    from storyc.render.download import DownloadError, fetch

    assert render.video is not None
    on_scene(scene, f"downloading {path}")
    try:
        target = video_target(board_dir, path)  # a hand-edited lock may point outside renders/
    except LockError as exc:
        return Pulled(scene, path, False, str(exc))
    if team is not None:
        size, why_not = team.try_fetch(render.video.sha256, target)
        if size is not None:
            return Pulled(scene, path, True, f"{size:,} bytes from the team store, sha256 verified")
        on_scene(scene, f"not from the team store ({why_not}); trying the lock's URL")
    try:
        got = fetch(
            client,
            render.video.url,
            target,
            expected_size=render.video.bytes,
            expected_sha256=render.video.sha256,
        )
    except (DownloadError, LockError, OSError) as exc:
        return Pulled(scene, path, False, str(exc))
    if render.video.path is None or render.video.sha256 is None:
        video = replace(render.video, path=path, bytes=got.size, sha256=got.sha256)
        store.set_render(key, replace(render, video=video))  # the request's own record: `Render.with_request`
    return Pulled(scene, path, True, f"{got.size:,} bytes, sha256 verified")


@dataclass(frozen=True)
class Dropped:
    key: str
    render: Render


def unused_renders(jobs: Sequence[Job], lock: Lock) -> list[Dropped]:
    used = {job.key for job in jobs}
    return [Dropped(key, render) for key, render in sorted(lock.renders.items()) if key not in used]


def gc(
    jobs: Sequence[Job], store: LockStore, board_dir: Path, *, delete_videos: bool, scenes: dict[str, str] | None
) -> list[Dropped]:
    """Forget renders no job in `jobs` uses (and uploads none needs); `scenes`: the lock's new `scenes:` map.

    `jobs` is every profile's kept scenes; `scenes` the default profile's keys (None: leave the map).
    """
    dropped = unused_renders(jobs, store.lock)
    gone = {d.key for d in dropped}
    needed_uploads = {f.sha256 for job in jobs for f in job.files.values()}

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
            for render in (d.render, *d.render.also_paid.values()):  # every paid video of the key
                if render.video is not None and render.video.path:
                    video_target(board_dir, render.video.path).unlink(missing_ok=True)
    return dropped
