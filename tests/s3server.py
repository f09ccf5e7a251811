"""A real S3 protocol server for tests: moto's, on loopback, with create-only PUTs made atomic.

moto (5.2.5, the newest) answers a second `If-None-Match: *` PUT with 412, but checks and stores in
two steps without a lock, so two concurrent creates of one key can both succeed; real S3 makes the
check and the write one atomic step.  The middleware below serializes conditional requests, so
tests exercise storyc's protocol against the guarantee S3 gives, not moto's gap.

Registered as a pytest plugin (tests/conftest.py): the `moto_endpoint` fixture is module-scoped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

SECRET = "s3cr3t-Never-Print-Me-0123456789abcdef"
ACCESS_KEY = "AKIDTEAMSTORETEST"


class _SerializedConditionalPuts:
    """WSGI middleware: one conditional request at a time, so moto's check-then-store cannot interleave."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MATCH" in environ:
            with self.lock:
                return self.app(environ, start_response)
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with serve_moto() as endpoint:
        yield endpoint


@contextlib.contextmanager
def serve_moto() -> Iterator[str]:
    """moto's S3 on 127.0.0.1 (a free port), conditional PUTs atomic; yields its endpoint URL."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = _SerializedConditionalPuts(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def aws_env(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    for name in list(os.environ):
        if name.startswith(("AWS_", "STORYC_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
    monkeypatch.setenv("STORYC_STORE_TIMEOUT", "5")


def new_bucket(endpoint: str) -> str:
    import boto3

    bucket = f"team-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET,
    )
    client.create_bucket(Bucket=bucket)
    return bucket


