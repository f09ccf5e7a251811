"""The ledger: the lock file in front of a paid render service (fal, or an in-memory one in tests).

It answers first and sends only when it must (pip-tools' local repository in
front of the real one).  For each scene of a plan it decides cached / resume /
submit, and records every step in the lock before the next network call, so a
kill at any moment loses nothing that was paid for and never pays twice:

    (none) --intent written--> intent --accepted--> submitted(request_id)
    intent --no answer / 5xx / dropped--> unknown       (never re-sent silently)
    submitted --video fetched and verified--> done
    submitted --definitive failure--> failed
    submitted --404 long after it was sent--> lost       (paying again needs a new yes)
    unknown / intent / lost / failed --adopt(request id fal shows)--> submitted

The service (`storyc.render.backends.base.RenderService`) only talks to its service;
the ledger owns the money rules:

- A scene whose key is `done` is never sent; a `submitted` one is resumed by
  its request id; an `intent`/`unknown` one is not sent again unless the user
  asks (`resend_unknown`), because fal may already have accepted it.
- A paid job stays resumable until the service says otherwise: transient
  errors (`Pending`) and a 404 soon after sending leave it `submitted`.
- Scenes with identical requests share one render per run.
- Every other request paid for a key (`also_paid`: two clones each submitted it,
  and a merge kept both) is resumed too and its video fetched to a file of its
  own, at no cost; the key is never submitted again while one of them may finish.
- A request that was never accepted (`NotSent`, `Refused`) leaves no entry:
  nothing was paid, and the lock says nothing false about it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storyc.compile.assets import LocalFile
from storyc.compile.compiler import Edge, Job, StillJob, money
from storyc.compile.graph import Step, step_label, step_words
from storyc.diagnostics import StorycError
from storyc.fsutil import OutsideTheBoard, contained, why_not_written
from storyc.lock.lockfile import (
    Lock,
    LockError,
    LockStore,
    Render,
    RenderState,
    Upload,
    Video,
    also_paid_video_path,
    now_utc,
    still_path,
    video_path,
    video_target,
)
from storyc.lock.merge import settle
from storyc.render.backends.base import Gone, JobFailed, NoAnswer, NotSent, Pending, Refused, RemoteVideo, RenderService
from storyc.render.plan import Plan, PlanItem, Steps, plan_with_lock
from storyc.render.run import Interrupted, RunContext, SceneResult

if TYPE_CHECKING:
    from storyc.team.layer import Decision, TeamLayer
    from storyc.team.store import ClaimInfo, DoneRecord


@dataclass(frozen=True)
class LedgerSettings:
    upload_ttl: timedelta = timedelta(hours=24)  # upload an asset again when its recorded URL is older
    # A 404 for a request sent less than this long ago is read as "fal does not know it yet", not as
    # "gone": the job stays submitted.  fal keeps a result at least an hour after it completes
    # (fal-facts 1.5), so a 404 an hour after sending can only mean the result expired.
    lost_after: timedelta = timedelta(hours=1)
    resend_unknown: bool = False  # send again the submits whose outcome is unknown (may pay twice)
    cancel_on_interrupt: bool = False


@dataclass(frozen=True)
class _Inputs:
    """What a step's request sends besides its text: each local file's URL (by sha256), each upstream
    output's URL (by its placeholder), and what each of those outputs was (`made_from`)."""

    urls: dict[str, str]
    outputs: dict[str, str]
    made_from: dict[str, str]


