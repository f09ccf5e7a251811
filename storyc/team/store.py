"""A content-addressed team store for paid renders, on an object store the team already runs.

Several clones of one board (people, CI) share one store so that nobody pays fal twice for the same
request (its content key, `sha256:<hex>`) and any paid video can be fetched back later for $0.
The store is reached only through `obstore` (S3, GCS, Azure, a local directory, memory), and every
object in it is created once and never changed: there is no compare-and-swap anywhere (the local
store has none), only "create if absent" (`mode="create"`, `AlreadyExistsError` for the loser).

Under the URL's prefix (`s3://bucket/team/film` -> keys under `team/film/`):

    claims/<hex>/<n>.json            {"key", "n", "owner", "claimed_at", "lease_until", "nonce", "holder"}
    claims/<hex>/<n>.alive/<k>.json  {"k"}        claim n's holder is alive (k = 1, 2, ...: one every few seconds)
    claims/<hex>/<n>.sending.json    {"sent_at"}              claim n's holder is sending its submit now
    claims/<hex>/<n>.released.json   {"released_at", "reason"}  fal proved it did not take it: key free
    claims/<hex>/<n>.submitted.json  {"request_id", "endpoint", "submitted_at"}   fal accepted claim n
    claims/<hex>/<n>.unknown.json    {"sent_at", "reason"}        claim n's submit got no answer
    done/<hex>.json                  the record: scene, endpoint, request id, seconds, cost, video
                                     (a still's: still, endpoint, request id, cost, images)
    videos/<hex of video sha256>.mp4 the bytes, put only once verified; done/ only after them
    images/<hex of image sha256>.png a still's candidates, likewise

Claiming: whoever creates `claims/<hex>/<n>.json` first owns the key for its lease.  Its holder
writes `.sending` just before the submit goes out, then `.submitted` or `.unknown` with the answer.
A new claim n+1 may be created only when no claim of the key has a `.sending`, `.submitted` or
`.unknown` beside it (money may have been spent: the others fetch that request, or report
"unknown") and the highest claim's lease has expired or its holder is known to be dead (it died
before sending anything).  A claim whose holder died after `.sending` and before the answer is
"unknown" to everyone once its lease is over or its holder is known dead: fal may have it, so
nobody pays for it again without an explicit choice.
A claim's holder says it is alive with heartbeats (`.alive/<k>`, see `storyc.team.liveness`), so
that a holder that died is known within about a minute, not at the end of its lease: a reader
passes `gone` to `claim` to judge that.  Judged dead while alive, a holder still never pays twice
with another clone: `mark_sending` writes `.sending`, then checks that nobody claimed the key after
it (and that no other claim is sending) before the submit may go out.
Two clones racing for the same n are settled by the store: one create succeeds, the other gets
`AlreadyExistsError`, re-reads and reports the winner.  The `nonce` tells a claimer its own claim
apart from anyone else's when a create it sent is answered "already exists" (a retried request
whose first try did land).

The lease: `DEFAULT_LEASE` is 5 minutes for this module's callers; the render layer
(`storyc.team.layer.CLAIM_LEASE`) uses 15, because a submit there is up to 4 attempts of fal_client's
120 s timeout.  Once `.sending` is written the lease no longer frees the key (see above), so the
lease only bounds how long a holder that died before sending anything blocks the others, when its
heartbeats do not tell sooner (a claim written by an older storyc has none).  Leases are judged by
each reader's clock: machines are assumed to keep time within seconds of each other (NTP), not
minutes.  Heartbeats compare no clocks (see `storyc.team.liveness`).

Every store failure (unreachable, 5xx after obstore's own retries, permission refused, timeout) is
a `StoreError` naming the store by its display URL (never credentials or query strings), what
failed, and what to do.  One request, retries included, gives up after about
`STORYC_STORE_TIMEOUT` seconds (default 15) rather than obstore's default of minutes.

obstore is imported lazily, inside functions, so `storyc --version` does not load it.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn, TypeVar
from urllib.parse import unquote, urlsplit

from storyc.diagnostics import StorycError, redact, secrets_in, strip_userinfo
from storyc.fsutil import atomic_writer

if TYPE_CHECKING:
    from obstore import GetResult, ObjectMeta
    from obstore.store import ClientConfig, ObjectStore, RetryConfig

DEFAULT_LEASE = timedelta(minutes=5)
DEFAULT_TIMEOUT = 15.0  # seconds for one store request, retries included (STORYC_STORE_TIMEOUT)
STORE_ENV = "STORYC_STORE"
TIMEOUT_ENV = "STORYC_STORE_TIMEOUT"
ACCEPTED_FORMS = (
    "s3://BUCKET[/PREFIX], gs://BUCKET[/PREFIX], az://CONTAINER[/PREFIX], file:///ABSOLUTE/DIR or memory://[NAME]"
)
_KEY = re.compile(r"^sha256:([0-9a-f]{64})$")
_CLAIM_FILE = re.compile(r"^([1-9][0-9]*)(\.submitted|\.unknown|\.sending|\.released)?\.json$")
_BEAT_FILE = re.compile(r"^([1-9][0-9]*)\.alive/([1-9][0-9]*)\.json$")
_SETTLING = (".submitted", ".unknown", ".sending")  # notes that say money may have been spent on a claim
_CHUNK = 1024 * 1024
_LIST_WHEN_MORE_THAN = 8  # done_keys: one list of done/ beats this many HEAD requests
_CLAIM_ATTEMPTS = 5
_CONFLICT = re.compile(r"ConditionalRequestConflict|\b409 Conflict\b")

T = TypeVar("T")


class StoreError(StorycError):
    """The team store could not be used: says which store (no credentials), what failed and what to do."""


class _Invalid(ValueError):
    """An object in the store is not what storyc writes."""


# --- records ----------------------------------------------------------------------------------


def _hex(key: str) -> str:
    match = _KEY.match(key) if isinstance(key, str) else None
    if match is None:
        raise ValueError(f"not a content key (sha256:<64 lowercase hex>): {key!r}")
    return match.group(1)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _moment(raw: Any, what: str) -> datetime:
    if not isinstance(raw, str) or not raw.endswith("Z"):
        raise ValueError(f"{what} is not a UTC time like 2026-12-03T10:00:00Z: {raw!r}")
    try:
        return datetime.fromisoformat(raw[:-1] + "+00:00")
    except ValueError:
        raise ValueError(f"{what} is not a UTC time like 2026-12-03T10:00:00Z: {raw!r}") from None


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} is missing or not a string")
    return value


def _integer(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} is missing or not a non-negative integer")
    return value


def _mapping(raw: bytes | str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{what} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _Invalid(f"{what} is not a JSON object")
    return data


def _dumps(data: Mapping[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def default_owner() -> str:
    """`user@host pid N`: who holds a claim, for people reading it (never a secret)."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "someone"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


