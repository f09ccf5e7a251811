"""What the fake models "generate".

Videos: real, tiny H.264 MP4s made once per (duration, aspect, audio). ffmpeg comes from
`imageio_ffmpeg` (a storyc dependency). The files are cached in a temporary directory for the whole
test session and removed at interpreter exit.

Images: real, small pictures drawn with Pillow, one per candidate, a pure function of the request and
the candidate's index (the same request gives the same images; its candidates always differ).
"""

from __future__ import annotations

import atexit
import colorsys
import hashlib
import io
import json
import math
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# --------------------------------------------------------------------------- images

# The short side of every generated image, whatever `resolution` asks (fal's 1K is about 1024 px): small
# files, yet above Kling's 300 px minimum so a still can go on as a video's start frame.
IMAGE_SHORT_SIDE = 320
SQUARE = "1:1"  # what the fake draws for aspect_ratio "auto" (fal picks one from the prompt and inputs)
_IMAGE_FORMATS: dict[str, tuple[str, str, str]] = {  # output_format -> (Pillow format, content type, extension)
    "png": ("PNG", "image/png", "png"),
    "jpeg": ("JPEG", "image/jpeg", "jpeg"),
    "webp": ("WEBP", "image/webp", "webp"),
}


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes
    width: int
    height: int
    content_type: str
    file_name: str


def image_size(aspect_ratio: str) -> tuple[int, int]:
    """(width, height) in exactly the ratio `aspect_ratio` ("16:9"), the short side at least IMAGE_SHORT_SIDE."""
    ratio = SQUARE if aspect_ratio == "auto" else aspect_ratio
    across, down = (int(part) for part in ratio.split(":"))
    scale = math.ceil(IMAGE_SHORT_SIDE / min(across, down))
    return across * scale, down * scale


def _request_digest(payload: Mapping[str, Any]) -> bytes:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).digest()


def candidate_image(payload: Mapping[str, Any], index: int) -> GeneratedImage:
    """Candidate `index` (0-based) of an image request: a coloured field, a dark band, index + 1 white discs.

    The background hue and the band's place come from the request; the hue turns a quarter of the wheel
    per candidate, so the (at most four) candidates of one request are always told apart at a glance.
    """
    from PIL import Image, ImageDraw

    digest = _request_digest(payload)
    width, height = image_size(str(payload.get("aspect_ratio", "auto")))
    hue = (digest[0] / 256 + index / 4) % 1.0
    background = tuple(round(c * 255) for c in colorsys.hsv_to_rgb(hue, 0.65, 0.85))
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    band = int.from_bytes(digest[1:3]) * (height - height // 8) // 0x10000
    draw.rectangle((0, band, width, band + height // 8), fill=tuple(c // 3 for c in background))
    radius = min(width, height) // 10
    for disc in range(index + 1):
        x = (disc + 1) * width // (index + 2)
        draw.ellipse((x - radius, height // 2 - radius, x + radius, height // 2 + radius), fill=(255, 255, 255))
    pillow_format, content_type, extension = _IMAGE_FORMATS[str(payload.get("output_format", "png"))]
    buffer = io.BytesIO()
    image.save(buffer, pillow_format)
    return GeneratedImage(buffer.getvalue(), width, height, content_type, f"output_{index}.{extension}")