class Ledger:
    """Runs plan items (the `Backend` protocol of `storyc.render.run`) through the lock, then the service."""

    paid = True

    def __init__(
        self,
        board_dir: Path,
        store: LockStore,
        service: RenderService,
        settings: LedgerSettings | None = None,
        team: TeamLayer | None = None,
    ) -> None:
        self.board_dir = board_dir
        self.store = store
        self.service = service
        self.settings = settings or LedgerSettings()
        self.team = team  # the team store, between this lock and the service
        self.name = service.name
        self.notes: list[str] = []  # for the summary, about the run as a whole
        self._guard = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._handled: dict[str, SceneResult] = {}  # key -> the first scene's result in this run
        self._submitted_now: dict[str, tuple[str, str]] = {}  # scene -> (endpoint, request id), this run

    # --- the Backend protocol ----------------------------------------------------------------

    def plan(self, storyboard: str, steps: Steps) -> Plan:
        return plan_paid(
            storyboard, steps, self.store.lock, self.team, self.name, resend_unknown=self.settings.resend_unknown
        )

    def prepare(self, plan: Plan) -> None:
        """Refuse before anything is sent when the service would need a key and there is none."""
        if any(i.action in ("render", "resume") or _others_pending(i.previous) for i in plan.items):
            self.service.check_credentials()

    def run(self, item: PlanItem, ctx: RunContext) -> SceneResult:
        key = item.job.key
        with self._guard:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one render per key per run: a second scene with the same request waits for it
            first = self._handled.get(key)
            if first is not None:
                return _shared(item, first)
            scene_ctx = ctx.scene(item.scene)
            result = self._run(item, scene_ctx)
            if isinstance(item.job, Job):  # other paid requests of a key: scenes' (a still's stay listed)
                result = self._other_requests(item.job, result, scene_ctx)
            self._handled[key] = result
            return result

    def finish(self, results: Sequence[SceneResult], interrupted: bool) -> None:
        try:
            if interrupted and self.settings.cancel_on_interrupt:
                self._cancel_submitted(results)
        finally:
            self.service.close()

    # --- one scene ------------------------------------------------------------------------------

    def _run(self, item: PlanItem, ctx: RunContext) -> SceneResult:
        job = item.job
        if item.action == "cached":
            return self._ensure_local(item, ctx)
        if item.action == "store":  # the team layer finds it done there, before anything is uploaded
            return self._submit(job, ctx)
        if item.action == "unknown":
            assert item.previous is not None
            return self._settled_elsewhere(job, ctx) or self._unknown(job, item.previous)
        if item.action == "resume":
            assert item.previous is not None and item.previous.request_id is not None
            return self._finish(job, item.previous, ctx, spent=Decimal("0"), resumed=True)
        return self._submit(job, ctx)

    def _settled_elsewhere(self, job: Step, ctx: RunContext) -> SceneResult | None:
        """An unknown submit the team store has since settled: done by a clone, or its request id
        recorded (`storyc lock adopt` on the clone that sent it). Then it is fetched or resumed, $0."""
        from storyc.team.layer import DoneElsewhere, SubmittedElsewhere
        from storyc.team.store import StoreError

        if self.team is None:
            return None
        try:
            decision = self.team.look(job)
        except StoreError:
            return None  # the lock's `unknown` stands: nothing is sent either way
        if not isinstance(decision, (DoneElsewhere, SubmittedElsewhere)):
            return None
        result = self._follow(job, decision, ctx)
        assert isinstance(result, SceneResult)  # done or submitted elsewhere: fetched or resumed
        return result

    def _through_team(self, job: Step, ctx: RunContext, *, claim: bool) -> SceneResult | ClaimInfo | None:
        """Ask the team store before paying: another clone may have it done, submitted or in hand.

        Without `claim` it only looks (before uploads: nothing to upload for a key done elsewhere);
        with it, it claims the key, waiting while another clone's claim has no answer yet.
        """
        from storyc.team.store import StoreError

        assert self.team is not None
        try:
            decision = self.team.decide(job, ctx) if claim else self.team.look(job)
        except StoreError as exc:
            return self._store_unusable(job, exc)
        return self._follow(job, decision, ctx)

    def _follow(self, job: Step, decision: Decision | None, ctx: RunContext) -> SceneResult | ClaimInfo | None:
        """Act on what the team store said of a key: fetch it, resume it, submit it (a claim), or not."""
        from storyc.team.layer import Claimed, DoneElsewhere, SubmittedElsewhere
        from storyc.team.store import StoreError

        assert self.team is not None
        if decision is None:
            return None
        if isinstance(decision, DoneElsewhere):
            try:
                return self._from_store(job, decision.record, ctx)
            except StoreError as exc:
                return self._store_unusable(job, exc)
            except (LockError, OSError) as exc:  # the store's video could not be written here
                return self._not_sent(job, f"could not write the team store's video ({exc})")
        if isinstance(decision, Claimed):
            return decision.claim
        if isinstance(decision, SubmittedElsewhere):
            adopted = self.team.adopted_render(_entry(job, "submitted"), decision.claim)
            self._record(job, adopted, request_id=adopted.request_id)
            ctx.progress.update(step_label(job), "resuming", f"submitted by {decision.claim.owner}")
            return self._finish(job, adopted, ctx, spent=Decimal("0"), resumed=True)
        other = decision.claim  # another clone's submit got no answer: fal may have it, so nobody re-sends it
        unknown = replace(_entry(job, "unknown"), sent_at=other.claimed_at)
        self._record(job, replace(unknown, error=f"submitted by {other.owner}, no answer"), request_id=None)
        return self._unknown(job, unknown)

    def _store_unusable(self, job: Step, exc: Exception) -> SceneResult:
        return self._not_sent(job, f"the team store can't be used ({exc}); `--no-store` renders without it")

    def _from_store(self, job: Step, record: DoneRecord, ctx: RunContext) -> SceneResult:
        """A render another clone paid for: its verified files from the store, $0."""
        assert self.team is not None
        paths = self._file_paths(job, _entry(job, "done"), len(record.files))
        ctx.progress.update(step_label(job), "fetching", "from the team store")
        for (sha256, kind), relative in zip(record.files, paths, strict=True):
            self.team.fetch(sha256, video_target(self.board_dir, relative), kind)
        done = self.team.done_render(record, paths)
        self._record(job, done, request_id=None)
        ctx.progress.update(step_label(job), "cached", ", ".join(paths))
        notes = ("from the team store",)
        path = None if isinstance(job, StillJob) else paths[0]
        images = paths if isinstance(job, StillJob) else ()
        return SceneResult(step_label(job), job.key, "cached", record.request_id, path=path, notes=notes, images=images)

    def _submit(self, job: Step, ctx: RunContext) -> SceneResult:
        if self.team is not None:
            elsewhere = self._through_team(job, ctx, claim=False)
            if isinstance(elsewhere, SceneResult):
                return elsewhere
        ctx.progress.update(step_label(job), "uploading" if job.files or job.depends_on else "submitting")
        try:
            urls = self._upload_assets(list(job.files.values()), ctx)
            outputs, made_from = self._upstream_outputs(job, ctx)
        except NotSent as exc:
            return self._not_sent(job, str(exc))
        ctx.check()
        while True:
            claim: ClaimInfo | None = None
            if self.team is not None:  # claimed only now, after uploads: the lease covers just the submit
                decided = self._through_team(job, ctx, claim=True)
                if isinstance(decided, SceneResult):
                    return decided
                claim = decided
            try:
                sent = self._send(job, ctx, _Inputs(urls, outputs, made_from), claim)
            finally:
                if claim is not None and self.team is not None:
                    self.team.let_go(claim)  # its answer is written, or nothing was sent: no more heartbeats
            if sent is not None:  # None: another clone took the key over first: ask the store again
                break
        if isinstance(sent, SceneResult):
            return sent
        return self._finish(job, sent, ctx, spent=job.cost_usd, resumed=False)

    def _send(
        self, job: Step, ctx: RunContext, inputs: _Inputs, claim: ClaimInfo | None
    ) -> SceneResult | Render | None:
        """Intent, submit, answer, each recorded before the next step: the submitted render, or how it ended.

        None when the claim was taken over before anything was sent (see `TeamLayer.sending`).
        """
        previous = self.store.lock.renders.get(job.key)
        intent = replace(_entry(job, "intent"), sent_at=now_utc(), made_from=inputs.made_from)
        try:
            self.store.set_render(job.key, intent)  # write-ahead: a kill from here on is seen as `unknown`
        except OSError as exc:
            return self._not_sent(job, f"could not write the lock file ({why_not_written(exc)})")
        if claim is not None and self.team is not None:
            from storyc.team.store import StoreError

            try:
                still_mine = self.team.sending(claim)  # write-ahead in the store too: other clones never re-send it
            except StoreError as exc:
                self._restore(job.key, previous)
                return self._not_sent(job, f"the team store can't be used ({exc}); `--no-store` renders without it")
            if not still_mine:
                self._restore(job.key, previous)
                return None
        ctx.progress.update(step_label(job), "submitting")
        try:
            arguments = job.arguments_with(lambda f: inputs.urls[f.sha256], lambda e: inputs.outputs[e.placeholder])
            request_id = self.service.submit(job.endpoint, arguments, ctx)
        except (NotSent, Refused, Interrupted) as exc:
            self._restore(job.key, previous)  # fal did not take it: the lock must not say it might have
            if claim is not None and self.team is not None:
                self.team.released(claim, str(exc) or "interrupted before sending")
            if isinstance(exc, Interrupted):
                raise
            return self._not_sent(job, str(exc), exc.field_path)
        except NoAnswer as exc:
            if claim is not None and self.team is not None:
                self.team.no_answer(claim, str(exc))
            self._record(job, replace(intent, state="unknown", error=str(exc)), request_id=None)
            ctx.progress.update(step_label(job), "unknown")
            return self._unknown(job, replace(intent, state="unknown", error=str(exc)))
        submitted = replace(intent, state="submitted", request_id=request_id)
        self._submitted_now[step_label(job)] = (job.endpoint, request_id)
        if claim is not None and self.team is not None:  # other clones resume this id instead of paying
            self.team.accepted(claim, request_id, job.endpoint)
        if not self._record(job, submitted, request_id=request_id):
            error = self._unrecorded_error(request_id)
            return SceneResult(step_label(job), job.key, "submitted", request_id, spent=job.cost_usd, error=error)
        return submitted

    def _finish(self, job: Step, render: Render, ctx: RunContext, *, spent: Decimal, resumed: bool) -> SceneResult:
        """From an accepted request to a verified file on disk."""
        request_id = render.request_id
        assert request_id is not None
        try:
            if isinstance(job, StillJob) and not render.images:
                remotes = self.service.wait_images(job.endpoint, request_id, ctx, resumed=resumed)
                render = replace(render, images=tuple(Video(url=r.url, bytes=r.bytes) for r in remotes))
                self._record(job, render, request_id=render.request_id)  # only the downloads are left now
            elif isinstance(job, Job) and render.video is None:
                remote = self.service.wait(job.endpoint, request_id, ctx, resumed=resumed)
                render = replace(render, video=Video(url=remote.url, bytes=remote.bytes))
                self._record(job, render, request_id=render.request_id)  # only the download is left now
            done = self._download(job, render, ctx)
        except Interrupted:
            return SceneResult(step_label(job), job.key, "submitted", render.request_id, spent=spent)
        except Gone as exc:
            if not self._lost_for_good(render):
                return self._still_submitted(job, render, spent, f"{exc}, {_sent_ago(render)}; it stays submitted")
            reason = (
                f"{exc}: fal no longer has this request's result. Rendering it again is a new charge: "
                "run `storyc render` again to be asked"
            )
            self._record(job, replace(render, state="lost", error=reason), request_id=render.request_id)
            ctx.progress.update(step_label(job), "lost")
            return SceneResult(step_label(job), job.key, "lost", render.request_id, spent=spent, error=reason)
        except (Pending, LockError) as exc:  # LockError: the lock's video path was refused
            return self._still_submitted(job, render, spent, str(exc))
        except OSError as exc:  # a full disk, a read-only renders/: the job is paid, only the file is missing
            return self._still_submitted(job, render, spent, f"could not write the video ({why_not_written(exc)})")
        except JobFailed as exc:
            self._record(job, replace(render, state="failed", error=str(exc)), request_id=render.request_id)
            ctx.progress.update(step_label(job), "failed", str(exc))
            # Not counted as spent: fal does not bill requests that end in errors (fal-facts 1.10).
            location = _locate(job, exc.field_path)
            return SceneResult(step_label(job), job.key, "failed", render.request_id, error=str(exc), location=location)
        self._record(job, done, request_id=render.request_id)
        path = done.video.path if done.video else None
        if self.team is not None and not self._is_other_request(job.key, render):
            self.team.share(job.key, done, self.board_dir)
        images = _image_paths(done)
        ctx.progress.update(step_label(job), "done", path or ", ".join(images))
        return SceneResult(step_label(job), job.key, "done", render.request_id, path=path, spent=spent, images=images)

    def _ensure_local(self, item: PlanItem, ctx: RunContext) -> SceneResult:
        """A cached step: nothing to pay; fetch its files again (free) if one went missing."""
        render = item.previous
        job = item.job
        assert render is not None
        files = _files_of(render)
        if not files:  # a hand-edited or merged lock: paid, but nothing says where the files are
            error = "the lock records this render as done but has no file for it; `storyc status` shows the entry"
            return SceneResult(item.scene, job.key, "cached", render.request_id, error=error)
        missing = [f.path for f in files if f.path is None or not (self.board_dir / f.path).exists()]
        if missing:
            try:
                render = self._download_again(job, render, ctx)
            except (Gone, Pending, LockError, OSError) as exc:
                error = f"the local file {missing[0]} is missing and could not be fetched again: {exc}"
                path = render.video.path if render.video else None
                return SceneResult(item.scene, job.key, "cached", render.request_id, path=path, error=error)
            self._record(job, render, request_id=render.request_id)
        path = render.video.path if render.video else None
        images = _image_paths(render)
        ctx.progress.update(item.scene, "cached", path or ", ".join(images))
        return SceneResult(item.scene, job.key, "cached", render.request_id, path=path, images=images)

    def _download_again(self, job: Step, render: Render, ctx: RunContext) -> Render:
        """A done render's missing file: from the team store when it has it (fal's URLs expire), else fal."""
        if self.team is not None:
            files = _files_of(render)
            kind = "image" if isinstance(job, StillJob) else "video"
            paths = tuple(f.path or p for f, p in zip(files, self._file_paths(job, render, len(files)), strict=True))
            for file, relative in zip(files, paths, strict=True):
                size, why_not = self.team.try_fetch(file.sha256, video_target(self.board_dir, relative), kind)
                if size is None:
                    self.team.notes.append(f"{step_words(job)}: not from the team store ({why_not}); trying fal's URL")
                    return self._download(job, render, ctx)
            if isinstance(job, StillJob):
                return replace(render, images=tuple(replace(f, path=p) for f, p in zip(files, paths, strict=True)))
            return replace(render, video=replace(files[0], path=paths[0]))
        return self._download(job, render, ctx)

    def _download(self, job: Step, render: Render, ctx: RunContext) -> Render:
        """The step's files from fal's URLs, verified: a scene's video, or each candidate of a still."""
        if isinstance(job, StillJob):
            images = []
            for n, image in enumerate(render.images, 1):
                relative = image.path or still_path(job.still, job.key, n)
                images.append(self._fetch_file(image, relative, ctx))
            return replace(render, state="done", images=tuple(images))
        video = render.video
        assert video is not None
        relative = video.path or self._new_video_path(job, render)
        return replace(render, state="done", video=self._fetch_file(video, relative, ctx))

    def _fetch_file(self, remote: Video, relative: str, ctx: RunContext) -> Video:
        target = video_target(self.board_dir, relative)
        got = self.service.download(RemoteVideo(remote.url, remote.bytes), target, ctx, sha256=remote.sha256)
        return replace(remote, bytes=got.bytes, sha256=got.sha256, path=relative)

    def _upstream_outputs(self, job: Step, ctx: RunContext) -> tuple[dict[str, str], dict[str, str]]:
        """The uploaded URL of each upstream output `job` sends, by its placeholder; and what each output
        was (`made_from`: the edge -> the output's sha256), recorded in the step's lock entry."""
        files: dict[str, LocalFile] = {}
        made_from: dict[str, str] = {}
        for edge in job.depends_on:
            files[edge.placeholder], made_from[edge.hashed] = self._output_file(edge)
        urls = self._upload_assets(list(files.values()), ctx)
        return {placeholder: urls[local.sha256] for placeholder, local in files.items()}, made_from

    def _output_file(self, edge: Edge) -> tuple[LocalFile, str]:
        """An upstream step's output as a local file to upload (the picked candidate, or the frame taken
        from the scene's video), and the sha256 of that output as the lock records it. Raises NotSent."""
        from storyc.media.video import FramePosition, VideoError, stored_frame

        what = f"still '{edge.name}'" if edge.kind == "still" else f"scene '{edge.name}'"
        upstream = self.store.lock.done(edge.key)
        if upstream is None:
            raise NotSent(f"needs {what}, which is not rendered")
        try:
            if edge.kind == "still":
                assert edge.pick is not None
                if edge.pick > len(upstream.images):
                    raise NotSent(f"needs candidate {edge.pick} of {what}, which made {len(upstream.images)}")
                image = upstream.images[edge.pick - 1]
                assert image.path is not None and image.sha256 is not None  # a done entry's files are verified
                local = _local_file(self.board_dir, image.path)
                if local.sha256 != image.sha256:
                    raise NotSent(f"{image.path} is not the candidate {what} made; `storyc pull` restores it")
                return local, image.sha256
            video = upstream.video
            assert video is not None and video.path is not None and video.sha256 is not None
            position: FramePosition = "last" if edge.kind == "last_frame_of" else "first"
            frames = contained(self.board_dir, FRAMES)  # never written through a .storyc/ link that leads out
            frame = stored_frame(video_target(self.board_dir, video.path), position, frames)
            if not frame.name.startswith(video.sha256.removeprefix("sha256:")):  # named by the video's bytes
                raise NotSent(f"{video.path} is not the video {what} rendered; `storyc pull` restores it")
            return _local_file(self.board_dir, str(frame.relative_to(self.board_dir))), video.sha256
        except (VideoError, LockError, OutsideTheBoard, OSError) as exc:
            raise NotSent(f"could not take the output of {what}: {exc}") from exc

    def _file_paths(self, job: Step, render: Render, count: int) -> tuple[str, ...]:
        """Where a request's files go beside the board: a scene's video, or a still's `count` candidates."""
        if isinstance(job, StillJob):
            return tuple(still_path(job.still, job.key, n) for n in range(1, count + 1))
        return (self._new_video_path(job, render),)

    def _new_video_path(self, job: Job, render: Render) -> str:
        """Where a request's video goes: the key's own file, or one of its own for another paid request."""
        if render.request_id is not None and self._is_other_request(job.key, render):
            return also_paid_video_path(job.scene, job.key, render.request_id)
        return video_path(job.scene, job.key)

    def _is_other_request(self, key: str, render: Render) -> bool:
        entry = self.store.lock.renders.get(key)
        return entry is not None and render.request_id in entry.also_paid

    # --- other requests paid for the same key -------------------------------------------------

    def _other_requests(self, job: Job, result: SceneResult, ctx: RunContext) -> SceneResult:
        """Every other request fal accepted for this key (two clones each paid for it, and a merge kept both):
        resumed and its video fetched, at no cost and never submitted again.  The entry stays the request
        that finished first; when the scene's own request failed or was lost, a finished other takes its place.
        """
        handled = {result.request_id}
        while True:  # the entry is read again each time: a request that settles can change which is its own
            entry = self.store.lock.renders.get(job.key)
            if entry is None or not entry.also_paid:
                return result
            waiting = [r for rid, r in entry.requests().items() if rid not in handled and self._unsettled(r)]
            if not waiting:
                break
            handled.add(waiting[0].request_id)
            self._settle_request(job, waiting[0], ctx)
        if result.state not in ("done", "cached") and entry.state == "done" and entry.video is not None:
            path = entry.video.path
            result = replace(result, state="done", request_id=entry.request_id, path=path, error=None)
        notes = [r.also_paid_note() for r in entry.also_paid.values()]
        return replace(result, notes=(*result.notes, *notes))

    def _unsettled(self, render: Render) -> bool:
        """Still to resume (submitted), or done but its video is not on disk here."""
        if render.state == "submitted":
            return True
        video = render.video if render.state == "done" else None
        return video is not None and (video.path is None or not (self.board_dir / video.path).exists())

    def _settle_request(self, job: Job, render: Render, ctx: RunContext) -> None:
        if render.state == "submitted":
            self._finish(job, render, ctx, spent=Decimal("0"), resumed=True)
            return
        try:
            self._record(job, self._download_again(job, render, ctx), request_id=render.request_id)
        except (Gone, Pending, LockError, OSError) as exc:
            self.notes.append(
                f"scene '{job.scene}': the video of request {render.request_id} (also paid) could not be fetched: {exc}"
            )

    def _upload_assets(self, files: Sequence[LocalFile], ctx: RunContext) -> dict[str, str]:
        """The URL of each file by its sha256: uploaded once per content (the lock's `uploads:`)."""
        urls: dict[str, str] = {}
        for local in files:
            if local.sha256 in urls:
                continue
            ctx.check()
            with self._guard:
                guard = self._key_locks.setdefault("upload:" + local.sha256, threading.Lock())
            with guard:  # scenes sharing an asset upload it once
                known = self.store.lock.uploads.get(local.sha256)
                if known is not None and known.fresh(now_utc(), self.settings.upload_ttl):
                    urls[local.sha256] = known.url
                    continue
                url = self.service.upload(local, ctx)
                try:
                    self.store.set_upload(local.sha256, Upload(url, now_utc()))
                except OSError as exc:  # only a cache of URLs: worth saying, not worth stopping for
                    self.notes.append(f"could not record the upload of {local.written} ({why_not_written(exc)})")
                urls[local.sha256] = url
        return urls

    # --- outcomes ---------------------------------------------------------------------------------

    def _record(self, job: Step, render: Render, *, request_id: str | None) -> bool:
        """Write one state to the lock; when that fails after fal accepted, say which request it was."""
        try:
            self.store.update(lambda lock: _with_request(lock, job.key, render))
        except OSError as exc:
            if request_id is not None:
                self.notes.append(
                    f"{step_words(job)}: fal accepted request {request_id} ({job.endpoint}) but the lock "
                    f"could not be written ({why_not_written(exc)}); keep this id: it is paid for"
                )
            return False
        return True

    def _restore(self, key: str, previous: Render | None) -> None:
        """Undo a write-ahead intent (the submit provably did not reach fal)."""

        def change(lock: Any) -> Any:
            renders = dict(lock.renders)
            if previous is None:
                renders.pop(key, None)
            else:
                renders[key] = previous
            return replace(lock, renders=renders)

        try:
            self.store.update(change)
        except OSError as exc:
            self.notes.append(f"could not clear a submit intent from the lock ({why_not_written(exc)})")

    def _not_sent(self, job: Step, message: str, field_path: Sequence[Any] = ()) -> SceneResult:
        error = f"{message}; nothing was paid"
        return SceneResult(step_label(job), job.key, "failed", error=error, location=_locate(job, field_path))

    def _unknown(self, job: Step, render: Render) -> SceneResult:
        when = f" at {render.sent_at:%Y-%m-%d %H:%M} UTC" if render.sent_at else ""
        which = f"--scene {job.scene}" if isinstance(job, Job) else f"--still {job.still}"
        adopt = f"if it is there, `storyc lock adopt {which} --request-id ID` resumes it; "
        error = (
            f"a submit sent{when} got no answer: fal may have accepted it ({money(job.cost_usd)}). "
            f"Look for it at https://fal.ai/dashboard/requests: {adopt}storyc will not send it again "
            "unless you run `storyc render --resend-unknown` (which may pay twice)"
        )
        return SceneResult(step_label(job), job.key, "unknown", error=error)

    def _still_submitted(self, job: Step, render: Render, spent: Decimal, why: str) -> SceneResult:
        error = f"{why}. It is paid for and stays submitted: `storyc render` again resumes it at no new cost"
        return SceneResult(step_label(job), job.key, "submitted", render.request_id, spent=spent, error=error)

    def _unrecorded_error(self, request_id: str) -> str:
        return f"fal accepted request {request_id}, but the lock could not be written: keep this id (see below)"

    def _lost_for_good(self, render: Render) -> bool:
        if render.sent_at is None:  # written by an earlier storyc, which did not record when
            return True
        return now_utc() - render.sent_at >= self.settings.lost_after

    def _cancel_submitted(self, results: Sequence[SceneResult]) -> None:
        """Best effort: a cancelled request stays `submitted` in the lock, so nothing is forgotten."""
        for result in results:
            if result.state == "submitted" and result.scene in self._submitted_now:
                endpoint, request_id = self._submitted_now[result.scene]
                try:
                    self.service.cancel(endpoint, request_id)
                    self.notes.append(f"{result.scene}: asked fal to cancel request {request_id}")
                except Exception as exc:  # any failure is reported, none stops the others
                    self.notes.append(f"{result.scene}: could not cancel request {request_id}: {exc}")


