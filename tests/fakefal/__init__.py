"""fakefal: a local fake of fal.ai's queue and storage HTTP protocol for the real fal_client.

Use the pytest fixtures in `fakefal.plugin` (`fake_fal`, `fake_fal_tls`) or start a `FakeFal`
yourself and call `point_fal_client(server, monkeypatch)`.
"""

from __future__ import annotations

from fakefal.server import DEFAULT_KEY, ROUTES, FakeFal, JobInfo, RequestRecord, UploadRecord
from fakefal.validation import Endpoint, load_endpoints

__all__ = [
    "DEFAULT_KEY",
    "ROUTES",
    "Endpoint",
    "FakeFal",
    "JobInfo",
    "RequestRecord",
    "UploadRecord",
    "fast_retries",
    "load_endpoints",
    "point_fal_client",
]


def __getattr__(name: str) -> object:
    # point_fal_client and fast_retries live in the plugin (they need pytest); import them lazily.
    if name in ("point_fal_client", "fast_retries"):
        from fakefal import plugin

        return getattr(plugin, name)
    raise AttributeError(name)