@dataclass(frozen=True)
class DoneRecord:
    """A paid render whose files are in the store: `done/<hex>.json`.

    A scene's record names its video; a still's (`still` set) names its candidates, in order, and
    has no video or seconds.
    """

    key: str
    scene: str
    endpoint: str
    request_id: str
    seconds: int
    cost_usd: Decimal
    video_sha256: str
    video_bytes: int
    stored_at: datetime
    still: str | None = None
    images: tuple[tuple[str, int], ...] = ()  # a still's candidates: (sha256, bytes)

    def to_json(self) -> str:
        _hex(self.key)
        head: dict[str, Any] = {"key": self.key}
        if self.still is not None:
            for sha256, _ in self.images:
                _hex(sha256)
            head["still"] = self.still
            files: dict[str, Any] = {"images": [{"sha256": sha256, "bytes": size} for sha256, size in self.images]}
        else:
            _hex(self.video_sha256)
            head["scene"] = self.scene
            files = {"seconds": self.seconds, "video": {"sha256": self.video_sha256, "bytes": self.video_bytes}}
        return _dumps(
            {
                **head,
                "endpoint": self.endpoint,
                "request_id": self.request_id,
                "cost_usd": str(self.cost_usd),
                **files,
                "stored_at": _iso(self.stored_at),
            }
        ).decode()

    @property
    def files(self) -> tuple[tuple[str, str], ...]:
        """What the record's render made, as (sha256, kind) of the store's content."""
        if self.still is not None:
            return tuple((sha256, "image") for sha256, _ in self.images)
        return ((self.video_sha256, "video"),)

    @classmethod
    def from_json(cls, raw: str | bytes) -> DoneRecord:
        """Parse a record; ValueError says what is wrong with it."""
        data = _mapping(raw, "the done record")
        try:
            cost = Decimal(_text(data, "cost_usd"))
        except InvalidOperation:
            raise ValueError(f"cost_usd is not a decimal number: {data.get('cost_usd')!r}") from None
        if not cost.is_finite() or cost < 0:
            raise ValueError(f"cost_usd is not a non-negative amount: {data.get('cost_usd')!r}")
        common: dict[str, Any] = {
            "key": _text(data, "key"),
            "endpoint": _text(data, "endpoint"),
            "request_id": _text(data, "request_id"),
            "cost_usd": cost,
            "stored_at": _moment(data.get("stored_at"), "stored_at"),
        }
        if "still" in data:
            record = cls(
                **common,
                scene="",
                seconds=0,
                video_sha256="",
                video_bytes=0,
                still=_text(data, "still"),
                images=_images(data.get("images")),
            )
        else:
            video = data.get("video")
            if not isinstance(video, dict):
                raise _Invalid("video is missing or not an object")
            record = cls(
                **common,
                scene=_text(data, "scene"),
                seconds=_integer(data, "seconds"),
                video_sha256=_text(video, "sha256"),
                video_bytes=_integer(video, "bytes"),
            )
            _hex(record.video_sha256)
        _hex(record.key)
        return record


def _images(raw: Any) -> tuple[tuple[str, int], ...]:
    """A still record's candidates: a non-empty list of {sha256, bytes}."""
    if not isinstance(raw, list) or not raw or not all(isinstance(i, dict) for i in raw):
        raise _Invalid("images is missing or not a list of objects")
    images = tuple((_text(i, "sha256"), _integer(i, "bytes")) for i in raw)
    for sha256, _ in images:
        _hex(sha256)
    return images


