"""The fal backend: upload assets, submit to the queue, wait politely, download, record each step.

Every step that costs or proves money is written to the lock file the moment it
happens: the request id as `submitted` as soon as fal accepts it (before any
waiting), the video URL when the result arrives, `done` once the file is on disk
and verified.  So a kill at any point resumes by request id and never pays twice.

fal is reached only through `fal_client` (its own environment: FAL_KEY,
FAL_QUEUE_RUN_HOST...).  fal_client already retries 429s and dropped
connections itself; storyc adds a bounded retry with backoff and jitter on top
for what it can safely repeat (status, result, download, upload, and a submit
that the server answered with an error, so was not accepted).  A submit that
timed out after being sent is never repeated by storyc, and if fal_client
re-sent one, the summary says a duplicate job is possible.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from storyc.compiler import Job
from storyc.download import DownloadError, fetch, new_client
from storyc.lock import LockStore, Render, Upload, Video, now_utc, video_path
from storyc.plan import Plan, PlanItem, plan_with_lock
from storyc.render import Interrupted, RenderError, RunContext, SceneResult

if TYPE_CHECKING:
    import fal_client
    import httpx

T = TypeVar("T")


@dataclass(frozen=True)
class Polling:
    """Status polling: start near 1 s, back off to 10 s, start over when the job changes state."""

    first: float = 1.0
    factor: float = 1.25
    ceiling: float = 10.0


@dataclass(frozen=True)
class Retrying:
    """storyc's own bounded retries, on top of fal_client's: exponential backoff with jitter."""

    attempts: int = 4
    first_wait: float = 1.0
    max_wait: float = 20.0


@dataclass(frozen=True)
class FalSettings:
    polling: Polling = field(default_factory=Polling)
    retrying: Retrying = field(default_factory=Retrying)
    upload_ttl: timedelta = timedelta(hours=24)
    cancel_on_interrupt: bool = False


class _Transient(Exception):
    """A failure worth retrying (429, 5xx, a dropped connection on an idempotent call)."""


class _Failed(Exception):
    """This scene failed for good: fal refused it, the job failed, or retries ran out."""

    def __init__(self, message: str, field_path: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.field_path = tuple(field_path)


class _DownloadFailed(_Failed):
    """The job finished and is paid for, but its video could not be fetched: keep it resumable."""


class _Lost(Exception):
    """fal no longer has the result of this request."""


class FalBackend:
    name = "fal"
    paid = True

    def __init__(self, board_dir: Path, store: LockStore, settings: FalSettings | None = None) -> None:
        self.board_dir = board_dir
        self.store = store
        self.settings = settings or FalSettings()
        self._client: fal_client.SyncClient | None = None
        self._downloads: httpx.Client | None = None
        self._setup = threading.Lock()
        self._upload_locks: dict[str, threading.Lock] = {}
        self._attempts = threading.local()  # POSTs fal_client made for this thread's current submit
        self._submitted_now: dict[str, tuple[str, str]] = {}  # scene -> (endpoint, request id), this run
        self.notes: list[str] = []  # for the summary, about the run as a whole

    # --- Backend protocol -------------------------------------------------------------

    def plan(self, storyboard: str, jobs: Sequence[Job]) -> Plan:
        return plan_with_lock(storyboard, jobs, self.store.lock, self.name)

    def prepare(self, plan: Plan) -> None:
        """Refuse before anything is sent when fal would need a key and there is none."""
        if not any(i.action in ("render", "resume") for i in plan.items):
            return
        from fal_client.auth import MissingCredentialsError, fetch_auth_credentials

        try:
            fetch_auth_credentials()
        except MissingCredentialsError:
            raise RenderError(
                "no fal API key: set FAL_KEY (get one at https://fal.ai/dashboard/keys); nothing was sent"
            ) from None

    def run(self, item: PlanItem, ctx: RunContext) -> SceneResult:
        job = item.job
        try:
            if item.action == "cached":
                return self._ensure_local(item, ctx)
            if item.action == "resume":
                assert item.previous is not None and item.previous.request_id is not None
                return self._finish(job, item.previous, ctx, resumed=True)
            return self._render(job, ctx)
        except _Failed as exc:
            return self._record_failure(job, str(exc), exc.field_path)

    def finish(self, results: Sequence[SceneResult], interrupted: bool) -> None:
        try:
            if interrupted and self.settings.cancel_on_interrupt:
                self._cancel_submitted(results)
        finally:
            self.close()

    def close(self) -> None:
        """Close the HTTP connections this backend opened (fal_client leaves its client open)."""
        with self._setup:
            if self._downloads is not None:
                self._downloads.close()
                self._downloads = None
            if self._client is not None and "_client" in self._client.__dict__:
                self._client._client.close()  # the cached httpx client of fal_client.SyncClient
            self._client = None

    # --- one scene -----------------------------------------------------------------------

    def _render(self, job: Job, ctx: RunContext) -> SceneResult:
        ctx.progress.update(job.scene, "uploading" if job.files else "submitting")
        urls = self._upload_assets(job, ctx)
        ctx.check()
        ctx.progress.update(job.scene, "submitting")
        request_id, notes = self._submit(job, job.arguments_with(lambda f: urls[f.sha256]))
        render = Render(
            scene=job.scene,
            endpoint=job.endpoint,
            state="submitted",
            seconds=job.seconds,
            cost_usd=job.cost_usd,
            request_id=request_id,
        )
        self.store.set_render(job.key, render)  # before any waiting: a kill from here on resumes
        self._submitted_now[job.scene] = (job.endpoint, request_id)
        result = self._finish(job, render, ctx, resumed=False)
        return replace(result, notes=(*notes, *result.notes))

    def _finish(self, job: Job, render: Render, ctx: RunContext, *, resumed: bool) -> SceneResult:
        """From an accepted request to a verified file on disk."""
        assert render.request_id is not None
        spent = Decimal("0") if resumed else job.cost_usd
        try:
            if render.video is None:
                video = self._wait_for_result(job, render.request_id, ctx, resumed=resumed)
                render = replace(render, video=video)
                self.store.set_render(job.key, render)  # the URL is known: only the download is left
            done = self._download(job, render, ctx)
        except Interrupted:
            return SceneResult(job.scene, job.key, "submitted", render.request_id, spent=spent)
        except _Lost as exc:
            self.store.set_render(job.key, replace(render, state="lost", error=str(exc)))
            return SceneResult(job.scene, job.key, "lost", render.request_id, error=str(exc))
        except _DownloadFailed as exc:  # paid and finished: keep it resumable
            ctx.progress.update(job.scene, "download failed", str(exc))
            return SceneResult(job.scene, job.key, "submitted", render.request_id, spent=spent, error=str(exc))
        except _Failed as exc:
            failed = self._record_failure(job, str(exc), exc.field_path, render)
            return replace(failed, request_id=render.request_id)
        self.store.set_render(job.key, done)
        path = done.video.path if done.video else None
        ctx.progress.update(job.scene, "done", path or "")
        return SceneResult(job.scene, job.key, "done", render.request_id, path=path, spent=spent)

    def _ensure_local(self, item: PlanItem, ctx: RunContext) -> SceneResult:
        """A cached scene: nothing to pay; fetch the file again (free) if it went missing."""
        render = item.previous
        assert render is not None and render.video is not None
        path = render.video.path
        target = self.board_dir / path if path else None
        if target is not None and not target.exists():
            try:
                render = self._download(item.job, render, ctx)
            except (_Failed, _Lost) as exc:
                error = f"the local file {path} is missing and could not be fetched again: {exc}"
                return SceneResult(item.scene, item.job.key, "cached", render.request_id, path=path, error=error)
            self.store.set_render(item.job.key, render)
        ctx.progress.update(item.scene, "cached", path or "")
        return SceneResult(item.scene, item.job.key, "cached", render.request_id, path=path)

    def _record_failure(
        self, job: Job, message: str, field_path: Sequence[Any] = (), render: Render | None = None
    ) -> SceneResult:
        base = render or Render(job.scene, job.endpoint, "failed", job.seconds, job.cost_usd)
        self.store.set_render(job.key, replace(base, state="failed", error=message))
        return SceneResult(job.scene, job.key, "failed", error=message, location=_locate(job, field_path))

    # --- fal_client --------------------------------------------------------------------

    def _fal(self) -> fal_client.SyncClient:
        with self._setup:
            if self._client is None:
                import fal_client

                client = fal_client.SyncClient()
                # fal_client re-sends a POST whose response was lost; count them to warn of duplicates.
                http = client._client  # fal_client has no public hook for this
                http.event_hooks = {**http.event_hooks, "request": [*http.event_hooks["request"], self._count_post]}
                self._client = client
            return self._client

    def _count_post(self, request: httpx.Request) -> None:
        if request.method == "POST":
            self._attempts.count = getattr(self._attempts, "count", 0) + 1

    def _upload_assets(self, job: Job, ctx: RunContext) -> dict[str, str]:
        urls: dict[str, str] = {}
        for local in job.files.values():
            if local.sha256 not in urls:
                ctx.check()
                urls[local.sha256] = self._upload(local.sha256, local.path, local.written)
        return urls

    def _upload(self, digest: str, path: Path, written: str) -> str:
        with self._setup:
            guard = self._upload_locks.setdefault(digest, threading.Lock())
        with guard:  # scenes sharing an asset upload it once
            known = self.store.lock.uploads.get(digest)
            if known is not None and known.fresh(now_utc(), self.settings.upload_ttl):
                return known.url
            client = self._fal()
            try:
                url = self._retry(lambda: _classify_errors(lambda: client.upload_file(path)), f"uploading {written}")
            except _Failed as exc:
                raise _Failed(f"could not upload {written}: {exc}") from exc
            self.store.set_upload(digest, Upload(url, now_utc()))
            return url

    def _submit(self, job: Job, arguments: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
        """Submit once; retried only when fal answered with an error (so did not accept it)."""
        import httpx

        client = self._fal()
        notes: list[str] = []

        def attempt() -> str:
            self._attempts.count = 0
            try:
                handle = _classify_errors(lambda: client.submit(job.endpoint, arguments=arguments), submit=True)
            except (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError) as exc:
                raise _Failed(
                    f"the submit got no answer ({type(exc).__name__}); fal may have accepted it. storyc does not "
                    "send it again by itself, to avoid paying twice: check https://fal.ai/dashboard/requests, "
                    "then run render again if it is not there"
                ) from exc
            finally:
                if getattr(self._attempts, "count", 0) > 1:
                    notes.append(
                        f"fal_client sent this submit {self._attempts.count} times after timeouts or dropped "
                        "connections; fal may have accepted more than one (a possible duplicate charge: "
                        "check https://fal.ai/dashboard/requests)"
                    )
            return handle.request_id

        return self._retry(attempt, "submitting"), tuple(notes)

    def _wait_for_result(self, job: Job, request_id: str, ctx: RunContext, *, resumed: bool) -> Video:
        import fal_client

        client = self._fal()
        handle = client.get_handle(job.endpoint, request_id)
        polling = self.settings.polling
        interval = 0.0 if resumed else polling.first  # a resumed job may have finished long ago
        last: tuple[str, int | None] | None = None
        while True:
            ctx.sleep(interval)
            status = self._retry(lambda: _classify_errors(lambda: handle.status(with_logs=False)), "checking status")
            seen = _describe(status)
            if seen != last:
                ctx.progress.update(job.scene, *_progress_words(seen))
            if isinstance(status, fal_client.Completed):
                break
            moved = last is not None and seen[0] != last[0]  # queued -> running: it may end soon
            interval = polling.first if moved else min(max(interval, polling.first) * polling.factor, polling.ceiling)
            last = seen
        ctx.progress.update(job.scene, "fetching")
        fetch_result = lambda: _classify_errors(lambda: _get_json(client, handle.response_url))  # noqa: E731
        if status.error:  # a failed job: its result replays the model's error, once is enough
            try:
                body = fetch_result()
            except _Transient:
                raise _Failed(f"the job failed on fal: {status.error} ({status.error_type or 'no type'})") from None
        else:
            body = self._retry(fetch_result, "fetching the result")
        return _video_of(body, status)

    def _download(self, job: Job, render: Render, ctx: RunContext) -> Render:
        assert render.video is not None
        relative = render.video.path or video_path(job.scene, job.key)
        with self._setup:
            if self._downloads is None:
                self._downloads = new_client()
            client = self._downloads
        ctx.progress.update(job.scene, "downloading")

        def attempt() -> Render:
            try:
                got = fetch(
                    client,
                    render.video.url,  # type: ignore[union-attr]
                    self.board_dir / relative,
                    expected_size=render.video.bytes,  # type: ignore[union-attr]
                    expected_sha256=render.video.sha256,  # type: ignore[union-attr]
                    check_stop=ctx.check,
                )
            except DownloadError as exc:
                if exc.gone:
                    raise _Lost(f"{exc}; fal no longer keeps this video") from exc
                if exc.retryable:
                    raise _Transient(str(exc)) from exc
                raise _Failed(str(exc)) from exc
            video = replace(render.video, bytes=got.size, sha256=got.sha256, path=relative)  # type: ignore[type-var]
            return replace(render, state="done", video=video, error=None)

        try:
            return self._retry(attempt, "downloading")
        except _Failed as exc:
            raise _DownloadFailed(f"{exc} (paid for: `storyc render` again retries the download)") from exc

    def _retry(self, call: Callable[[], T], doing: str) -> T:
        from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

        policy = self.settings.retrying
        try:
            for attempt in Retrying(
                retry=retry_if_exception_type(_Transient),
                stop=stop_after_attempt(policy.attempts),
                wait=wait_random_exponential(multiplier=policy.first_wait, max=policy.max_wait),
            ):
                with attempt:
                    return call()
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise _Failed(f"{doing} failed {policy.attempts} times; last: {last}") from last
        raise AssertionError("unreachable")  # pragma: no cover

    def _cancel_submitted(self, results: Sequence[SceneResult]) -> None:
        """Best effort: a cancelled request stays `submitted` in the lock, so nothing is forgotten."""
        client = self._fal()
        for result in results:
            if result.state == "submitted" and result.scene in self._submitted_now:
                endpoint, request_id = self._submitted_now[result.scene]
                try:
                    client.cancel(endpoint, request_id)
                    self.notes.append(f"{result.scene}: asked fal to cancel request {request_id}")
                except Exception as exc:  # any failure is reported, none stops the others
                    self.notes.append(f"{result.scene}: could not cancel request {request_id}: {exc}")


# --- fal's answers, in storyc's terms -------------------------------------------------------


def _classify_errors(call: Callable[[], T], *, submit: bool = False) -> T:
    """Map fal_client's exceptions: retryable ones to _Transient, the rest to _Failed/_Lost."""
    import fal_client
    import httpx

    try:
        return call()
    except fal_client.client.FalClientHTTPError as exc:
        code = exc.status_code
        if code in (404, 410) and not submit:
            raise _Lost(
                f"fal no longer has this request's result (HTTP {code}; fal keeps results about an hour). "
                "Rendering it again is a new charge: run `storyc render` again to be asked"
            ) from exc
        if code == 429 or code >= 500:
            raise _Transient(f"HTTP {code}: {_message(exc.message)}") from exc
        raise _refusal(code, exc.message) from exc
    except httpx.HTTPStatusError as exc:  # fal_client's CDN token call raises these
        code = exc.response.status_code
        if code == 429 or code >= 500:
            raise _Transient(f"HTTP {code} from fal storage") from exc
        raise _Failed(f"fal storage refused the upload (HTTP {code})") from exc
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # never reached fal: safe to repeat
        raise _Transient(f"could not connect to fal ({exc})") from exc
    except httpx.TransportError as exc:
        if submit:
            raise  # sent, maybe accepted: the caller decides
        raise _Transient(f"connection problem ({type(exc).__name__}: {exc})") from exc


