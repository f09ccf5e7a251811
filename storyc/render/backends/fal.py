"""The fal service: upload assets, submit to the queue, wait politely, download. Nothing else.

It never touches the lock: `storyc.render.ledger` stands in front of it, decides what
to send and records each step before the next network call.  What this module
owns is how fal's answers map to storyc's (`storyc.render.backends.base`), so the
ledger knows when a request may have been paid for:

- A submit is ONE POST, made through fal_client's own authenticated HTTP
  client but without fal_client's retry loop, which re-sends a POST whose
  answer was lost (a possible duplicate charge, fal-facts 1.8).  fal's answer
  is read by what it proves:
    2xx with a request id       accepted
    429, no connection made     not accepted: sent again (`Retrying.attempts` in all)
    408                         not accepted (fal timed out reading it): sent again once
    400-499 but 408/409/429     refused for good (`Refused`): not accepted, nothing paid
    409, 5xx, anything else     `NoAnswer`: a conflict, an error or a dropped answer does
                                not prove fal did not take it, so it is never sent again
  fal_client itself retries 408, 409 and 429 on every call; for a paid POST
  only what proves "not accepted" may be repeated.
- Status, result and download are ONE request per attempt, and storyc's
  `Retrying` is the one policy around them: what fal_client would retry
  (408, 409, 429, dropped connections), and every 5xx, is tried
  `Retrying.attempts` times in all (4) with backoff and jitter.  So a status
  check that keeps failing costs at most 4 GETs (not fal_client's 10 inside
  each of storyc's 4, i.e. 40) before the job is `Pending`: it stays
  submitted, never failed, and the next render resumes it by id.  Uploads
  go through `fal_client.upload_file`, which keeps its own retries inside
  storyc's (nothing is paid for an upload).

fal is reached only through `fal_client` and its environment (FAL_KEY,
FAL_QUEUE_RUN_HOST...).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar

from storyc.compile.assets import LocalFile
from storyc.files import read_regular
from storyc.render.backends.base import (
    Fetched,
    Gone,
    JobFailed,
    NoAnswer,
    NotSent,
    Pending,
    Refused,
    RemoteVideo,
    ServiceAnswer,
)
from storyc.render.download import DownloadError, fetch, new_client
from storyc.render.run import RenderError, RunContext

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
    """storyc's own bounded retries of what is safe to repeat: exponential backoff with jitter.

    The one policy for status, result and download (each attempt is one request, fal_client's own
    retry loop is not used for them), and for re-sending a submit fal proved it did not take.
    """

    attempts: int = 4  # a status check that keeps failing costs at most this many GETs
    first_wait: float = 1.0
    max_wait: float = 20.0


@dataclass(frozen=True)
class FalSettings:
    polling: Polling = field(default_factory=Polling)
    retrying: Retrying = field(default_factory=Retrying)


class _Transient(Exception):
    """A failure worth retrying (429, 5xx, a dropped connection on an idempotent call)."""


class FalService:
    name = "fal"

    def __init__(self, settings: FalSettings | None = None) -> None:
        self.settings = settings or FalSettings()
        self._client: fal_client.SyncClient | None = None
        self._downloads: httpx.Client | None = None
        self._setup = threading.Lock()

    def check_credentials(self) -> None:
        from fal_client.auth import MissingCredentialsError, fetch_auth_credentials

        try:
            fetch_auth_credentials()
        except MissingCredentialsError:
            raise RenderError(
                "no fal API key: set FAL_KEY (get one at https://fal.ai/dashboard/keys); nothing was sent"
            ) from None

    def close(self) -> None:
        """Close the HTTP connections this service opened (fal_client leaves its client open)."""
        with self._setup:
            if self._downloads is not None:
                self._downloads.close()
                self._downloads = None
            if self._client is not None and "_client" in self._client.__dict__:
                self._client._client.close()  # the cached httpx client of fal_client.SyncClient
            self._client = None

    def _fal(self) -> fal_client.SyncClient:
        with self._setup:
            if self._client is None:
                import fal_client

                self._client = fal_client.SyncClient()
            return self._client

    # --- upload and submit: nothing is paid until fal accepts ----------------------------

    def upload(self, local: LocalFile, ctx: RunContext) -> str:
        client = self._fal()

        def send() -> str:
            if local.media == "video":  # up to 200 MB: fal_client streams it in parts past 100 MB
                return client.upload_file(local.path)
            # fal_client would guess the type from the name; an image's is known from its bytes (at most 10 MB)
            data = read_regular(local.path)
            return client.upload(data, local.content_type, file_name=local.upload_name)

        try:
            url: str = self._retry(lambda: _classify(send), f"uploading {local.written}")
        except (JobFailed, Pending, Gone) as exc:
            raise NotSent(f"could not upload {local.written}: {exc}") from exc
        return url

    def submit(self, endpoint: str, arguments: dict[str, Any], ctx: RunContext) -> str:
        timeouts = 0

        def attempt() -> str:
            nonlocal timeouts
            ctx.check()
            try:
                return self._post_once(endpoint, arguments)
            except _TimedOut as exc:  # proves fal did not take it, but a second one says: not now
                timeouts += 1
                if timeouts > 1:
                    raise NotSent(f"fal timed out reading the request twice ({exc})") from exc
                raise _NotYet(str(exc)) from exc

        # Only what proves fal did not take it is repeated; running out of tries leaves nothing paid.
        return self._retry(attempt, "sending the request", on=_NotYet, give_up=NotSent)

    def _post_once(self, endpoint: str, arguments: dict[str, Any]) -> str:
        """One POST to the queue; no retry inside (see the module docstring)."""
        import fal_client.client as fc
        import httpx
        from fal_client._headers import add_fal_app_context_headers

        client = self._fal()
        headers: dict[str, str] = {}
        add_fal_app_context_headers(headers)
        try:
            response = client._client.post(  # fal_client's authenticated client, without its retry loop
                fc.QUEUE_URL_FORMAT + endpoint, json=arguments, headers=headers, timeout=client.default_timeout
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # no connection: nothing was sent
            raise _NotYet(f"could not connect to fal ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise NoAnswer(_no_answer(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)) from exc
        code = response.status_code
        if code == 429:
            raise _NotYet("fal is rate limiting (HTTP 429)")
        if code == 408:
            raise _TimedOut("HTTP 408")
        if not 200 <= code < 300:
            try:
                fc._raise_for_status(response)
            except fc.FalClientHTTPError as exc:
                if code == 409:  # a conflict may be with the very job fal took: its words may say which
                    raise NoAnswer(_no_answer(f"HTTP 409: {_message(exc.message)}")) from exc
                if not 400 <= code < 500:
                    raise NoAnswer(_no_answer(f"HTTP {code}")) from exc
                failure = _refusal(exc.status_code, exc.message)
                raise Refused(str(failure), failure.field_path) from exc
        try:
            request_id = response.json()["request_id"]
        except (ValueError, KeyError, TypeError) as exc:
            raise NoAnswer(_no_answer(f"HTTP {code} without a request id")) from exc
        if not isinstance(request_id, str) or not request_id:
            raise NoAnswer(_no_answer(f"HTTP {code} without a request id"))
        return request_id

    # --- waiting for an accepted job ----------------------------------------------------------

    def wait(self, endpoint: str, request_id: str, ctx: RunContext, *, resumed: bool) -> RemoteVideo:
        body, status = self._result(endpoint, request_id, ctx, resumed=resumed)
        return _video_of(body, status)

    def wait_images(self, endpoint: str, request_id: str, ctx: RunContext, *, resumed: bool) -> tuple[RemoteVideo, ...]:
        body, status = self._result(endpoint, request_id, ctx, resumed=resumed)
        return _images_of(body, status)

    def _result(self, endpoint: str, request_id: str, ctx: RunContext, *, resumed: bool) -> tuple[Any, Any]:
        """Poll until the job completes, then its result's body and its final status."""
        import fal_client

        client = self._fal()
        handle = client.get_handle(endpoint, request_id)
        polling = self.settings.polling
        interval = 0.0 if resumed else polling.first  # a resumed job may have finished long ago
        last: tuple[str, int | None] | None = None
        scene = ctx.label
        while True:
            ctx.sleep(interval)
            status = self._status(handle, request_id)
            seen = _describe(status)
            if seen != last:
                ctx.progress.update(scene, *_progress_words(seen))
            if isinstance(status, fal_client.Completed):
                break
            moved = last is not None and seen[0] != last[0]  # queued -> running: it may end soon
            interval = polling.first if moved else min(max(interval, polling.first) * polling.factor, polling.ceiling)
            last = seen
        ctx.progress.update(scene, "fetching")

        def fetch_result() -> Any:
            return _classify(lambda: _get_json(client, handle.response_url))

        if status.error:  # a failed job: its result replays the model's error, once is enough
            try:
                body = fetch_result()
            except (_Transient, Pending, Gone):
                raise JobFailed(f"the job failed on fal: {status.error} ({status.error_type or 'no type'})") from None
        else:
            body = self._retry(fetch_result, "fetching the result")
        return body, status

    def probe(self, endpoint: str, request_id: str) -> str:
        handle = self._fal().get_handle(endpoint, request_id)
        return _describe(self._status(handle, request_id))[0]

    def _status(self, handle: Any, request_id: str) -> Any:
        client = self._fal()

        def poll() -> Any:
            try:
                return _classify(lambda: _get_status(client, handle))
            except ValueError as exc:  # fal_client's "Unknown status: X"
                word = str(exc).removeprefix("Unknown status: ").strip()
                if word.upper() in ("CANCELLED", "CANCELED"):
                    raise JobFailed(f"fal reports request {request_id} as {word}: it was cancelled") from exc
                raise Pending(f"fal reported an unexpected status {word!r} for request {request_id}") from exc
            except KeyError as exc:  # a status body without the fields fal_client needs
                raise _Transient(f"fal's status answer lacked {exc}") from exc

        return self._retry(poll, "checking status")

    # --- downloading ---------------------------------------------------------------------------

    def download(self, video: RemoteVideo, target: Path, ctx: RunContext, *, sha256: str | None = None) -> Fetched:
        with self._setup:
            if self._downloads is None:
                self._downloads = new_client()
            client = self._downloads
        ctx.progress.update(ctx.label, "downloading")

        def attempt() -> Fetched:
            try:
                got = fetch(
                    client, video.url, target, expected_size=video.bytes, expected_sha256=sha256, check_stop=ctx.check
                )
            except DownloadError as exc:
                if exc.gone:
                    raise Gone(f"{exc}; fal no longer keeps this video") from exc
                if exc.retryable:
                    raise _Transient(str(exc)) from exc
                raise Pending(str(exc)) from exc
            return Fetched(got.size, got.sha256)

        return self._retry(attempt, "downloading")

    def cancel(self, endpoint: str, request_id: str) -> None:
        try:
            self._fal().cancel(endpoint, request_id)
        except Exception as exc:  # fal's words, which may echo the key: an answer scrubs them
            raise Pending(f"{type(exc).__name__}: {_message(getattr(exc, 'message', exc))}") from exc

    def _retry(
        self,
        call: Callable[[], T],
        doing: str,
        *,
        on: type[Exception] | None = None,
        give_up: type[ServiceAnswer] = Pending,
    ) -> T:
        """Repeat what is safe to repeat (`on`, default _Transient) with backoff and jitter, a bounded
        number of times; then `give_up`: by default the job is `Pending`, never failed."""
        from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

        policy = self.settings.retrying
        try:
            for attempt in Retrying(
                retry=retry_if_exception_type(on or _Transient),
                stop=stop_after_attempt(policy.attempts),
                wait=wait_random_exponential(multiplier=policy.first_wait, max=policy.max_wait),
            ):
                with attempt:
                    return call()
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise give_up(f"{doing} failed {policy.attempts} times; last: {last}") from last
        raise AssertionError("unreachable")  # pragma: no cover