@dataclass(frozen=True)
class Holder:
    """Where a claim's holder runs and how it shows it is alive (see `storyc.team.liveness`)."""

    host: str  # for people reading the claim
    pid: int
    process: str  # identifies the process on its machine (boot, pid namespace, start time); "" if unknown
    beat_every: float  # seconds between its heartbeats
    dead_after: float  # seconds without a new heartbeat after which it may be taken for dead

    def to_data(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "pid": self.pid,
            "process": self.process,
            "beat_every": self.beat_every,
            "dead_after": self.dead_after,
        }

    @classmethod
    def from_data(cls, data: Any) -> Holder | None:
        """The holder a claim records; None when it records none, or one storyc can't use (then its lease decides)."""
        if not isinstance(data, dict):
            return None
        host, pid, process = data.get("host"), data.get("pid"), data.get("process")
        every, dead = _seconds(data.get("beat_every")), _seconds(data.get("dead_after"))
        if not (isinstance(host, str) and isinstance(process, str) and isinstance(pid, int) and pid > 0):
            return None
        if every is None or dead is None or not 0 < every < dead:
            return None
        return cls(host, pid, process, every, dead)


def _seconds(value: Any) -> float | None:
    """A JSON number as seconds, or None for anything else (true and false included)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class ClaimInfo:
    """Claim n on a key, with what its holder wrote beside it since."""

    key: str
    n: int
    owner: str
    claimed_at: datetime
    lease_until: datetime
    request_id: str | None = None  # fal accepted the submit (`<n>.submitted.json`)
    endpoint: str | None = None
    unknown: bool = False  # the submit got no answer (`<n>.unknown.json`): fal may have accepted it
    reason: str | None = None  # why it is unknown, as its holder wrote it
    nonce: str = ""
    sending: bool = False  # the holder was about to send its submit (`<n>.sending.json`)
    released: bool = False  # fal proved it did not take the submit (429s, no connection): the key is free
    holder: Holder | None = None  # None: written without heartbeats (an older storyc); its lease alone counts
    beats: int = 0  # the newest heartbeat listed beside the claim (0: none yet)

    def live(self, now: datetime) -> bool:
        """The lease has not expired (whatever was written beside the claim), and was not given up."""
        return now < self.lease_until and not self.released

    @property
    def settled(self) -> bool:
        """Money may have been spent on this claim: nobody may submit the key again."""
        return not self.released and (self.request_id is not None or self.unknown or self.sending)

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "key": self.key,
            "n": self.n,
            "owner": self.owner,
            "claimed_at": _iso(self.claimed_at),
            "lease_until": _iso(self.lease_until),
            "nonce": self.nonce,
        }
        if self.holder is not None:
            data["holder"] = self.holder.to_data()
        return _dumps(data).decode()

    @classmethod
    def from_json(cls, raw: str | bytes) -> ClaimInfo:
        data = _mapping(raw, "the claim")
        nonce = data.get("nonce", "")
        claim = cls(
            key=_text(data, "key"),
            n=_integer(data, "n"),
            owner=_text(data, "owner"),
            claimed_at=_moment(data.get("claimed_at"), "claimed_at"),
            lease_until=_moment(data.get("lease_until"), "lease_until"),
            nonce=nonce if isinstance(nonce, str) else "",
            holder=Holder.from_data(data.get("holder")),
        )
        _hex(claim.key)
        return claim


# --- where the store is -----------------------------------------------------------------------


def store_url(environ: Mapping[str, str], board_default: str | None) -> str | None:
    """The store to use: STORYC_STORE wins over the board's committed default; "" or "none" means none."""
    chosen = environ[STORE_ENV].strip() if STORE_ENV in environ else (board_default or "").strip()
    if not chosen or chosen.lower() == "none":
        return None
    return chosen


@dataclass(frozen=True)
class _Location:
    scheme: str  # s3, gs, az, file, memory
    bucket: str  # bucket or container; the directory for file; the name for memory
    prefix: str  # inside the bucket, no leading or trailing "/"
    display: str


def _bad_url(why: str) -> NoReturn:
    raise StoreError(f"team store URL {why}; accepted forms: {ACCEPTED_FORMS}")


def _parse_url(url: str) -> _Location:
    if not isinstance(url, str) or not url.strip():
        _bad_url("is empty")
    text = url.strip()
    scheme, sep, _rest = text.partition("://")
    if not sep:
        _bad_url(f"has no scheme ({_preview(text)})")
    scheme = scheme.lower()
    if scheme not in {"s3", "gs", "az", "file", "memory"}:
        _bad_url(f"has an unsupported scheme {scheme!r}")
    parts = urlsplit(text)
    if parts.query or parts.fragment or "?" in text or "#" in text:
        _bad_url(f"{scheme}://...: has a query or fragment; put settings and credentials in the environment")
    if "@" in parts.netloc:
        _bad_url(f"{scheme}://...: carries credentials; put them in the environment, not in the URL")
    path = unquote(parts.path)
    if scheme == "file":
        if parts.netloc not in {"", "localhost"}:
            _bad_url(f"file://{parts.netloc}/...: names a host; use file:///ABSOLUTE/DIR")
        if not path.startswith("/"):
            _bad_url("file:// needs an absolute directory, like file:///srv/storyc")
        folder = os.path.normpath(path)
        return _Location("file", folder, "", f"file://{folder}")
    if scheme == "memory":
        name = (parts.netloc + path).strip("/")
        return _Location("memory", name, "", f"memory://{name}")
    bucket = parts.netloc
    if not bucket or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", bucket):
        _bad_url(f"{scheme}://: needs a bucket name (got {_preview(bucket)})")
    segments = [s for s in path.split("/") if s]
    if any(s in {".", ".."} for s in segments) or "//" in path.strip("/"):
        _bad_url(f"{scheme}://{bucket}/...: has an empty, '.' or '..' path segment")
    prefix = "/".join(segments)
    display = f"{scheme}://{bucket}/{prefix}" if prefix else f"{scheme}://{bucket}"
    return _Location(scheme, bucket, prefix, display)


