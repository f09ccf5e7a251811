"""Downloading a rendered video: streamed to a temporary file, verified, then renamed into place.

A download that is cut short, or whose size differs from what fal announced,
never replaces anything: the caller keeps the render as not done yet.
Downloads go through a plain HTTP client (never the one carrying the fal key:
the key has no business on a CDN) that honours SSL_CERT_FILE and proxies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from storyc.diagnostics import StorycError
from storyc.fsutil import atomic_writer

if TYPE_CHECKING:
    import httpx

class DownloadError(StorycError):
    """The video could not be fetched whole; `retryable` when trying again may help."""

    def __init__(self, message: str, *, retryable: bool, gone: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.gone = gone  # 404/410: the file no longer exists at that URL


@dataclass(frozen=True)
class Downloaded:
    size: int
    sha256: str  # "sha256:<hex>"


def new_client() -> httpx.Client:
    import httpx

    return httpx.Client(timeout=httpx.Timeout(60, connect=15), follow_redirects=True, trust_env=True)


def fetch(
    client: httpx.Client,
    url: str,
    target: Path,
    *,
    expected_size: int | None = None,
    expected_sha256: str | None = None,
    check_stop: Callable[[], None] = lambda: None,
) -> Downloaded:
    """Download `url` to `target` atomically; raise DownloadError unless it is complete and as expected."""
    import httpx

    _check_scheme(url)
    digest = hashlib.sha256()
    size = 0
    announced: int | None = None
    response: httpx.Response | None = None
    try:
        with client.stream("GET", url) as response:
            _check_status(response, url)
            announced = _content_length(response)
            with atomic_writer(target) as out:
                for chunk in response.iter_bytes():  # as they arrive: a cut-short download counts what came
                    check_stop()
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                _verify(size, announced, expected_size, "sha256:" + digest.hexdigest(), expected_sha256)
    except httpx.TransportError as exc:  # dropped, timed out, cut short: nothing was renamed into place
        received = max(size, response.num_bytes_downloaded if response is not None else 0)
        of = f" of {announced:,}" if announced else ""
        raise DownloadError(
            f"incomplete download: the connection ended after {received:,}{of} bytes ({type(exc).__name__})",
            retryable=True,
        ) from exc
    return Downloaded(size, "sha256:" + digest.hexdigest())


def _check_scheme(url: str) -> None:
    """Only https, so a lock from another branch can't make storyc fetch from just anywhere in clear text.

    Plain http is allowed to this machine alone (a local proxy or test server).
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost"):
        return
    shown = url if len(url) <= 80 else url[:77] + "..."
    raise DownloadError(f"refusing to download {shown!r}: videos are fetched over https only", retryable=False)


def _check_status(response: httpx.Response, url: str) -> None:
    code = response.status_code
    if code in (404, 410):
        raise DownloadError(f"the video is no longer at {url} (HTTP {code})", retryable=False, gone=True)
    if code == 429 or code >= 500:
        raise DownloadError(f"the file server answered HTTP {code}", retryable=True)
    if code >= 400:
        raise DownloadError(f"the file server refused the download (HTTP {code})", retryable=False)


def _content_length(response: httpx.Response) -> int | None:
    raw = response.headers.get("content-length")
    return int(raw) if raw and raw.isdigit() else None


def _verify(size: int, announced: int | None, expected: int | None, sha256: str, expected_sha256: str | None) -> None:
    for what, wanted in (("the server announced", announced), ("fal reported", expected)):
        if wanted is not None and size != wanted:
            raise DownloadError(f"got {size:,} bytes but {what} {wanted:,}: incomplete download", retryable=True)
    if expected_sha256 is not None and sha256 != expected_sha256:
        raise DownloadError(
            f"the downloaded bytes do not match the recorded sha256 ({expected_sha256[:19]}...)", retryable=False
        )