class AdoptError(StorycError):
    """A request id can't be adopted for a scene (already rendered, unknown to fal, ...)."""


def adopt(store: LockStore, service: RenderService, team: TeamLayer | None, job: Step, request_id: str) -> str:
    """Record that fal accepted `request_id` for `job`, a scene or a still (found on fal's dashboard):
    `submitted`, resumable.

    For a submit whose answer was lost (`unknown`): instead of re-sending it (paying twice if
    fal had it), the user names the request fal shows, and the next render resumes it.  fal is
    asked first that it knows the request on this endpoint; what fal says of it is returned.
    Raises AdoptError, and writes nothing, when the scene needs no adopting or fal does not know it.
    """
    previous = store.lock.renders.get(job.key)
    if previous is not None and previous.state in ("done", "submitted"):
        held = "is rendered" if previous.state == "done" else f"is already submitted as request {previous.request_id}"
        raise AdoptError(f"{step_words(job)} {held}: nothing to adopt")
    open_claim = _check_team_allows(team, job, request_id)
    service.check_credentials()
    try:
        status = service.probe(job.endpoint, request_id)
    except Gone as exc:
        raise AdoptError(
            f"fal does not know request {request_id} on {job.endpoint} ({exc}): check the id, and the profile "
            "(each profile has its own endpoint); nothing was recorded"
        ) from exc
    except (JobFailed, Pending) as exc:
        raise AdoptError(f"request {request_id} can't be adopted: {exc}; nothing was recorded") from exc
    sent_at = previous.sent_at if previous is not None and previous.sent_at else now_utc()
    render = replace(_entry(job, "submitted"), request_id=request_id, sent_at=sent_at)
    store.set_render(job.key, render)
    if team is not None and open_claim is not None:  # every clone resumes it now, not only this one
        team.accepted(open_claim, request_id, job.endpoint)
    return status