class _NotYet(Exception):
    """fal proved it did not take the submit (429, no connection): safe to send again."""


class _TimedOut(Exception):
    """fal answered the submit 408: it timed out reading the request, so it did not take it."""


def _no_answer(what: str) -> str:
    return (
        f"the submit got no usable answer ({what}); fal may have accepted it. storyc does not send it again "
        "by itself, to avoid paying twice: look for it at https://fal.ai/dashboard/requests"
    )


# --- fal's answers, in storyc's terms -------------------------------------------------------


def _classify(call: Callable[[], T]) -> T:
    """For calls safe to repeat (status, result, upload): fal_client's exceptions in storyc's terms."""
    import fal_client
    import httpx

    try:
        return call()
    except fal_client.client.FalClientHTTPError as exc:
        code = exc.status_code
        if code in (404, 410):
            raise Gone(f"fal does not know this request (HTTP {code})") from exc
        if code in (408, 409, 429) or code >= 500:  # what fal_client itself would retry, and every 5xx
            raise _Transient(f"HTTP {code}: {_message(exc.message)}") from exc
        if code in (401, 403):  # an accepted job is still paid for: it stays resumable with a good key
            raise Pending(f"fal refused the API key (HTTP {code}); check FAL_KEY") from exc
        raise _refusal(code, exc.message) from exc
    except httpx.HTTPStatusError as exc:  # fal_client's CDN token call raises these
        code = exc.response.status_code
        if code == 429 or code >= 500:
            raise _Transient(f"HTTP {code} from fal storage") from exc
        raise JobFailed(f"fal storage refused the upload (HTTP {code})") from exc
    except httpx.TransportError as exc:
        raise _Transient(f"connection problem ({type(exc).__name__}: {exc})") from exc