def _preview(text: str) -> str:
    """A bit of a user's input for a message, with anything after '@', '?' or '#' dropped."""
    cut = re.split(r"[@?#]", text, maxsplit=1)[0]
    return repr(cut[:60])


_MEMORY: dict[str, ObjectStore] = {}
_MEMORY_LOCK = threading.Lock()


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _timeouts(budget: float) -> tuple[ClientConfig, ClientConfig, RetryConfig]:
    """Client options for small objects, for videos, and the retry policy, for a per-request budget."""
    half = timedelta(seconds=budget / 2)
    connect = timedelta(seconds=min(5.0, max(0.5, budget / 3)))
    small: ClientConfig = {"connect_timeout": connect, "timeout": half}
    # A video may take minutes: no overall cap, but a connection silent for the budget is dead.
    bulk: ClientConfig = {"connect_timeout": connect, "timeout": timedelta(hours=2), "read_timeout": half * 2}
    retry: RetryConfig = {
        "max_retries": 10,
        "retry_timeout": half,
        "backoff": {
            "init_backoff": timedelta(milliseconds=100),
            "max_backoff": timedelta(seconds=max(0.2, budget / 8)),
            "base": 2,
        },
    }
    return small, bulk, retry


def _budget(environ: Mapping[str, str]) -> float:
    raw = environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 600:
        raise StoreError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds between 0 and 600")
    return value


def _s3_settings(environ: Mapping[str, str], display: str) -> tuple[dict[str, Any], bool]:
    """S3 settings from `environ`, passed explicitly so that a given environ (not only the process's) counts.

    obstore's S3Store reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION,
    AWS_DEFAULT_REGION, AWS_ENDPOINT_URL(_S3) and AWS_ALLOW_HTTP from the process environment itself;
    it does not read ~/.aws profiles (AWS_PROFILE) or their region.
    """
    config: dict[str, Any] = {}
    for name, field in (
        ("AWS_ACCESS_KEY_ID", "access_key_id"),
        ("AWS_SECRET_ACCESS_KEY", "secret_access_key"),
        ("AWS_SESSION_TOKEN", "session_token"),
    ):
        if environ.get(name):
            config[field] = environ[name]
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if region:
        config["region"] = region
    endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or environ.get("AWS_ENDPOINT")
    allow_http = _truthy(environ.get("AWS_ALLOW_HTTP"))
    if endpoint:
        if endpoint.lower().startswith("http://") and not allow_http:
            raise StoreError(
                f"team store {display}: the S3 endpoint {strip_userinfo(endpoint)} is plain http; "
                "set AWS_ALLOW_HTTP=true to allow it (only for a local or trusted network), or use https"
            )
        config["endpoint"] = endpoint
    return config, allow_http


def _open_cloud(loc: _Location, environ: Mapping[str, str], client: ClientConfig, retry: RetryConfig) -> ObjectStore:
    from obstore.store import AzureStore, GCSStore, S3Store

    prefix = loc.prefix or None
    if loc.scheme == "s3":
        config, allow_http = _s3_settings(environ, loc.display)
        options: ClientConfig = {**client, "allow_http": True} if allow_http else client
        return S3Store(loc.bucket, prefix=prefix, client_options=options, retry_config=retry, **config)
    if loc.scheme == "gs":
        return GCSStore(loc.bucket, prefix=prefix, client_options=client, retry_config=retry)
    return AzureStore(loc.bucket, prefix=prefix, client_options=client, retry_config=retry)


def open_team_store(url: str, *, environ: Mapping[str, str] | None = None) -> TeamStore:
    """Open (and, for cloud stores, reach once) the team store at `url`; StoreError says what is wrong.

    S3 takes the standard AWS_* variables from `environ` (default: the process's); GCS and Azure take
    obstore's own (GOOGLE_*, AZURE_*) from the process environment.  STORYC_STORE_TIMEOUT (seconds,
    default 15) bounds one request, retries included.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    loc = _parse_url(url)
    secrets = secrets_in(env)
    if loc.scheme == "memory":
        from obstore.store import MemoryStore

        with _MEMORY_LOCK:
            store = _MEMORY.setdefault(loc.bucket, MemoryStore())
        return TeamStore(loc.display, store, store, secrets=secrets)
    if loc.scheme == "file":
        from obstore.store import LocalStore

        folder = Path(loc.bucket)
        if not folder.is_dir():
            raise StoreError(
                f"team store {loc.display}: no such directory; a shared store must exist already "
                "(a missing one is most likely a typo or an unmounted share): check the path, or create it"
            )
        try:
            store = LocalStore(folder)
        except Exception as exc:
            raise _store_error(loc.display, "open the directory", exc, secrets) from None
        return TeamStore(loc.display, store, store, secrets=secrets)
    small, bulk, retry = _timeouts(_budget(env))
    try:
        meta = _open_cloud(loc, env, small, retry)
        videos = _open_cloud(loc, env, bulk, retry)
    except StoreError:
        raise
    except Exception as exc:
        raise _store_error(loc.display, "configure the store", exc, secrets) from None
    team = TeamStore(loc.display, meta, videos, secrets=secrets)
    team.check()
    return team


# --- errors -----------------------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    """obstore's first line, plus the root cause its debug dump names (connection refused, timed out)."""
    text = str(exc)
    head, _, debug = text.partition("Debug source:")
    first = " ".join(head.split())
    first = re.sub(r":\s*<\?xml.*$", "", first)  # the S3 error body; its code is named below if useful
    code = re.search(r"<Code>(\w+)</Code>", text)
    if code and code.group(1) not in first:
        first += f" ({code.group(1)})"
    causes = re.findall(r'message: "([^"]{1,120})"', debug)
    if causes and causes[-1] not in first:
        first += f": {causes[-1]}"
    if len(first) > 400:
        first = first[:400] + "..."
    return first or type(exc).__name__