def _check_team_allows(team: TeamLayer | None, job: Step, request_id: str) -> ClaimInfo | None:
    """Another clone may have finished the key, or recorded its own request for it: then adopting is wrong.

    The key's claim that has no request id yet (its submit's answer was lost): the one to mark submitted.
    """
    if team is None:
        return None
    from storyc.team.store import DoneRecord

    found = team.store.lookup(job.key)
    if isinstance(found, DoneRecord):
        raise AdoptError(f"{step_words(job)} is done in the team store: `storyc render` takes it from there at $0")
    if found is not None and found.request_id not in (None, request_id) and not found.released:
        raise AdoptError(
            f"the team store records request {found.request_id} for {step_words(job)} ({found.owner}); "
            f"`storyc render` resumes that one"
        )
    return found if found is not None and found.request_id is None else None


def plan_paid(
    storyboard: str,
    steps: Steps,
    lock: Lock,
    team: TeamLayer | None,
    backend: str = "fal",
    *,
    resend_unknown: bool = False,
) -> Plan:
    """The plan of a paid render: the lock first, then the team store for the keys the lock lacks."""
    in_store: set[str] = set()
    if team is not None:  # one listing of the store's records
        in_store = team.done_keys([j.key for j in steps.steps if lock.done(j.key) is None])
    return plan_with_lock(
        storyboard,
        steps.steps,
        lock,
        backend,
        resend_unknown=resend_unknown,
        in_store=in_store,
        needed_by=steps.needed_by,
    )