def _refusal(code: int, detail: Any) -> _Failed:
    if code in (401, 403):
        return _Failed(f"fal refused the API key (HTTP {code}); check FAL_KEY")
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        loc = [p for p in first.get("loc", []) if p != "body"]
        return _Failed(f"fal refused the request (HTTP {code}): {_message(detail)}", loc)
    return _Failed(f"fal refused the request (HTTP {code}): {_message(detail)}")


def _message(detail: Any) -> str:
    """fal's `detail`: a string, or a list of {loc, msg, type} (FastAPI style)."""
    if isinstance(detail, list):
        parts = []
        for entry in detail:
            if isinstance(entry, dict):
                where = ".".join(str(p) for p in entry.get("loc", []) if p != "body")
                parts.append(f"{where}: {entry.get('msg', entry)}" if where else str(entry.get("msg", entry)))
            else:
                parts.append(str(entry))
        return "; ".join(parts)
    return str(detail)


def _get_json(client: fal_client.SyncClient, url: str) -> Any:
    """GET the result directly: `handle.get()` would poll status once more for every job."""
    from fal_client.client import _raise_for_status

    response = client._client.get(url)  # the authenticated client fal_client itself uses
    _raise_for_status(response)
    return response.json()


def _video_of(body: Any, status: Any) -> Video:
    video = body.get("video") if isinstance(body, dict) else None
    if not isinstance(video, dict) or not isinstance(video.get("url"), str):
        error = getattr(status, "error", None)
        raise _Failed(f"fal finished without a video{': ' + error if error else ''}")
    size = video.get("file_size")
    return Video(url=video["url"], bytes=size if isinstance(size, int) else None)


def _describe(status: Any) -> tuple[str, int | None]:
    import fal_client

    if isinstance(status, fal_client.Queued):
        return ("queued", status.position)
    if isinstance(status, fal_client.InProgress):
        return ("running", None)
    return ("completed", None)


def _progress_words(seen: tuple[str, int | None]) -> tuple[str, str]:
    state, position = seen
    if state == "queued":
        return ("queued", f"position {position + 1}" if position is not None else "")
    return (state, "")


def _locate(job: Job, field_path: Sequence[Any]) -> tuple[int, int] | None:
    """The YAML line:col of the field fal complained about (or of the scene)."""
    locations: dict[str, list[int]] = job.view.get("locations", {})
    parts = [str(p) for p in field_path]
    for n in range(len(parts), 0, -1):
        found = locations.get(".".join(parts[:n]))
        if found:
            return (found[0], found[1])
    scene = locations.get("scene")
    return (scene[0], scene[1]) if scene else None