def _refusal(code: int, detail: Any) -> JobFailed:
    if code in (401, 403):
        return JobFailed(f"fal refused the API key (HTTP {code}); check FAL_KEY")
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        loc = [p for p in first.get("loc", []) if p != "body"]
        return JobFailed(f"fal refused the request (HTTP {code}): {_message(detail)}", loc)
    return JobFailed(f"fal refused the request (HTTP {code}): {_message(detail)}")


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


def _get_status(client: fal_client.SyncClient, handle: Any) -> Any:
    """ONE status GET, parsed as fal_client parses it: `handle.status()` would retry up to 10 GETs
    inside each of storyc's attempts; storyc's `Retrying` is the one bound (module docstring)."""
    from fal_client.client import QUEUE_POLL_TIMEOUT, _raise_for_status

    response = client._client.get(handle.status_url, params={"logs": False}, timeout=QUEUE_POLL_TIMEOUT)
    _raise_for_status(response)
    return handle._parse_status(response.json())


def _get_json(client: fal_client.SyncClient, url: str) -> Any:
    """GET the result directly: `handle.get()` would poll status once more for every job."""
    from fal_client.client import _raise_for_status

    response = client._client.get(url)  # the authenticated client fal_client itself uses
    _raise_for_status(response)
    return response.json()