def _with_request(lock: Lock, key: str, render: Render) -> Lock:
    """The lock with one request's new state recorded under `key` (the key's other paid requests kept), then
    settled: a failed own request gives way to a pending other one, so the next plan resumes that one
    instead of paying again."""
    entry = lock.renders.get(key)
    updated = render if entry is None else entry.with_request(render)
    if updated.also_paid:
        updated = settle(key, updated)
    return replace(lock, renders={**lock.renders, key: updated})


def _others_pending(render: Render | None) -> bool:
    return render is not None and any(r.state == "submitted" for r in render.also_paid.values())


def _shared(item: PlanItem, first: SceneResult) -> SceneResult:
    """A scene whose request another scene of this run already carried out: same outcome, no new cost."""
    state = "cached" if first.state == "done" else first.state
    note = f"same request as scene '{first.scene}': rendered once for both"
    return replace(first, scene=item.scene, state=state, spent=Decimal("0"), notes=(*first.notes, note))


FRAMES = ".storyc/frames"  # frames taken from renders, by the video's sha256 (`storyc.media.video.stored_frame`)


def _entry(job: Step, state: RenderState) -> Render:
    """A new lock entry for `job`: a scene's (with its seconds) or a still's."""
    if isinstance(job, StillJob):
        return Render("", job.endpoint, state, 0, job.cost_usd, still=job.still)
    return Render(job.scene, job.endpoint, state, job.seconds, job.cost_usd)


