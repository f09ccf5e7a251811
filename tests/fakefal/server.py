"""A local fake of fal's queue and storage HTTP protocol, for the real `fal_client` 1.0.3.

What it models (see /work/shared/design/fal-facts.md sections 1 and 2):

- Queue: `POST /{endpoint_id}` -> request id and absolute status/response/cancel URLs built from
  owner/alias only; status 202 while IN_QUEUE / IN_PROGRESS, 200 when COMPLETED; a failed job also
  ends COMPLETED (with `error`/`error_type`) and its result GET replays the model's 4xx/5xx.
  Payloads are validated by the "runner", i.e. after submit, never at submit.
- Jobs advance by clock: `job_seconds` each, at most `concurrency` IN_PROGRESS at once, the rest
  IN_QUEUE with 0-based positions. State is computed lazily, exactly, on every request.
- Storage: CDN token, v3 upload (`POST /files/upload`), the "fal" fallback (initiate + presigned PUT),
  multipart, and `GET /files/...` with Content-Length and single byte ranges.
- Results: a real small MP4 of the requested duration and aspect ratio for a video endpoint; for an
  image endpoint (nano-banana-2 and /edit) one real picture per candidate (`num_images`) of the
  requested aspect ratio and format; all served from `/files/...`.
- Faults: failing, dropping, delaying or truncating the next requests of a route, either before
  the request takes effect (fal never accepted it) or after (fal accepted it, e.g. created and will
  bill a job, but the client got an error, no answer or a late one); odd status words; failing jobs
  by prompt; a closed port for "fal never got it". `accepted_count()` counts the jobs fal took.
- Recording: every request (with headers, including Authorization), every upload, every job.

Only ever binds 127.0.0.1. With `tls=True` it serves HTTPS with a throwaway trustme CA, so a
subprocess can reach it through fal_client's own environment (see `subprocess_env`).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import mimetypes
import re
import secrets
import shutil
import socket
import socketserver
import ssl
import tempfile
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs, quote, unquote, urlsplit

from fakefal import media
from fakefal.validation import Endpoint, FileCheck, Verdict, load_endpoints, output_duration, prompts, validate_payload

DEFAULT_KEY = "fake-key-id:fake-key-secret-DO-NOT-LEAK-0123456789"

ROUTES = frozenset(
    {
        "submit",
        "status",
        "result",
        "cancel",
        "run",
        "token",
        "upload",
        "upload_initiate",
        "upload_multipart",
        "upload_part",
        "upload_complete",
        "download",
    }
)

# Routes served to the per-upload httpx client that fal_client creates and never closes.
_CDN_ROUTES = frozenset({"upload", "upload_multipart", "upload_part", "upload_complete"})

IN_QUEUE = "IN_QUEUE"
IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"

_REQ_RE = re.compile(
    r"^/(?P<app>(?:(?:workflows|comfy)/)?[^/]+/[^/]+)/requests/(?P<id>[^/]+)(?P<tail>/status/stream|/status|/cancel)?/?$"
)
_FILE_RE = re.compile(r"^/files/(?P<id>[0-9a-f]{32})/(?P<name>[^/]+)$")
_PART_RE = re.compile(r"^/files/(?P<id>[0-9a-f]{32})/(?P<name>[^/]+)/multipart/(?P<upload>[^/]+)/(?P<part>\d+)$")
_COMPLETE_RE = re.compile(r"^/files/(?P<id>[0-9a-f]{32})/(?P<name>[^/]+)/multipart/(?P<upload>[^/]+)/complete$")
_GCS_RE = re.compile(r"^/_gcs/(?P<id>[0-9a-f]{32})$")

_APP_ERROR_TYPES = {
    500: "internal_error",
    502: "runner_incomplete_response",
    503: "runner_scheduling_failure",
    504: "request_timeout",
}
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}


# --------------------------------------------------------------------------- records


@dataclass
class RequestRecord:
    """One HTTP request the fake received. `headers` keys are lower-case; `status` is None if dropped."""

    method: str
    path: str
    query: dict[str, str]
    route: str
    headers: dict[str, str]
    json: Any
    body_size: int
    time: float
    status: int | None = None
    request_id: str | None = None
    fault: str | None = None
    response_json: Any = None
    processed: bool = False  # the request took effect (a submit: its job exists), whatever was answered


@dataclass(frozen=True)
class UploadRecord:
    """One completed upload. `via` is "cdn" (v3 POST), "gcs" (fallback) or "multipart"."""

    url: str
    file_name: str
    content_type: str
    sha256: str
    size: int
    via: str
    lifecycle: Any = None


@dataclass(frozen=True)
class JobInfo:
    """A snapshot of one queue job (or `run` call)."""

    request_id: str
    endpoint_id: str
    payload: Any
    status: str
    queue_position: int | None
    submitted_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None
    error_type: str | None
    result_status: int | None
    cancelled: bool
    expired: bool
    video_url: str | None
    image_urls: tuple[str, ...]
    via: str
    webhook_url: str | None
    headers: dict[str, str]
    warnings: tuple[str, ...]


# --------------------------------------------------------------------------- internals


@dataclass(frozen=True)
class _Outcome:
    status: int
    body: Any = None
    error: str | None = None
    error_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


_SUCCESS = _Outcome(200)


@dataclass
class _Job:
    request_id: str
    endpoint: Endpoint
    payload: Any
    submitted_at: float
    job_seconds: float
    planned: _Outcome
    verdict: Verdict
    via: str
    headers: dict[str, str]
    webhook_url: str | None
    deadline: float | None
    state: str = IN_QUEUE
    started_at: float | None = None
    finished_at: float | None = None
    outcome: _Outcome | None = None
    cancelled: bool = False
    expired: bool = False
    output: dict[str, Any] | None = None  # the result body, made (and its files stored) on the first result GET
    logs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _StoredFile:
    file_id: str
    file_name: str
    content_type: str
    data: bytes = b""
    complete: bool = True
    expires_at: float | None = None


@dataclass(frozen=True)
class _StoredRef:
    url: str
    stored: _StoredFile


@dataclass
class _Fault:
    kind: Literal["fail", "drop"]
    remaining: int
    status: int = 0
    ingress: bool = False
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    after_processing: bool = False
    endpoint: str | None = None  # only requests about this endpoint's jobs; None: any


@dataclass
class _Delay:
    remaining: int
    seconds: float
    after_processing: bool
    endpoint: str | None = None


_PendingT = TypeVar("_PendingT", _Fault, _Delay)


@dataclass
class _StatusWord:
    word: str
    remaining: int
    request_id: str | None


@dataclass(frozen=True)
class _FailureRule:
    substring: str
    error: str
    error_type: str
    status: int


@dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    truncate: bool = False
    head_only: bool = False


def _json(status: int, obj: Any, headers: dict[str, str] | None = None) -> _Response:
    return _Response(status, json.dumps(obj).encode(), headers=dict(headers or {}), json=obj)


def _request_id_header() -> dict[str, str]:
    return {"x-fal-request-id": str(uuid.uuid4())}


_QUEUE_ROUTES = frozenset({"status", "result", "cancel"})
# Routes whose requests are about one endpoint's jobs, so a fault may be aimed at that endpoint.
_ENDPOINT_ROUTES = frozenset({"submit", "run", *_QUEUE_ROUTES})


def _unknown_request(route: str, headers: dict[str, str] | None = None) -> _Response:
    """The answer for a request id the queue does not know (or whose result is gone)."""
    if route == "cancel":
        return _json(404, {"status": "NOT_FOUND"}, headers)
    return _json(404, {"detail": "Request not found"}, headers)


def _video_url(output: dict[str, Any] | None) -> str | None:
    video = (output or {}).get("video")
    return video["url"] if isinstance(video, dict) else None


def _image_urls(output: dict[str, Any] | None) -> tuple[str, ...]:
    return tuple(image["url"] for image in (output or {}).get("images", []))


def _note_fault(record: RequestRecord, name: str) -> None:
    record.fault = name if record.fault is None else f"{record.fault}+{name}"


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # keep-alive handler threads must not block server_close()
    fake: FakeFal
    tls_context: ssl.SSLContext | None = None

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # skip HTTPServer's getfqdn() lookup
        self.server_name = "127.0.0.1"
        self.server_port = self.server_address[1]

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        if self.tls_context is not None:
            # The handshake happens in the handler thread, so a bad client cannot stall accept().
            sock = self.tls_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Connection-level trouble (TLS handshake refused, resets): note it, don't print.
        self.fake._note_connection_error(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakefal/1.0"
    timeout = 30  # idle keep-alive connections close after this many seconds
    server: _HTTPServer

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            self.request.do_handshake()
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.fake._serve(self)

    do_POST = do_PUT = do_HEAD = do_DELETE = do_PATCH = do_GET

    # -- I/O helpers used by FakeFal._serve

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def hard_close(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def send(self, resp: _Response) -> None:
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        if resp.content_type:
            self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if resp.head_only:
            return
        if resp.truncate:
            self.wfile.write(resp.body[: len(resp.body) // 2])
            self.wfile.flush()
            self.hard_close()
            return
        self.wfile.write(resp.body)


# --------------------------------------------------------------------------- the fake


class FakeFal:
    """The fake fal service. Start it (or use it as a context manager), point fal_client at `url`.

    Args:
        key: the only accepted `Authorization: Key <key>` credential.
        tls: serve HTTPS with a throwaway CA (see `ca_pem_path`, `subprocess_env`).
        job_seconds: how long each job stays IN_PROGRESS (read at submit time).
        concurrency: how many jobs may be IN_PROGRESS at once; None means unlimited.
        latency: seconds added before every response.
        result_ttl: seconds after completion before the result GET answers 404; None = forever.
        schemas_dir: directory of endpoint files (default: the repository's schemas/endpoints).
        video_mode: "ffmpeg" (real tiny MP4s) or "stub" (undecodable bytes, no ffmpeg).
        honour_cancel: whether a running job stops when cancelled (fal leaves it to the app).
        accept_data_uris: accept `data:` URIs in asset fields (fal: "some models"; UNCERTAIN for O3).
        strict_shot_durations: reject multi_prompt whose shot durations do not sum to `duration`.
        cdn_token_ttl: lifetime in seconds of the CDN upload tokens handed out.
        clock: a monotonic clock in seconds (default time.monotonic), for deterministic tests.
        echo_key: every error text the fake writes ends with the credentials the request carried,
            whole and by key id, as a careless server might (a 422's detail messages, a failed job's
            `error`, a fault's JSON `detail`); settable at any time, for testing that they are scrubbed.
    """

    def __init__(
        self,
        *,
        key: str = DEFAULT_KEY,
        tls: bool = False,
        job_seconds: float = 0.05,
        concurrency: int | None = None,
        latency: float = 0.0,
        result_ttl: float | None = None,
        schemas_dir: Path | None = None,
        video_mode: Literal["ffmpeg", "stub"] = "ffmpeg",
        honour_cancel: bool = True,
        accept_data_uris: bool = False,
        strict_shot_durations: bool = False,
        cdn_token_ttl: float = 3600.0,
        clock: Callable[[], float] | None = None,
        echo_key: bool = False,
    ) -> None:
        self.key = key
        self.echo_key = echo_key
        self.tls = tls
        self.job_seconds = job_seconds
        self.latency = latency
        self.result_ttl = result_ttl
        self.video_mode = video_mode
        self.honour_cancel = honour_cancel
        self.accept_data_uris = accept_data_uris
        self.strict_shot_durations = strict_shot_durations
        self.cdn_token_ttl = cdn_token_ttl
        self.endpoints: dict[str, Endpoint] = load_endpoints(schemas_dir)
        self.internal_errors: list[str] = []
        self.connection_errors: list[str] = []

        self._now = clock or time.monotonic
        self._wall_offset = time.time() - self._now()
        self._lock = threading.RLock()
        self._concurrency = concurrency
        self._clock = self._now()
        self._jobs: dict[str, _Job] = {}
        self._job_order: list[_Job] = []
        self._active: list[_Job] = []
        self._records: list[RequestRecord] = []
        self._uploads: list[UploadRecord] = []
        self._files: dict[str, _StoredFile] = {}
        self._multipart: dict[str, dict[str, Any]] = {}
        self._tokens: dict[str, float] = {}
        self._faults: dict[str, deque[_Fault]] = {}
        self._failure_rules: list[_FailureRule] = []
        self._truncate_downloads = 0
        self._delays: dict[str, deque[_Delay]] = {}
        self._status_words: list[_StatusWord] = []
        self._stopping = threading.Event()
        self._closed_ports: list[socket.socket] = []
        self._connections: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tmpdir: Path | None = None
        self._tls_context: ssl.SSLContext | None = None
        self.ca_pem_path: Path | None = None
        self.port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. http://127.0.0.1:41234."""
        if self.port is None:
            raise RuntimeError("FakeFal is not started")
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def queue_host(self) -> str:
        """The value for FAL_QUEUE_RUN_HOST: 127.0.0.1:PORT."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> FakeFal:
        if self._httpd is not None:
            return self
        if self.tls:
            self._setup_tls()
        self._stopping.clear()
        httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        httpd.fake = self
        httpd.tls_context = self._tls_context
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"fakefal-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()  # wakes handlers sleeping in a delay or latency: they close without answering
        httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            closed, self._closed_ports = self._closed_ports, []
        for sock in closed:
            sock.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> FakeFal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _setup_tls(self) -> None:
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        self._tls_context = ctx
        self._tmpdir = Path(tempfile.mkdtemp(prefix="fakefal-tls-"))
        self.ca_pem_path = self._tmpdir / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_pem_path))

    def client_ssl_context(self) -> ssl.SSLContext:
        """An SSL context trusting the fake's CA (for httpx.Client(verify=...)) in TLS mode."""
        if self.ca_pem_path is None:
            raise RuntimeError("client_ssl_context() needs FakeFal(tls=True), started")
        return ssl.create_default_context(cafile=str(self.ca_pem_path))

    def subprocess_env(self) -> dict[str, str]:
        """Environment that points a fal_client in another process at this (TLS) fake.

        Only the queue (submit/status/result/cancel) and `run` can be redirected this way:
        fal_client hard-codes REST_URL (https://rest.fal.ai) and CDN_URL (https://v3.fal.media), so
        uploads from a subprocess cannot reach the fake. FAL_RUN_HOST carries a path
        (127.0.0.1:PORT/_run) so that `run()` lands on the fake's synchronous route.
        """
        if not self.tls or self.ca_pem_path is None or self.port is None:
            raise RuntimeError("subprocess_env() needs FakeFal(tls=True), started: fal_client always uses https")
        return {
            "FAL_KEY": self.key,
            "FAL_QUEUE_RUN_HOST": self.queue_host,
            "FAL_RUN_HOST": f"{self.queue_host}/_run",
            "SSL_CERT_FILE": str(self.ca_pem_path),
        }

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _note_connection_error(self, text: str) -> None:
        with self._lock:
            self.connection_errors.append(text)

    # ------------------------------------------------------------------ settings

    @property
    def concurrency(self) -> int | None:
        return self._concurrency

    @concurrency.setter
    def concurrency(self, value: int | None) -> None:
        with self._lock:
            now = self._now()
            self._advance(now)
            self._concurrency = value
            self._clock = max(self._clock, now)
            self._advance(now)

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self,
        route: str,
        status: int,
        count: int = 1,
        *,
        ingress: bool = False,
        body: Any = None,
        headers: dict[str, str] | None = None,
        after_processing: bool = False,
        endpoint: str | None = None,
    ) -> None:
        """The next `count` requests on `route` get HTTP `status`.

        With `endpoint`, only requests about that endpoint's jobs count (a submit to it, a status,
        result or cancel of one of its jobs): e.g. fail the image endpoint while videos go on.

        By default the request is refused before it takes effect (a submit creates no job): what a
        429, a 401 or an ingress error means. With `after_processing=True` the fake first processes
        the request as usual (a submit creates its job, which is validated, runs and would be
        billed; a cancel cancels) and then answers `status` instead of its own answer: fal accepted
        it, the client never learned so. Only 5xx may come after processing; a 429 (or any 4xx)
        proves the request was not accepted, so `after_processing=True` with it is a ValueError,
        except a 409: a conflict can be with the very request that took effect (an idempotency or
        billing conflict reported for a submit fal did take; hermes-agent#106479).  A 408 proves
        fal timed out reading the request: only before processing.

        `ingress=True` answers like fal's nginx ingress (HTML body mentioning nginx, no
        x-fal-request-id), which fal_client retries on 502/503/504 (so an accepted submit is sent
        again: a duplicate job). Otherwise the error comes from the "app layer": JSON
        `{"detail", "error_type"}` with a fresh x-fal-request-id (never the id of the job a submit
        created), which fal_client does not retry. A 404 on status/result/cancel answers exactly
        like an unknown request id. `body` (JSON-able, or a str for `ingress`) and `headers`
        override what is sent, e.g. headers={"X-Fal-Request-Timeout-Type": "user"}.
        """
        if after_processing and status < 500 and status != 409:
            raise ValueError(
                f"HTTP {status} after processing is not something fal does: a {status} means the request was not "
                "accepted; only a 409 or a 5xx may come after the request took effect"
            )
        self._add_fault(
            route,
            _Fault(
                "fail",
                count,
                status=status,
                ingress=ingress,
                body=body,
                headers=dict(headers or {}),
                after_processing=after_processing,
                endpoint=endpoint,
            ),
        )

    def drop_next(
        self, route: str, count: int = 1, *, after_processing: bool = False, endpoint: str | None = None
    ) -> None:
        """Close the connection of the next `count` requests on `route` without answering.

        By default nothing takes effect (fal never got it). With `after_processing=True` the request
        takes effect first (e.g. a submit creates its job) and only the response is lost: the
        duplicate-job risk, since fal_client retries a dropped connection (httpx.RemoteProtocolError)
        up to 10 attempts in all. `endpoint` as for `fail_next`.
        """
        self._add_fault(route, _Fault("drop", count, after_processing=after_processing, endpoint=endpoint))

    def delay_next(
        self,
        route: str,
        seconds: float,
        count: int = 1,
        *,
        after_processing: bool = True,
        endpoint: str | None = None,
    ) -> None:
        """The next `count` requests on `route` are answered `seconds` late (`endpoint` as for `fail_next`).

        With `after_processing=True` (the default) the request takes effect at once and only the
        answer waits: for a submit, the "kill window" in which fal has accepted (and will bill) a
        job but the client does not know its request id yet. With `after_processing=False` the
        request waits before it is processed (the job appears only after the delay).

        Only that request's handler thread waits: other requests are served meanwhile. A client
        that gives up (a read timeout) just closes its connection; fal_client retries read
        timeouts unless the request carried X-Fal-Request-Timeout (`start_timeout=`), so a slow
        submit can become a duplicate job. `stop()` wakes a waiting handler, which then closes the
        connection without answering. Delays combine with `fail_next` / `drop_next` on the same
        request (e.g. processed, 2 s later a 504).
        """
        self._check_target(route, count, endpoint)
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        with self._lock:
            self._delays.setdefault(route, deque()).append(_Delay(count, float(seconds), after_processing, endpoint))

    def report_status_next(self, status_word: str, count: int = 1, request_id: str | None = None) -> None:
        """The next `count` status polls (of `request_id` only, if given) answer `status_word`.

        The answer is 200 `{"status": status_word, "request_id", "response_url", "status_url",
        "cancel_url", "logs": null}` (plus `"queue_position": 0` for IN_QUEUE). For a word
        fal_client does not know (anything but IN_QUEUE, IN_PROGRESS, COMPLETED, e.g. "CANCELLED"
        or "FAILED", which fal never sends) fal_client raises `ValueError("Unknown status: WORD")`,
        not retried. Only polls of a known request id consume it; the job itself is untouched.
        """
        if count < 1:
            raise ValueError("count must be >= 1")
        with self._lock:
            self._status_words.append(_StatusWord(status_word, count, request_id))

    def truncate_next_downloads(self, count: int = 1) -> None:
        """The next `count` GETs of a /files/ URL announce the full Content-Length, send half, then close."""
        with self._lock:
            self._truncate_downloads += count

    def fail_jobs_matching(
        self,
        substring: str,
        error: str = "Model inference failed",
        error_type: str = "internal_error",
        status: int = 500,
    ) -> None:
        """Jobs submitted from now on whose prompt or any shot prompt contains `substring` fail.

        They end COMPLETED with `error`/`error_type` in the status body; their result GET answers
        `status`: 422 with a detail list at ["body", "prompt"] (model error), otherwise the flat
        infrastructure body `{"detail": error, "error_type": error_type}`.
        """
        with self._lock:
            self._failure_rules.append(_FailureRule(substring, error, error_type, status))

    def clear_faults(self) -> None:
        """Forget every pending fault, delay, status word, truncation and job-failure rule."""
        with self._lock:
            self._faults.clear()
            self._delays.clear()
            self._status_words.clear()
            self._failure_rules.clear()
            self._truncate_downloads = 0

    def expire(self, request_id: str) -> None:
        """Make the result of `request_id` gone (result GET -> 404), as after fal's retention period."""
        with self._lock:
            self._jobs[request_id].expired = True

    def expire_file(self, url: str) -> None:
        """Make a stored file (upload or generated video) answer 404 from now on."""
        with self._lock:
            stored = self._file_for_url(url)
            if stored is None:
                raise KeyError(url)
            stored.expires_at = self._now()

    def _check_target(self, route: str, count: int, endpoint: str | None) -> None:
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; routes are {sorted(ROUTES)}")
        if count < 1:
            raise ValueError("count must be >= 1")
        if endpoint is not None and endpoint not in self.endpoints:
            raise ValueError(f"unknown endpoint {endpoint!r}; endpoints are {sorted(self.endpoints)}")
        if endpoint is not None and route not in _ENDPOINT_ROUTES:
            raise ValueError(f"route {route!r} is not about one endpoint; only {sorted(_ENDPOINT_ROUTES)} are")

    def _add_fault(self, route: str, fault: _Fault) -> None:
        self._check_target(route, fault.remaining, fault.endpoint)
        with self._lock:
            self._faults.setdefault(route, deque()).append(fault)

    def _take_pending(
        self, pending: dict[str, deque[_PendingT]], route: str, endpoint_id: str | None
    ) -> _PendingT | None:
        """Use up one of the first fault (or delay) queued on `route` that applies to `endpoint_id`'s requests."""
        with self._lock:
            queue = pending.get(route, deque())
            for entry in queue:
                if entry.endpoint in (None, endpoint_id):
                    entry.remaining -= 1
                    if entry.remaining <= 0:
                        queue.remove(entry)
                    return entry
            return None

    def _endpoint_of(self, route: str, path: str, match: re.Match[str] | None) -> str | None:
        """The endpoint a request is about: the one submitted to, or the one of the job it names."""
        if route == "submit":
            return path.strip("/")
        if route == "run":
            return path.removeprefix("/_run").strip("/")
        if route in _QUEUE_ROUTES and match is not None:
            with self._lock:
                job = self._jobs.get(match["id"])
            return job.endpoint.id if job is not None else None
        return None

    def _take_status_word(self, request_id: str) -> str | None:
        with self._lock:
            for entry in self._status_words:
                if entry.request_id in (None, request_id):
                    entry.remaining -= 1
                    if entry.remaining <= 0:
                        self._status_words.remove(entry)
                    return entry.word
            return None

    def _pause(self, seconds: float) -> bool:
        """Sleep without holding the lock; False if the server is stopping (then do not answer)."""
        return not self._stopping.wait(seconds)

    def closed_port_url(self) -> str:
        """A base URL on 127.0.0.1 where every connection is refused: "fal never got it".

        The port stays bound (never listening) until `stop()`, so nothing else can take it. Point
        the client at it, e.g. `monkeypatch.setattr(fal_client.client, "QUEUE_URL_FORMAT", url + "/")`
        in-process, or FAL_QUEUE_RUN_HOST=127.0.0.1:PORT for a subprocess. fal_client treats the
        refusal (httpx.ConnectError) as retryable: 10 attempts with backoff (about 51 s x jitter in
        all; shrink it in-process with `fakefal.plugin.fast_retries`), then httpx.ConnectError
        reaches the caller. Nothing reaches the fake, nothing is recorded or accepted.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        with self._lock:
            self._closed_ports.append(sock)
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{sock.getsockname()[1]}"

    # ------------------------------------------------------------------ recording

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request received since start / the last reset_counters(), in arrival order."""
        with self._lock:
            return list(self._records)

    def records(self, route: str | None = None) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self._records if route is None or r.route == route]

    def count(self, route: str, *, status: int | None = None) -> int:
        """How many requests hit `route` (optionally: that got answer `status`)."""
        return sum(1 for r in self.records(route) if status is None or r.status == status)

    def status_calls(self, request_id: str) -> list[RequestRecord]:
        return [r for r in self.records("status") if r.request_id == request_id]

    def reset_counters(self) -> None:
        """Forget the request log (jobs, files and uploads stay)."""
        with self._lock:
            self._records.clear()

    @property
    def uploads(self) -> list[UploadRecord]:
        with self._lock:
            return list(self._uploads)

    @property
    def jobs(self) -> list[JobInfo]:
        """Every job ever created (queue submits and run calls), in submission order."""
        with self._lock:
            self._advance(self._now())
            return [self._info(j) for j in self._job_order]

    def accepted_count(self, *, via: Literal["queue", "run"] | None = None, endpoint: str | None = None) -> int:
        """How many jobs the fake accepted (created): each one a job fal would run and bill.

        Counts every submit that took effect, whatever the client saw: a normal answer, an error
        after processing (`fail_next(..., after_processing=True)`), a lost answer
        (`drop_next(..., after_processing=True)`), or a late one (`delay_next`). Refused requests
        (401, unknown endpoint, 429, faults before processing) never count. `via` restricts to
        queue submits ("queue") or synchronous `run()` calls ("run"), `endpoint` to the jobs of one
        endpoint id (e.g. the stills of a board). Not reset by reset_counters().
        """
        with self._lock:
            return sum(
                1
                for j in self._job_order
                if (via is None or j.via == via) and (endpoint is None or j.endpoint.id == endpoint)
            )

    @property
    def submits(self) -> list[Any]:
        """Payloads of the queue submits that created a job (each one a job fal would bill)."""
        return [j.payload for j in self.jobs if j.via == "queue"]

    def job(self, request_id: str) -> JobInfo:
        with self._lock:
            self._advance(self._now())
            return self._info(self._jobs[request_id])

    # ------------------------------------------------------------------ files

    def put_file(self, data: bytes, file_name: str = "file.bin", content_type: str = "application/octet-stream") -> str:
        """Store a file directly (no HTTP, not recorded as an upload) and return its URL."""
        with self._lock:
            return self._store_file(data, file_name, content_type).url

    def file_bytes(self, url: str) -> bytes | None:
        """The stored bytes behind one of the fake's /files/ URLs, or None."""
        with self._lock:
            stored = self._file_for_url(url)
            return stored.data if stored is not None and stored.complete else None

    def _store_file(
        self, data: bytes, file_name: str, content_type: str, *, expires_in: float | None = None
    ) -> _StoredRef:
        file_id = uuid.uuid4().hex
        name = Path(file_name.replace("\\", "/")).name or "file.bin"
        stored = _StoredFile(file_id, name, content_type, data)
        if expires_in:
            stored.expires_at = self._now() + expires_in
        self._files[file_id] = stored
        return _StoredRef(self._file_url(stored), stored)

    def _file_url(self, stored: _StoredFile) -> str:
        return f"{self.url}/files/{stored.file_id}/{quote(stored.file_name)}"

    def _file_for_url(self, url: str) -> _StoredFile | None:
        parts = urlsplit(url)
        if parts.hostname not in ("127.0.0.1", "localhost") or parts.port != self.port:
            return None
        match = _FILE_RE.match(parts.path)
        if not match:
            return None
        stored = self._files.get(match["id"])
        if stored is None or stored.file_name != unquote(match["name"]):
            return None
        return stored

    def _live(self, stored: _StoredFile | None) -> bool:
        return stored is not None and stored.complete and (stored.expires_at is None or self._now() < stored.expires_at)

    def _check_file(self, url: str) -> FileCheck:
        parts = urlsplit(url)
        if parts.hostname not in ("127.0.0.1", "localhost") or parts.port != self.port:
            return FileCheck(ours=False)
        stored = self._file_for_url(url)
        if not self._live(stored):
            return FileCheck(ours=True, exists=False)
        assert stored is not None
        return FileCheck(ours=True, exists=True, head=stored.data[:16], content_type=stored.content_type)

    def _record_upload(self, stored: _StoredFile, via: str, lifecycle: Any) -> None:
        self._uploads.append(
            UploadRecord(
                url=self._file_url(stored),
                file_name=stored.file_name,
                content_type=stored.content_type,
                sha256=hashlib.sha256(stored.data).hexdigest(),
                size=len(stored.data),
                via=via,
                lifecycle=lifecycle,
            )
        )

    @staticmethod
    def _lifecycle(headers: dict[str, str]) -> tuple[Any, float | None]:
        raw = headers.get("x-fal-object-lifecycle") or headers.get("x-fal-object-lifecycle-preference")
        if not raw:
            return None, None
        try:
            value = json.loads(raw)
        except ValueError:
            return raw, None
        seconds = value.get("expiration_duration_seconds") if isinstance(value, dict) else None
        return value, float(seconds) if isinstance(seconds, int | float) and seconds > 0 else None

    # ------------------------------------------------------------------ job simulation

    def _iso(self, t: float) -> str:
        return datetime.fromtimestamp(t + self._wall_offset, UTC).isoformat()

    def _log(self, job: _Job, t: float, message: str, level: str = "INFO") -> None:
        job.logs.append({"timestamp": self._iso(t), "level": level, "source": "user", "message": message})

    def _advance(self, now: float) -> None:
        """Replay every start, completion and start-timeout up to `now`, in time order."""
        while True:
            running = [j for j in self._active if j.state == IN_PROGRESS]
            cap = self._concurrency
            for job in [j for j in self._active if j.state == IN_QUEUE]:
                if cap is not None and len(running) >= cap:
                    break
                self._start(job, max(self._clock, job.submitted_at))
                running.append(job)
            events: list[tuple[float, int, _Job]] = [(j.started_at + j.job_seconds, 0, j) for j in running]  # type: ignore[operator]
            events += [(j.deadline, 1, j) for j in self._active if j.state == IN_QUEUE and j.deadline is not None]
            if not events:
                return
            t, kind, job = min(events, key=lambda e: (e[0], e[1]))
            if t > now:
                return
            self._clock = max(self._clock, t)
            self._finish(job, t, job.planned if kind == 0 else self._start_timeout_outcome())

    def _start(self, job: _Job, t: float) -> None:
        job.state = IN_PROGRESS
        job.started_at = t
        self._log(job, t, f"Starting {job.endpoint.id}")
        for warning in job.verdict.warnings:
            self._log(job, t, warning, "WARNING")

    def _finish(self, job: _Job, t: float, outcome: _Outcome) -> None:
        job.state = COMPLETED
        job.finished_at = t
        job.outcome = outcome
        if job.started_at is None:
            job.started_at = t
        if outcome.error:
            self._log(job, t, outcome.error, "ERROR")
        else:
            self._log(job, t, "Generation complete")
        self._active.remove(job)

    @staticmethod
    def _start_timeout_outcome() -> _Outcome:
        detail = "Request timed out before processing started"
        return _Outcome(
            504,
            {"detail": detail, "error_type": "request_timeout"},
            detail,
            "request_timeout",
            {"X-Fal-Request-Timeout-Type": "user", "X-Fal-Error-Type": "request_timeout"},
        )

    @staticmethod
    def _cancelled_outcome() -> _Outcome:
        detail = "Request was cancelled"
        return _Outcome(
            499,
            {"detail": detail, "error_type": "client_cancelled"},
            detail,
            "client_cancelled",
            {"X-Fal-Error-Type": "client_cancelled"},
        )

    def _plan(self, verdict: Verdict, payload: Any, echo: str) -> _Outcome:
        if verdict.errors:
            errors = [{**d, "msg": str(d["msg"]) + echo} for d in verdict.errors]
            message = "; ".join(str(d["msg"]) for d in errors)
            return _Outcome(422, {"detail": errors}, message, "validation_error", {"X-Fal-Retryable": "false"})
        for rule in self._failure_rules:
            for text in prompts(payload):
                if rule.substring in text:
                    return self._rule_outcome(replace(rule, error=rule.error + echo), payload, text)
        return _SUCCESS

    @staticmethod
    def _rule_outcome(rule: _FailureRule, payload: Any, text: str) -> _Outcome:
        if rule.status == 422:
            loc: list[Any] = ["body", "prompt"]
            if not (isinstance(payload, dict) and payload.get("prompt") == text):
                index = next(i for i, s in enumerate(payload["multi_prompt"]) if s.get("prompt") == text)
                loc = ["body", "multi_prompt", index, "prompt"]
            body = {"detail": [{"loc": loc, "msg": rule.error, "type": rule.error_type, "input": text}]}
            return _Outcome(422, body, rule.error, rule.error_type, {"X-Fal-Retryable": "false"})
        flat: dict[str, Any] = {"detail": rule.error, "error_type": rule.error_type}
        return _Outcome(rule.status, flat, rule.error, rule.error_type, {"X-Fal-Error-Type": rule.error_type})

    def _create_job(
        self, endpoint: Endpoint, payload: Any, headers: dict[str, str], query: dict[str, str], via: str
    ) -> _Job:
        verdict = validate_payload(
            endpoint,
            payload,
            check_file=self._check_file,
            accept_data_uris=self.accept_data_uris,
            strict_shot_durations=self.strict_shot_durations,
        )
        now = self._now()
        self._advance(now)
        deadline = None
        with contextlib.suppress(ValueError):
            if "x-fal-request-timeout" in headers:
                deadline = now + float(headers["x-fal-request-timeout"])
        job = _Job(
            request_id=str(uuid.uuid4()),
            endpoint=endpoint,
            payload=payload,
            submitted_at=now,
            job_seconds=float(self.job_seconds),
            planned=self._plan(verdict, payload, self._echo(headers)),
            verdict=verdict,
            via=via,
            headers=dict(headers),
            webhook_url=query.get("fal_webhook"),
            deadline=deadline,
        )
        self._jobs[job.request_id] = job
        self._job_order.append(job)
        self._active.append(job)
        self._advance(now)
        return job

    def _position(self, job: _Job) -> int | None:
        if job.state != IN_QUEUE:
            return None
        return [j for j in self._active if j.state == IN_QUEUE].index(job)

    def _info(self, job: _Job) -> JobInfo:
        outcome = job.outcome
        return JobInfo(
            request_id=job.request_id,
            endpoint_id=job.endpoint.id,
            payload=job.payload,
            status=job.state,
            queue_position=self._position(job),
            submitted_at=job.submitted_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            error=outcome.error if outcome else None,
            error_type=outcome.error_type if outcome else None,
            result_status=outcome.status if outcome else None,
            cancelled=job.cancelled,
            expired=job.expired,
            video_url=_video_url(job.output),
            image_urls=_image_urls(job.output),
            via=job.via,
            webhook_url=job.webhook_url,
            headers=dict(job.headers),
            warnings=tuple(job.verdict.warnings),
        )

    def _urls(self, job: _Job) -> dict[str, str]:
        base = f"{self.url}/{job.endpoint.owner_alias}/requests/{job.request_id}"
        return {"response_url": base, "status_url": base + "/status", "cancel_url": base + "/cancel"}

    def _status_body(self, job: _Job, with_logs: bool) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {"status": job.state, "request_id": job.request_id, **self._urls(job)}
        if job.state == IN_QUEUE:
            body["queue_position"] = self._position(job)
            return 202, body
        logs: list[dict[str, Any]] | None = list(job.logs) if with_logs else None
        if job.state == IN_PROGRESS:
            if logs is not None and job.started_at is not None and job.job_seconds > 0:
                done = min(0.99, max(0.0, (self._now() - job.started_at) / job.job_seconds))
                logs.append(
                    {
                        "timestamp": self._iso(self._now()),
                        "level": "INFO",
                        "source": "user",
                        "message": f"Generating: {int(done * 100)}%",
                    }
                )
            body["logs"] = logs
            return 202, body
        assert job.outcome is not None and job.finished_at is not None and job.started_at is not None
        body["logs"] = logs
        body["metrics"] = {"inference_time": round(job.finished_at - job.started_at, 6)}
        if job.outcome.error is not None:
            body["error"] = job.outcome.error
            body["error_type"] = job.outcome.error_type
        return 200, body

    def _video_bytes(self, job: _Job) -> bytes:
        payload = job.payload if isinstance(job.payload, dict) else {}
        duration = max(1, output_duration(payload))
        aspect = str(payload.get("aspect_ratio", "16:9"))
        audio = bool(payload.get("generate_audio", False))
        if self.video_mode == "stub":
            return media.stub_video(duration, aspect, audio)
        return media.DEFAULT_CACHE.get(duration, aspect, audio)

    def _video_output(self, job: _Job) -> dict[str, Any]:
        data = self._video_bytes(job)  # may run ffmpeg: outside the lock
        with self._lock:
            stored = self._store_file(data, "output.mp4", "video/mp4").stored
            video = {"url": self._file_url(stored), "content_type": "video/mp4", "file_name": "output.mp4"}
            return {"video": {**video, "file_size": len(data)}}

    def _image_output(self, job: _Job) -> dict[str, Any]:
        payload = job.payload if isinstance(job.payload, dict) else {}
        candidates = [media.candidate_image(payload, i) for i in range(int(payload.get("num_images", 1)))]
        images = []
        with self._lock:
            for image in candidates:
                stored = self._store_file(image.data, image.file_name, image.content_type).stored
                images.append(
                    {
                        "url": self._file_url(stored),
                        "content_type": image.content_type,
                        "file_name": image.file_name,
                        "file_size": len(image.data),
                        "width": image.width,
                        "height": image.height,
                    }
                )
        return {"images": images, "description": ""}

    def _result_response(self, job: _Job) -> _Response:
        """The result GET for a completed job (caller checked state, expiry)."""
        outcome = job.outcome
        assert outcome is not None
        headers = {**_request_id_header(), **outcome.headers}
        if outcome.status != 200:
            return _json(outcome.status, outcome.body, headers)
        if job.output is None:
            made = self._image_output(job) if job.endpoint.kind == "image" else self._video_output(job)
            with self._lock:
                if job.output is None:  # two first GETs at once: the first one's files are the result
                    job.output = made
        return _json(200, copy.deepcopy(job.output), headers)

    # ------------------------------------------------------------------ HTTP dispatch

    @staticmethod
    def _classify(method: str, path: str) -> tuple[str, re.Match[str] | None]:
        if method == "POST" and path == "/storage/auth/token":
            return "token", None
        if method == "POST" and path == "/storage/upload/initiate":
            return "upload_initiate", None
        if method == "POST" and path == "/files/upload":
            return "upload", None
        if method == "POST" and path == "/files/upload/multipart":
            return "upload_multipart", None
        if method == "PUT" and (m := _PART_RE.match(path)):
            return "upload_part", m
        if method == "POST" and (m := _COMPLETE_RE.match(path)):
            return "upload_complete", m
        if method in ("GET", "HEAD") and path.startswith("/files/"):
            return "download", _FILE_RE.match(path)
        if method == "PUT" and (m := _GCS_RE.match(path)):
            return "upload", m
        if method == "POST" and path.startswith("/_run/"):
            return "run", None
        if m := _REQ_RE.match(path):
            tail = m["tail"]
            if method == "GET" and tail is None:
                return "result", m
            if method == "GET" and tail == "/status":
                return "status", m
            if method == "PUT" and tail == "/cancel":
                return "cancel", m
            return "unknown", m
        if method == "POST" and not path.startswith(("/files/", "/storage/", "/_")):
            return "submit", None
        return "unknown", None

    def _serve(self, h: _Handler) -> None:
        split = urlsplit(h.path)
        path = split.path
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in h.headers.items()}
        body = h.read_body()
        route, match = self._classify(h.command, path)
        parsed: Any = None
        if body and "json" in headers.get("content-type", ""):
            with contextlib.suppress(ValueError):
                parsed = json.loads(body)
        record = RequestRecord(
            method=h.command,
            path=path,
            query=query,
            route=route,
            headers=headers,
            json=parsed,
            body_size=len(body),
            time=self._now(),
            request_id=match["id"] if match is not None and route in ("status", "result", "cancel") else None,
        )
        with self._lock:
            self._records.append(record)
        if self.latency and not self._pause(self.latency):
            h.hard_close()
            return
        endpoint_id = self._endpoint_of(route, path, match)
        fault = self._take_pending(self._faults, route, endpoint_id) if route in ROUTES else None
        delay = self._take_pending(self._delays, route, endpoint_id) if route in ROUTES else None
        if delay is not None:
            _note_fault(record, "delay")
            if not delay.after_processing and not self._pause(delay.seconds):
                h.hard_close()  # stopping: the request never took effect
                return
        if fault is not None and fault.kind == "drop" and not fault.after_processing:
            _note_fault(record, "drop")
            h.hard_close()
            return
        try:
            if fault is not None and fault.kind == "fail" and not fault.after_processing:
                _note_fault(record, "ingress" if fault.ingress else "fail")
                resp = self._fault_response(route, fault, headers)
            else:
                resp = self._route(route, match, h.command, path, query, headers, body, parsed, record)
                record.processed = True
                if fault is not None and fault.kind == "fail":
                    _note_fault(record, "ingress" if fault.ingress else "fail")
                    resp = self._fault_response(route, fault, headers)
        except Exception:
            with self._lock:
                self.internal_errors.append(f"{h.command} {h.path}\n{traceback.format_exc()}")
            resp = _json(500, {"detail": "fakefal internal error (see server.internal_errors)"})
        if delay is not None and delay.after_processing and not self._pause(delay.seconds):
            h.hard_close()  # stopping: processed, never answered
            return
        if fault is not None and fault.kind == "drop":
            _note_fault(record, "drop")
            h.hard_close()
            return
        record.status = resp.status
        record.response_json = resp.json
        if route in _CDN_ROUTES:
            # fal_client never closes the httpx client it makes for each CDN upload; closing the
            # connection here keeps its socket from leaking into a ResourceWarning in the tests.
            resp.headers.setdefault("Connection", "close")
            h.close_connection = True
        try:
            h.send(resp)
        except OSError:
            h.close_connection = True  # e.g. the client gave up during a delay

    def _echo(self, headers: dict[str, str]) -> str:
        """What an error text ends with when `echo_key` is on: the credentials this request carried."""
        if not self.echo_key:
            return ""
        credentials = headers.get("authorization", "").partition(" ")[2].strip()
        return f" (for key {credentials}; key id {credentials.partition(':')[0]})"

    def _fault_response(self, route: str, fault: _Fault, headers_in: dict[str, str]) -> _Response:
        reason = _REASONS.get(fault.status, "Error")
        if fault.status == 404 and not fault.ingress and fault.body is None and route in _QUEUE_ROUTES:
            return _unknown_request(route, fault.headers)
        if fault.ingress:
            html = (
                f"<html>\r\n<head><title>{fault.status} {reason}</title></head>\r\n<body>\r\n"
                f"<center><h1>{fault.status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
                "</body>\r\n</html>\r\n"
            )
            body = html if fault.body is None else fault.body
            if isinstance(body, str):
                return _Response(fault.status, body.encode(), "text/html", dict(fault.headers))
            return _json(fault.status, body, dict(fault.headers))
        headers = _request_id_header()
        error_type = _APP_ERROR_TYPES.get(fault.status)
        if fault.body is not None:
            obj = fault.body
        elif fault.status == 429:
            obj = {"detail": "Too many requests, please retry later" + self._echo(headers_in)}
        elif error_type is not None:
            obj = {"detail": reason + self._echo(headers_in), "error_type": error_type}
            headers["X-Fal-Error-Type"] = error_type
        else:
            obj = {"detail": reason + self._echo(headers_in)}
        return _json(fault.status, obj, {**headers, **fault.headers})

    def _route(
        self,
        route: str,
        match: re.Match[str] | None,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        parsed: Any,
        record: RequestRecord,
    ) -> _Response:
        if route in ("submit", "run"):
            return self._handle_submit(route, path, query, headers, body, parsed, record)
        if route in ("status", "result", "cancel"):
            assert match is not None
            return self._handle_queue(route, match, query, headers, record)
        if route == "token":
            return self._handle_token(query, headers)
        if route == "upload_initiate":
            return self._handle_initiate(headers, parsed)
        if route == "upload" and match is not None:
            return self._handle_gcs_put(match, headers, body)
        if route == "upload":
            return self._handle_cdn_upload(headers, body)
        if route in ("upload_multipart", "upload_part", "upload_complete"):
            return self._handle_multipart(route, match, headers, body, parsed)
        if route == "download":
            return self._handle_download(match, method, headers)
        return _json(404, {"detail": "Not Found"})

    # -- auth

    def _key_error(self, headers: dict[str, str]) -> _Response | None:
        auth = headers.get("authorization")
        if not auth:
            return _json(401, {"detail": "Missing authorization header"})
        scheme, _, credentials = auth.partition(" ")
        if scheme.lower() != "key" or credentials.strip() != self.key:
            return _json(401, {"detail": "No user found for Key ID and Secret"})
        return None

    def _bearer_error(self, headers: dict[str, str]) -> _Response | None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        with self._lock:
            expires = self._tokens.get(token.strip())
        if scheme.lower() != "bearer" or expires is None or self._now() >= expires:
            return _json(401, {"detail": "Invalid or expired token"})
        return None

    # -- queue

    def _handle_submit(
        self,
        route: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        parsed: Any,
        record: RequestRecord,
    ) -> _Response:
        if error := self._key_error(headers):
            return error
        endpoint_id = path.removeprefix("/_run" if route == "run" else "").strip("/")
        endpoint = self.endpoints.get(endpoint_id)
        if endpoint is None:
            return _json(404, {"detail": f"Application '{endpoint_id}' not found"})
        if parsed is None:
            try:
                parsed = json.loads(body or b"null")
            except ValueError:
                return _json(
                    422, {"detail": [{"loc": ["body"], "msg": "invalid JSON body", "type": "value_error.jsondecode"}]}
                )
        with self._lock:
            job = self._create_job(endpoint, parsed, headers, query, "queue" if route == "submit" else "run")
            record.request_id = job.request_id
            position = self._position(job)
            urls = self._urls(job)
        if route == "run":
            return self._wait_for_run(job)
        reply = {
            "status": IN_QUEUE,
            "request_id": job.request_id,
            **urls,
            "gateway_request_id": job.request_id,
            "queue_position": position or 0,
        }
        return _json(200, reply, {"x-fal-request-id": job.request_id})

    def _wait_for_run(self, job: _Job) -> _Response:
        deadline = time.monotonic() + max(60.0, job.job_seconds * 20)
        while time.monotonic() < deadline:
            with self._lock:
                self._advance(self._now())
                if job.state == COMPLETED:
                    break
            time.sleep(0.005)
        else:
            return _json(504, {"detail": "fakefal: run() did not finish", "error_type": "request_timeout"})
        return self._result_response(job)

    def _handle_queue(
        self, route: str, match: re.Match[str], query: dict[str, str], headers: dict[str, str], record: RequestRecord
    ) -> _Response:
        if error := self._key_error(headers):
            return error
        with self._lock:
            now = self._now()
            self._advance(now)
            job = self._jobs.get(match["id"])
            if job is not None and job.endpoint.owner_alias != match["app"]:
                job = None
            if job is None:
                return _unknown_request(route)
            if route == "status":
                code, body = self._status_body(job, query.get("logs", "").lower() in ("true", "1"))
                if (word := self._take_status_word(job.request_id)) is not None:
                    _note_fault(record, "status_word")
                    code, body = 200, {"status": word, "request_id": job.request_id, **self._urls(job), "logs": None}
                    if word == IN_QUEUE:
                        body["queue_position"] = 0
                return _json(code, body, {"x-fal-request-id": job.request_id})
            if route == "cancel":
                if job.state == COMPLETED:
                    return _json(400, {"status": "ALREADY_COMPLETED"})
                if job.state == IN_QUEUE or self.honour_cancel:
                    job.cancelled = True
                    self._finish(job, now, self._cancelled_outcome())
                    self._clock = max(self._clock, now)
                    self._advance(now)
                else:
                    job.cancelled = True
                    self._log(job, now, "Cancellation requested; the app ignores it", "WARNING")
                return _json(202, {"status": "CANCELLATION_REQUESTED"})
            # result
            if job.state != COMPLETED:
                return _json(400, {"detail": "Request is still in progress"}, _request_id_header())
            assert job.finished_at is not None
            ttl = self.result_ttl
            if job.expired or (ttl is not None and now >= job.finished_at + ttl):
                return _unknown_request(route)
        return self._result_response(job)

    # -- storage

    def _handle_token(self, query: dict[str, str], headers: dict[str, str]) -> _Response:
        if error := self._key_error(headers):
            return error
        if query.get("storage_type") != "fal-cdn-v3":
            return _json(400, {"detail": f"Unsupported storage_type {query.get('storage_type')!r}"})
        token = secrets.token_urlsafe(24)
        now = self._now()
        with self._lock:
            self._tokens[token] = now + self.cdn_token_ttl
        return _json(
            200,
            {
                "token": token,
                "token_type": "Bearer",
                "base_url": self.url,
                "expires_at": self._iso(now + self.cdn_token_ttl),
            },
        )

    def _default_name(self, headers: dict[str, str]) -> tuple[str, str]:
        content_type = headers.get("content-type", "application/octet-stream")
        name = headers.get("x-fal-file-name") or ("file" + (mimetypes.guess_extension(content_type) or ".bin"))
        return name, content_type

    def _handle_cdn_upload(self, headers: dict[str, str], body: bytes) -> _Response:
        if error := self._bearer_error(headers):
            return error
        name, content_type = self._default_name(headers)
        lifecycle, expires_in = self._lifecycle(headers)
        with self._lock:
            stored = self._store_file(body, name, content_type, expires_in=expires_in)
            self._record_upload(stored.stored, "cdn", lifecycle)
        return _json(200, {"access_url": stored.url})

    def _handle_initiate(self, headers: dict[str, str], parsed: Any) -> _Response:
        if error := self._key_error(headers):
            return error
        if not isinstance(parsed, dict) or not isinstance(parsed.get("content_type"), str):
            return _json(
                422,
                {"detail": [{"loc": ["body", "content_type"], "msg": "field required", "type": "value_error.missing"}]},
            )
        lifecycle, expires_in = self._lifecycle(headers)
        with self._lock:
            stored = self._store_file(
                b"", str(parsed.get("file_name") or "upload.bin"), parsed["content_type"], expires_in=expires_in
            )
            stored.stored.complete = False
            self._multipart[f"gcs:{stored.stored.file_id}"] = {"lifecycle": lifecycle}
        upload_url = f"{self.url}/_gcs/{stored.stored.file_id}?X-Goog-Signature=fakefal"
        return _json(200, {"upload_url": upload_url, "file_url": stored.url})

    def _handle_gcs_put(self, match: re.Match[str], headers: dict[str, str], body: bytes) -> _Response:
        with self._lock:
            stored = self._files.get(match["id"])
            pending = self._multipart.pop(f"gcs:{match['id']}", None)
            if stored is None or pending is None:
                return _Response(404, b"NoSuchUpload", "text/plain")
            stored.data = body
            stored.complete = True
            if headers.get("content-type"):
                stored.content_type = headers["content-type"]
            self._record_upload(stored, "gcs", pending["lifecycle"])
        return _Response(200, b"", None)

    def _handle_multipart(
        self, route: str, match: re.Match[str] | None, headers: dict[str, str], body: bytes, parsed: Any
    ) -> _Response:
        if error := self._bearer_error(headers):
            return error
        with self._lock:
            if route == "upload_multipart":
                name, content_type = self._default_name(headers)
                lifecycle, expires_in = self._lifecycle(headers)
                stored = self._store_file(b"", name, content_type, expires_in=expires_in)
                stored.stored.complete = False
                upload_id = uuid.uuid4().hex
                self._multipart[upload_id] = {"file_id": stored.stored.file_id, "parts": {}, "lifecycle": lifecycle}
                return _json(200, {"access_url": stored.url, "uploadId": upload_id})
            assert match is not None
            upload = self._multipart.get(match["upload"])
            if upload is None or upload.get("file_id") != match["id"]:
                return _json(404, {"detail": "Upload not found"})
            if route == "upload_part":
                etag = hashlib.md5(body).hexdigest()
                upload["parts"][int(match["part"])] = (etag, body)
                return _Response(200, b"", None, {"ETag": f'"{etag}"'})
            parts = parsed.get("parts") if isinstance(parsed, dict) else None
            if not isinstance(parts, list) or not parts:
                return _json(400, {"detail": "parts required"})
            chunks = []
            for part in sorted(parts, key=lambda p: int(p["partNumber"])):
                have = upload["parts"].get(int(part["partNumber"]))
                if have is None or have[0] != str(part.get("etag", "")).strip('"'):
                    return _json(400, {"detail": f"part {part['partNumber']} missing or ETag mismatch"})
                chunks.append(have[1])
            stored_file = self._files[match["id"]]
            stored_file.data = b"".join(chunks)
            stored_file.complete = True
            del self._multipart[match["upload"]]
            self._record_upload(stored_file, "multipart", upload["lifecycle"])
            return _json(200, {"access_url": self._file_url(stored_file)})

    def _handle_download(self, match: re.Match[str] | None, method: str, headers: dict[str, str]) -> _Response:
        with self._lock:
            stored = self._files.get(match["id"]) if match else None
            if match is None or stored is None or stored.file_name != unquote(match["name"]) or not self._live(stored):
                return _json(404, {"detail": "File not found"})
            truncate = False
            if method == "GET" and self._truncate_downloads > 0:
                self._truncate_downloads -= 1
                truncate = True
            data = stored.data
            content_type = stored.content_type
        base_headers = {"Accept-Ranges": "bytes", "ETag": f'"{hashlib.md5(data).hexdigest()}"'}
        status = 200
        range_header = headers.get("range", "")
        if m := re.fullmatch(r"bytes=(\d*)-(\d*)", range_header.strip()):
            size = len(data)
            if m[1]:
                start, end = int(m[1]), int(m[2]) if m[2] else size - 1
            else:
                start, end = max(0, size - int(m[2] or 0)), size - 1
            end = min(end, size - 1)
            if start >= size or start > end:
                return _Response(416, b"", None, {"Content-Range": f"bytes */{size}"})
            base_headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            data = data[start : end + 1]
            status = 206
        return _Response(status, data, content_type, base_headers, truncate=truncate, head_only=method == "HEAD")