def _video_of(body: Any, status: Any) -> RemoteVideo:
    video = body.get("video") if isinstance(body, dict) else None
    if not _is_file(video):
        error = getattr(status, "error", None)
        raise JobFailed(f"fal finished without a video{': ' + error if error else ''}")
    return RemoteVideo(url=video["url"], bytes=_size(video))


def _images_of(body: Any, status: Any) -> tuple[RemoteVideo, ...]:
    """An image endpoint's result: `{"images": [{"url", "file_size", ...}, ...]}`, one per candidate."""
    images = body.get("images") if isinstance(body, dict) else None
    if not isinstance(images, list) or not images or not all(_is_file(i) for i in images):
        error = getattr(status, "error", None)
        raise JobFailed(f"fal finished without images{': ' + error if error else ''}")
    return tuple(RemoteVideo(url=i["url"], bytes=_size(i)) for i in images)


def _is_file(value: Any) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict) and isinstance(value.get("url"), str)


def _size(file: dict[str, Any]) -> int | None:
    size = file.get("file_size")
    return size if isinstance(size, int) and size >= 0 else None


def _describe(status: Any) -> tuple[str, int | None]:
    import fal_client

    if isinstance(status, fal_client.Queued):
        return ("queued", status.position)
    if isinstance(status, fal_client.InProgress):
        return ("running", None)
    return ("completed", None)


def _progress_words(seen: tuple[str, int | None]) -> tuple[str, str]:
    """("queued", "3rd in line"): fal's `queue_position` counts the jobs ahead (0: next to start)."""
    state, position = seen
    if state == "queued":
        return ("queued", f"{_ordinal(position + 1)} in line" if position is not None else "")
    return (state, "")


def _ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, 21st, 102nd."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