def _files_of(render: Render) -> tuple[Video, ...]:
    """The files a done render made: its video, or a still's candidates."""
    return (render.video,) if render.video is not None else render.images


def _image_paths(render: Render) -> tuple[str, ...]:
    return tuple(image.path for image in render.images if image.path is not None)


def _local_file(board_dir: Path, relative: str) -> LocalFile:
    """A file storyc made (a candidate, a frame) as an upload sees a board's asset: its type from its bytes."""
    from storyc.compile.assets import image_content_type, sha256_file

    path = board_dir / relative
    stat = path.stat()
    with path.open("rb") as f:
        content_type = image_content_type(f.read(16)) or "application/octet-stream"
    return LocalFile(relative, path.resolve(), sha256_file(path), stat.st_size, stat.st_mtime_ns, "image", content_type)


def _sent_ago(render: Render) -> str:
    if render.sent_at is None:
        return "sent earlier"
    minutes = int((now_utc() - render.sent_at).total_seconds() // 60)
    return f"sent {minutes} min ago" if minutes else "sent less than a minute ago"


def _locate(job: Step, field_path: Sequence[Any]) -> tuple[int, int] | None:
    """The YAML line:col of the field fal complained about (or of the scene; a still: none)."""
    if isinstance(job, StillJob):
        return None
    locations = job.view.locations
    parts = [str(p) for p in field_path]
    for n in range(len(parts), 0, -1):
        found = locations.get(".".join(parts[:n]))
        if found:
            return found
    return locations.get("scene")
