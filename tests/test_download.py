"""Downloads: https only (plain http to this machine alone), nothing left behind on refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakefal import FakeFal

from storyc.render.download import DownloadError, fetch, new_client


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


def test_a_cut_short_download_counts_the_bytes_that_came(fake_fal: FakeFal, tmp_path: Path) -> None:
    url = fake_fal.put_file(b"x" * 100_000, "v.mp4", "video/mp4")
    fake_fal.truncate_next_downloads(1)  # half the bytes, then the connection closes
    with new_client() as client, pytest.raises(DownloadError) as caught:
        fetch(client, url, tmp_path / "v.mp4", expected_size=100_000)
    assert "the connection ended after 50,000 of 100,000 bytes" in str(caught.value)
    assert caught.value.retryable and list(tmp_path.iterdir()) == []
