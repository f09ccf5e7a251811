"""Videos the fake model "generates": real, tiny H.264 MP4s made once per (duration, aspect, audio).

ffmpeg comes from `imageio_ffmpeg` (a storyc dependency). The files are cached in a temporary
directory for the whole test session and removed at interpreter exit.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

# Small even sizes (yuv420p needs even dimensions) with the requested aspect ratio.
ASPECT_SIZES: dict[str, tuple[int, int]] = {"16:9": (160, 90), "9:16": (90, 160), "1:1": (120, 120)}
FPS = 24
_COLORS = ("0x3060a0", "0xa05030", "0x30a050", "0x807020")


def stub_video(duration: int, aspect: str, audio: bool) -> bytes:
    """A few bytes that start like an MP4 but are not decodable; for tests that never look inside."""
    tag = f"fakefal stub video duration={duration} aspect={aspect} audio={audio}".encode()
    return b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + tag


class VideoCache:
    """Generates each distinct video once (thread-safe) and keeps its bytes."""

    def __init__(self, directory: Path | None = None) -> None:
        self._dir = directory
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[int, str, bool], threading.Lock] = {}
        self._videos: dict[tuple[int, str, bool], bytes] = {}

    def _directory(self) -> Path:
        with self._lock:
            if self._dir is None:
                self._dir = Path(tempfile.mkdtemp(prefix="fakefal-videos-"))
                atexit.register(shutil.rmtree, self._dir, True)
            return self._dir

    def get(self, duration: int, aspect: str, audio: bool = False) -> bytes:
        key = (duration, aspect if aspect in ASPECT_SIZES else "16:9", audio)
        with self._lock:
            if key in self._videos:
                return self._videos[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._videos:
                    return self._videos[key]
            data = self._render(*key)
            with self._lock:
                self._videos[key] = data
            return data

    def _render(self, duration: int, aspect: str, audio: bool) -> bytes:
        import imageio_ffmpeg

        width, height = ASPECT_SIZES[aspect]
        out = self._directory() / f"{duration}s-{width}x{height}{'-audio' if audio else ''}.mp4"
        color = _COLORS[duration % len(_COLORS)]
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"]
        cmd += ["-f", "lavfi", "-i", f"color=c={color}:s={width}x{height}:r={FPS}"]
        if audio:
            cmd += ["-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono"]
        cmd += ["-t", str(duration), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
        if audio:
            cmd += ["-c:a", "aac", "-shortest"]
        cmd += ["-movflags", "+faststart", str(out)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
        return out.read_bytes()


DEFAULT_CACHE = VideoCache()