def _advice(exc: BaseException, display: str) -> str:
    from obstore.exceptions import PermissionDeniedError, UnauthenticatedError

    text = str(exc)
    scheme = display.split("://", 1)[0]
    creds = {
        "s3": "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or the instance's role",
        "gs": "GOOGLE_APPLICATION_CREDENTIALS or GOOGLE_SERVICE_ACCOUNT",
        "az": "AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY or a SAS token",
    }.get(scheme, "the credentials")
    if isinstance(exc, PermissionDeniedError | UnauthenticatedError) or re.search(r"\b40[13]\b", text):
        return f"check that {creds} are set and may read and create objects under this prefix"
    if "NoSuchBucket" in text or "ContainerNotFound" in text or isinstance(exc, FileNotFoundError):
        return "check the bucket (or container) name in the URL; storyc does not create buckets"
    if re.search(r"connect|timed ?out|timeout|error sending request|dns|resolve", text, re.IGNORECASE):
        return (
            "check the network and the endpoint (AWS_ENDPOINT_URL for S3-compatible stores), "
            f"raise {TIMEOUT_ENV} for a slow link, or set {STORE_ENV}=none to work without the team store"
        )
    return f"try again later; if it persists, check the store, or set {STORE_ENV}=none to work without it"


def _store_error(display: str, what: str, exc: BaseException, secrets: Iterable[str]) -> StoreError:
    if isinstance(exc, StoreError):
        return exc
    message = f"team store {display}: could not {what}: {_reason(exc)}; {_advice(exc, display)}"
    return StoreError(redact(message, secrets))


class _Signal(Exception):
    """An answer the store's methods handle themselves, not a failure."""


class _Gone(_Signal):
    """The object is not there (obstore's FileNotFoundError)."""


class _Exists(_Signal):
    """A create found the object there already (obstore's AlreadyExistsError)."""


class _Changed(_Signal):
    """The file's bytes changed between the check and the upload."""


# --- the store --------------------------------------------------------------------------------


