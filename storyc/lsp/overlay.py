"""The editor's unsaved buffers as a `FileSource`: a compile sees what is typed, not what is saved.

A path with an open buffer reads as the buffer's text; every other path (assets, templates
not open) reads from the disk, as `LocalFiles` does.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from storyc.files import FileInfo, LocalFiles


class Overlay(LocalFiles):
    def __init__(self, buffers: Mapping[Path, str]) -> None:
        self._buffers = {path: text.encode("utf-8", "surrogatepass") for path, text in buffers.items()}

    def _buffer(self, path: Path) -> bytes | None:
        if not self._buffers:
            return None
        found = self._buffers.get(path)
        return found if found is not None else self._buffers.get(path.resolve())

    def stat(self, path: Path) -> FileInfo:
        data = self._buffer(path)
        return super().stat(path) if data is None else FileInfo(len(data), 0, True)

    def read_bytes(self, path: Path) -> bytes:
        data = self._buffer(path)
        return super().read_bytes(path) if data is None else data

    def open(self, path: Path) -> BinaryIO:
        data = self._buffer(path)
        return super().open(path) if data is None else io.BytesIO(data)

    def head(self, path: Path, size: int) -> bytes:
        data = self._buffer(path)
        return super().head(path, size) if data is None else data[:size]

    def sha256(self, path: Path) -> str:
        data = self._buffer(path)
        return super().sha256(path) if data is None else "sha256:" + hashlib.sha256(data).hexdigest()
