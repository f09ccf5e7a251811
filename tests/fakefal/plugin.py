"""pytest fixtures: `fake_fal` (plain HTTP, in-process fal_client patched) and `fake_fal_tls`.

Register with `pytest_plugins = ["fakefal.plugin"]` in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakefal.server import DEFAULT_KEY, FakeFal

_CACHED = ("_auth", "_client", "_token_manager")


def _reset_module_clients() -> None:
    """Forget credentials/HTTP clients cached by fal_client's module-level clients.

    `fal_client.submit` etc. are bound to one `SyncClient()` made at import; it caches its
    credentials, its httpx client and its CDN token manager (which bakes REST_URL in) on first use.
    """
    import fal_client

    for name in ("sync_client", "async_client"):
        client = getattr(fal_client, name, None)
        if client is None:
            continue
        for attr in _CACHED:
            cached = client.__dict__.pop(attr, None)
            if attr == "_client" and hasattr(cached, "close") and name == "sync_client":
                cached.close()


def point_fal_client(server: FakeFal, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the in-process fal_client at `server` (module globals, read at call time; fal-facts 1.1).

    QUEUE_URL_FORMAT -> submit; RUN_URL_FORMAT -> run() (the fake's /_run/ route); REST_URL -> CDN
    token and fallback upload (must be patched before a client's first upload: the token manager
    copies it); CDN_URL -> v3 upload. Also sets FAL_KEY and drops the module client's caches.
    """
    import fal_client.client as fc

    monkeypatch.setenv("FAL_KEY", server.key)
    monkeypatch.delenv("FAL_KEY_ID", raising=False)
    monkeypatch.delenv("FAL_KEY_SECRET", raising=False)
    monkeypatch.delenv("FAL_FORCE_AUTH_BY_USER", raising=False)
    monkeypatch.setattr(fc, "QUEUE_URL_FORMAT", server.url + "/")
    monkeypatch.setattr(fc, "RUN_URL_FORMAT", server.url + "/_run/")
    monkeypatch.setattr(fc, "REST_URL", server.url)
    monkeypatch.setattr(fc, "CDN_URL", server.url)
    _reset_module_clients()


def fast_retries(monkeypatch: pytest.MonkeyPatch, base_delay: float = 0.0002) -> None:
    """Shrink fal_client's retry backoff for this test; the number of attempts (10) is unchanged.

    fal_client sleeps min(BASE_DELAY * 2**(n-1), MAX_DELAY) * uniform(0.5, 1.5) before retry n, with
    BASE_DELAY = 0.1 read at call time: 9 retries (a 429 storm, a refused connection) take about
    51 s x jitter. With the default `base_delay` here they take about 0.1 s. In-process only.
    """
    import fal_client.client as fc

    monkeypatch.setattr(fc, "BASE_DELAY", base_delay)


def _check_clean(server: FakeFal) -> None:
    if server.internal_errors:
        pytest.fail("fakefal crashed while serving:\n" + "\n".join(server.internal_errors), pytrace=False)


@pytest.fixture
def fake_fal(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeFal]:
    """A started plain-HTTP FakeFal with the in-process fal_client pointed at it.

    Yields the server (`.url`, `.key`, fault injection, recordings). FAL_KEY is set to `.key`.
    """
    server = FakeFal(key=DEFAULT_KEY).start()
    try:
        point_fal_client(server, monkeypatch)
        yield server
    finally:
        _reset_module_clients()
        server.stop()
    _check_clean(server)


@pytest.fixture
def fake_fal_tls(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeFal]:
    """A started HTTPS FakeFal (throwaway CA at `.ca_pem_path`), for subprocesses.

    `server.subprocess_env()` gives FAL_KEY, FAL_QUEUE_RUN_HOST, FAL_RUN_HOST and SSL_CERT_FILE.
    Uploads cannot be redirected in a subprocess (fal_client hard-codes REST_URL and CDN_URL).
    The in-process fal_client is pointed at it as well, and SSL_CERT_FILE is set for this test so
    httpx clients created in-process trust the fake's CA.
    """
    server = FakeFal(key=DEFAULT_KEY, tls=True).start()
    try:
        point_fal_client(server, monkeypatch)
        monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_pem_path))
        yield server
    finally:
        _reset_module_clients()
        server.stop()
    _check_clean(server)
