"""Downloads: https only (plain http to this machine alone), nothing left behind on refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from storyc.download import DownloadError, fetch, new_client


@pytest.mark.parametrize(
    "url",
    ["http://example.org/v.mp4", "ftp://example.org/v.mp4", "file:///etc/passwd", "https:///nohost.mp4", "v.mp4"],
)
def test_only_https_urls_are_fetched(tmp_path: Path, url: str) -> None:
    target = tmp_path / "renders" / "v.mp4"
    with new_client() as client, pytest.raises(DownloadError, match="over https only") as caught:
        fetch(client, url, target)
    assert not caught.value.retryable
    assert not target.parent.exists() or list(target.parent.iterdir()) == []


def test_plain_http_to_this_machine_is_allowed(tmp_path: Path) -> None:
    import socket

    with socket.socket() as closed:  # a port nothing listens on: the scheme check passed if we get that far
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with new_client() as client, pytest.raises(DownloadError, match="incomplete download"):
        fetch(client, f"http://127.0.0.1:{port}/v.mp4", tmp_path / "v.mp4")
