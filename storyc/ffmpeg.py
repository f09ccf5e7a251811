"""The ffmpeg storyc runs: the binary imageio-ffmpeg ships (there is no ffprobe in it).

Shared, below every stage: `compile/` decodes a board's reference videos to
refuse a damaged one before anything is paid, and `media/` probes, cuts and
joins videos; neither may import the other's stage upward.
"""

from __future__ import annotations

import errno
import functools
from collections.abc import Sequence


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """The path of the ffmpeg binary bundled with imageio-ffmpeg; `FileNotFoundError` when it finds none."""
    import imageio_ffmpeg

    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as exc:  # its way of saying so: an OSError, as for a binary that won't start
        raise FileNotFoundError(errno.ENOENT, str(exc)) from exc


def quiet_command(args: Sequence[str]) -> list[str]:
    """ffmpeg with `args`, never reading stdin, printing errors only (stderr holds nothing else)."""
    return [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", *args]