class TeamStore:
    """The team store of one URL; safe to share between threads."""

    url: str
    requests: int

    def __init__(
        self,
        url: str,
        store: ObjectStore,
        video_store: ObjectStore | None = None,
        *,
        secrets: Iterable[str] = (),
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.url = url
        self.requests = 0
        self._store = store
        self._videos = video_store if video_store is not None else store
        self._secrets = tuple(secrets)
        self._clock = clock
        self._count_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TeamStore({self.url!r})"

    # -- plumbing --

    def _counted(self, n: int = 1) -> None:
        with self._count_lock:
            self.requests += n

    def _call(self, what: str, call: Callable[[], T], *, creating: bool = False) -> T:
        """One store request: "not found" is _Gone, "already exists" _Exists, any other failure a StoreError."""
        from obstore.exceptions import AlreadyExistsError

        self._counted()
        try:
            return call()
        except FileNotFoundError:
            raise _Gone from None
        except AlreadyExistsError:
            raise _Exists from None
        except (_Signal, StoreError):
            raise
        except Exception as exc:
            if creating and _CONFLICT.search(str(exc)):  # S3: another create of this name was in flight
                raise _Exists from None
            raise _store_error(self.url, what, exc, self._secrets) from None

    def _read(self, path: str) -> bytes | None:
        import obstore

        try:
            return bytes(self._call(f"read {path}", lambda: obstore.get(self._store, path).bytes()))
        except _Gone:
            return None

    def _create(self, path: str, data: bytes) -> bool:
        """Create `path`; False if it exists already."""
        import obstore

        try:
            self._call(f"write {path}", lambda: obstore.put(self._store, path, data, mode="create"), creating=True)
        except _Gone:
            raise self._no_bucket(f"write {path}") from None
        except _Exists:
            return False
        return True

    def _create_or_read(self, path: str, data: bytes) -> bytes | None:
        """Create `path`: None if this call did, else what is there (re-tried while a conflict leaves nothing)."""
        for _ in range(_CLAIM_ATTEMPTS):
            if self._create(path, data):
                return None
            existing = self._read(path)
            if existing is not None:
                return existing
        raise StoreError(
            f"team store {self.url}: could not write {path}: the store kept answering 'already exists' "
            "for an object it does not show; try again, and check the store if it persists"
        )

    def _no_bucket(self, what: str) -> StoreError:
        return StoreError(
            f"team store {self.url}: could not {what}: the bucket (or container) was not found; "
            "check its name in the URL; storyc does not create buckets"
        )

    def _head(self, store: ObjectStore, path: str) -> ObjectMeta | None:
        """The object's metadata, or None if it is not there."""
        import obstore

        try:
            return self._call(f"look for {path}", lambda: obstore.head(store, path))
        except _Gone:
            return None

    def _list(self, prefix: str) -> list[str]:
        """Names (relative to `prefix`) of the objects under `prefix`."""
        import obstore

        def collect() -> list[str]:
            names: list[str] = []
            for chunk in obstore.list(self._store, prefix, chunk_size=1000):
                names.extend(meta["path"] for meta in chunk)
            return names

        paths = self._call(f"list {prefix}", collect)
        self._counted(len(paths) // 1000)  # S3 and friends page by 1000
        return [p[len(prefix) :] if p.startswith(prefix) else p.rsplit("/", 1)[-1] for p in paths]

    def _corrupt(self, path: str, problem: str) -> StoreError:
        return StoreError(
            f"team store {self.url}: {path} is not a valid storyc object ({problem}); "
            "someone wrote it by hand or with another tool: move it aside and run again"
        )

    def check(self) -> None:
        """One cheap request that fails if the store is unreachable, refuses us, or has no such bucket."""
        import obstore

        def first_page() -> None:
            next(iter(obstore.list(self._store, "done/", chunk_size=1)), None)

        try:
            self._call("reach the store", first_page)
        except _Gone:
            raise self._no_bucket("reach the store") from None

    # -- records and claims --

    def _done(self, hex_key: str) -> DoneRecord | None:
        path = f"done/{hex_key}.json"
        raw = self._read(path)
        if raw is None:
            return None
        try:
            return DoneRecord.from_json(raw)
        except ValueError as exc:
            raise self._corrupt(path, str(exc)) from None

    def _claim(self, hex_key: str, n: int, names: set[str], beats: int = 0) -> ClaimInfo | None:
        base = f"claims/{hex_key}/{n}"
        raw = self._read(f"{base}.json")
        if raw is None:
            return None
        try:
            claim = ClaimInfo.from_json(raw)
        except ValueError as exc:
            raise self._corrupt(f"{base}.json", str(exc)) from None
        if claim.n != n or claim.key != f"sha256:{hex_key}":
            raise self._corrupt(f"{base}.json", "its key or n does not match its name")
        fields: dict[str, Any] = {}
        if f"{n}.submitted.json" in names:
            raw = self._read(f"{base}.submitted.json")
            if raw is not None:
                try:
                    data = _mapping(raw, "the submitted note")
                    fields.update(request_id=_text(data, "request_id"), endpoint=_text(data, "endpoint"))
                except ValueError as exc:
                    raise self._corrupt(f"{base}.submitted.json", str(exc)) from None
        if f"{n}.unknown.json" in names:
            raw = self._read(f"{base}.unknown.json")
            if raw is not None:
                try:
                    reason = _mapping(raw, "the unknown note").get("reason")
                except ValueError as exc:
                    raise self._corrupt(f"{base}.unknown.json", str(exc)) from None
                fields.update(unknown=True, reason=reason if isinstance(reason, str) else None)
        if f"{n}.sending.json" in names:
            fields.update(sending=True)
        if f"{n}.released.json" in names:
            fields.update(released=True)
        return replace(claim, beats=beats, **fields)

    def _claims(self, hex_key: str) -> ClaimInfo | None:
        """The claim that decides: the highest with a request id, else with unknown, else the highest."""
        names = set(self._list(f"claims/{hex_key}/"))
        numbers, beats = _claim_files(names)
        # Normally only the highest claim has notes beside it; a holder that wrote its note after
        # its lease expired (and after someone claimed n+1) must still stop everyone paying again.
        for note in _SETTLING:
            settled = (n for n, kinds in numbers.items() if note in kinds and "" in kinds and ".released" not in kinds)
            for n in sorted(settled, reverse=True):
                found = self._claim(hex_key, n, names, beats.get(n, 0))
                if found is not None:
                    return found
        for n in sorted((n for n, kinds in numbers.items() if "" in kinds), reverse=True):
            found = self._claim(hex_key, n, names, beats.get(n, 0))
            if found is not None:
                return found
        return None

    def lookup(self, key: str) -> DoneRecord | ClaimInfo | None:
        """The done record if there is one; else the deciding claim with its notes; else None."""
        hex_key = _hex(key)
        return self._done(hex_key) or self._claims(hex_key)

    def claim(
        self,
        key: str,
        owner: str,
        lease: timedelta = DEFAULT_LEASE,
        *,
        holder: Holder | None = None,
        gone: Callable[[ClaimInfo], bool] | None = None,
    ) -> tuple[bool, DoneRecord | ClaimInfo]:
        """Try to own `key` for `lease`: (True, my claim), or (False, the done record or claim in the way).

        `holder` is recorded in the claim (this process, and the pace of its heartbeats); `gone`
        says of another clone's claim, within its lease, that its holder died: then the key is
        free unless that holder was sending.
        """
        hex_key = _hex(key)
        if not owner or "\n" in owner or len(owner) > 200:
            raise ValueError(f"owner must be one short line: {owner!r}")
        if lease < timedelta(0):
            raise ValueError(f"lease must not be negative: {lease}")
        for _ in range(_CLAIM_ATTEMPTS):
            state = self._done(hex_key) or self._claims(hex_key)
            if isinstance(state, DoneRecord):
                return False, state
            now = self._clock()
            if state is not None and (state.settled or (state.live(now) and not (gone and gone(state)))):
                return False, state
            n = 1 if state is None else state.n + 1
            claimed_at = now.astimezone(UTC).replace(microsecond=0)
            nonce = uuid.uuid4().hex
            mine = ClaimInfo(key, n, owner, claimed_at, claimed_at + lease, nonce=nonce, holder=holder)
            if self._create(f"claims/{hex_key}/{n}.json", mine.to_json().encode()):
                return True, mine
            # Someone created claim n first (or our own retried request did): report who.
            again = self._done(hex_key) or self._claims(hex_key)
            if isinstance(again, DoneRecord):
                return False, again
            if again is not None and again.n >= n:
                if again.n == n and again.nonce == mine.nonce:
                    return True, again
                return False, again
            # "Already exists" yet nothing to read (S3's 409 for a conflicting create): try again.
        raise StoreError(
            f"team store {self.url}: could not claim {key}: the store kept answering 'already exists' "
            f"for a claim it does not show; try again, and check the store if it persists"
        )

    def mark_submitted(self, claim: ClaimInfo, request_id: str, endpoint: str) -> None:
        """fal accepted claim `claim.n`'s submit as `request_id` (written at once, create-only)."""
        hex_key = _hex(claim.key)
        if not request_id or not endpoint:
            raise ValueError("request_id and endpoint must not be empty")
        path = f"claims/{hex_key}/{claim.n}.submitted.json"
        note = {"request_id": request_id, "endpoint": endpoint, "submitted_at": _iso(self._clock())}
        raw = self._create_or_read(path, _dumps(note))
        if raw is None:
            return
        try:
            existing = _mapping(raw, path).get("request_id")
        except ValueError as exc:
            raise self._corrupt(path, str(exc)) from None
        if existing != request_id:
            raise StoreError(
                f"team store {self.url}: claim {claim.n} on {claim.key} is already marked submitted as request "
                f"{existing}, not {request_id}: two submits were sent for one claim; check fal's dashboard"
            )

    def mark_sending(self, claim: ClaimInfo) -> bool:
        """Claim `claim.n`'s submit is about to go out: from now on, nobody may re-claim the key.

        False (and the claim released) when it may not go out after all: another clone took the
        key over meanwhile (it judged this holder dead) or is sending on another claim of it.
        Written first, checked after: of two clones that each write their claim or `.sending`
        and then look, at least one sees the other's (the stores list what was created before),
        so at most one of them sends.
        """
        hex_key = _hex(claim.key)
        self._create_or_read(f"claims/{hex_key}/{claim.n}.sending.json", _dumps({"sent_at": _iso(self._clock())}))
        numbers, _ = _claim_files(set(self._list(f"claims/{hex_key}/")))
        rivals = (n for n, kinds in sorted(numbers.items()) if n != claim.n and _in_the_way(n > claim.n, kinds))
        rival = next(rivals, None)
        if rival is None:
            return True
        self.mark_released(claim, f"claim {rival} took the key over before the submit went out; nothing was sent")
        return False

    def beat(self, claim: ClaimInfo, k: int) -> None:
        """Heartbeat `k` of claim `claim.n`: its holder is alive (create-only; one already there is the same news)."""
        if k < 1:
            raise ValueError(f"heartbeats count from 1: {k}")
        self._create(f"claims/{_hex(claim.key)}/{claim.n}.alive/{k}.json", _dumps({"k": k}))

    def mark_released(self, claim: ClaimInfo, reason: str) -> None:
        """Claim `claim.n`'s submit provably did not reach fal: the next clone may claim the key at once."""
        hex_key = _hex(claim.key)
        # A reason is mostly fal's words, which may echo the key; everyone in the team reads the store.
        note = {"released_at": _iso(self._clock()), "reason": redact(reason, self._secrets)}
        self._create_or_read(f"claims/{hex_key}/{claim.n}.released.json", _dumps(note))

    def mark_unknown(self, claim: ClaimInfo, reason: str) -> None:
        """Claim `claim.n`'s submit got no answer: fal may have accepted it, so nobody may submit again."""
        hex_key = _hex(claim.key)
        note = {"sent_at": _iso(self._clock()), "reason": redact(reason, self._secrets)}
        self._create_or_read(f"claims/{hex_key}/{claim.n}.unknown.json", _dumps(note))  # already there: same news

    # -- content: videos and a still's images, by their sha256 --

    def has_video(self, video_sha256: str) -> bool:
        return self.has_content(video_sha256, "video")

    def put_video(self, video_sha256: str, path: Path) -> None:
        self.put_content(video_sha256, path, "video")

    def get_video(self, video_sha256: str, dest: Path) -> int:
        return self.get_content(video_sha256, dest, "video")

    def has_content(self, sha256: str, kind: str) -> bool:
        return self._head(self._store, content_path(sha256, kind)) is not None

    def put_content(self, sha256: str, path: Path, kind: str) -> None:
        """Store the file `path` as `sha256` (a video, or an image), after checking its bytes have that sha256."""
        import obstore

        hex_video = _hex(sha256)
        target = content_path(sha256, kind)
        digest, size = _file_digest(path)
        if digest != hex_video:
            raise StoreError(
                f"team store {self.url}: refusing to store {path}: its sha256 is sha256:{digest}, not "
                f"{sha256} (the file changed or is corrupt); download or render it again"
            )
        meta = self._head(self._store, target)
        if meta is not None:
            if meta["size"] == size:
                return
            raise StoreError(
                f"team store {self.url}: {target} holds {meta['size']} bytes where sha256 says {size}: "
                "the stored copy is damaged; ask whoever runs the store to remove it, then run again"
            )

        def chunks() -> Iterator[bytes]:
            """The file again, checked as it goes: if it changed since, the upload is abandoned."""
            hasher = hashlib.sha256()
            with path.open("rb") as f:
                while block := f.read(8 * _CHUNK):
                    hasher.update(block)
                    yield block
            if hasher.hexdigest() != hex_video:
                raise _Changed

        try:
            self._call(
                f"upload {target}", lambda: obstore.put(self._videos, target, chunks(), mode="create"), creating=True
            )
        except _Changed:
            raise StoreError(
                f"team store {self.url}: {path} changed while it was being uploaded; nothing was stored; run again"
            ) from None
        except _Gone:
            raise self._no_bucket(f"write {target}") from None
        except _Exists:
            return  # someone stored the same bytes meanwhile

    def get_content(self, sha256: str, dest: Path, kind: str) -> int:
        """Download `sha256` (a video, or an image) to `dest` (atomically, verified); returns its size in bytes."""
        import obstore

        hex_video = _hex(sha256)
        source = content_path(sha256, kind)
        try:
            result = self._call(f"download {source}", lambda: obstore.get(self._videos, source))
        except _Gone:
            raise StoreError(
                f"team store {self.url}: {source} is not in the store; its done record points at a {kind} "
                "nobody uploaded: render it again"
            ) from None
        try:
            with atomic_writer(dest) as out:
                size = self._receive(result, out, hex_video, source)
        except (StoreError, _Signal):
            raise
        except OSError as exc:
            raise StoreError(f"could not write {dest}: {exc}") from None
        except Exception as exc:
            raise _store_error(self.url, f"download {source}", exc, self._secrets) from None
        return size

    def _receive(self, result: GetResult, out: IO[bytes], hex_video: str, source: str) -> int:
        """Copy a download to `out`, checking its sha256 (StoreError if it is not the one it is named by)."""
        hasher = hashlib.sha256()
        size = 0
        for block in result.stream(min_chunk_size=_CHUNK):
            hasher.update(block)
            size += len(block)
            out.write(block)
        if hasher.hexdigest() != hex_video:
            raise StoreError(
                f"team store {self.url}: {source} does not have the sha256 it is named by "
                f"(got sha256:{hasher.hexdigest()}, {size} bytes): the stored copy is damaged; "
                "ask whoever runs the store to remove it"
            )
        return size

    # -- done records --

    def put_done(self, record: DoneRecord) -> None:
        """Record a paid render whose video is already in the store; the first record of a key stays."""
        hex_key = _hex(record.key)
        for sha256, kind in record.files:
            if not self.has_content(sha256, kind):
                raise StoreError(
                    f"team store {self.url}: not recording {record.key} as done: its {kind} {sha256} "
                    "is not in the store yet (put its files first)"
                )
        self._create_or_read(f"done/{hex_key}.json", record.to_json().encode())
        # Already there: identical video is the same news; a different one (two renders paid for one
        # key) keeps the first, so that every clone agrees on one video.

    def done_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of `keys` have a done record: one HEAD each for a few keys, one listing of done/ for more."""
        wanted = {_hex(key): key for key in keys}
        if len(wanted) > _LIST_WHEN_MORE_THAN:
            present = {name.removesuffix(".json") for name in self._list("done/") if name.endswith(".json")}
            return {key for hex_key, key in wanted.items() if hex_key in present}
        return {key for hex_key, key in wanted.items() if self._head(self._store, f"done/{hex_key}.json") is not None}


CONTENT = {"video": ("videos", ".mp4"), "image": ("images", ".png")}  # kind -> folder, suffix


def content_path(sha256: str, kind: str) -> str:
    """Where content of `kind` ("video", "image") is kept in the store, by its sha256."""
    folder, suffix = CONTENT[kind]
    return f"{folder}/{_hex(sha256)}{suffix}"


def _claim_files(names: Iterable[str]) -> tuple[dict[int, set[str]], dict[int, int]]:
    """From a listing of claims/<hex>/: each claim's objects ("" for itself, ".sending", ...), and its newest beat."""
    numbers: dict[int, set[str]] = {}
    beats: dict[int, int] = {}
    for name in names:
        match = _CLAIM_FILE.match(name)
        if match:
            numbers.setdefault(int(match.group(1)), set()).add(match.group(2) or "")
        elif beat := _BEAT_FILE.match(name):
            n, k = int(beat.group(1)), int(beat.group(2))
            beats[n] = max(beats.get(n, 0), k)
    return numbers, beats


def _in_the_way(later: bool, kinds: set[str]) -> bool:
    """Another claim that forbids sending on this one: any later claim, or one that may have been paid for."""
    if ".released" in kinds:
        return False
    return (later and "" in kinds) or any(note in kinds for note in _SETTLING)


def _file_digest(path: Path) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as f:
            while block := f.read(_CHUNK):
                hasher.update(block)
                size += len(block)
    except OSError as exc:
        raise StoreError(f"could not read {path}: {exc}") from None
    return hasher.hexdigest(), size
