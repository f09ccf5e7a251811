"""ffmpeg utilities: probe, first and last frames, join. No storyboard knowledge here.

Everything runs the ffmpeg bundled with imageio-ffmpeg (there is no ffprobe
in it). Stream facts come from ffmpeg's `framecrc` muxer over a stream copy:
it prints each stream's codec, dimensions, time base and extradata checksum
as header lines on stdout, then one line per packet (timestamps, duration).
That reads the packets without decoding them and keeps every call at
`-loglevel error`, so stderr holds only errors.

Durations are the video stream's (first pts to the end of the last frame),
which is what "a 3 s shot" means, not the container's (which may include a
longer audio track).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

from storyc.diagnostics import StorycError
from storyc.ffmpeg import ffmpeg_exe as ffmpeg_exe  # where it used to be
from storyc.ffmpeg import quiet_command
from storyc.files import sha256_file
from storyc.fsutil import DISK_REFUSALS, atomic_path

JoinMode = Literal["copy", "reencode"]
FramePosition = Literal["first", "last"]

_STDERR_TAIL_LINES = 15
_NOPTS = -(2**63)
# Codecs the concat demuxer may stream-copy into MP4 without surprises.
_COPY_VIDEO_CODECS = frozenset({"h264"})
_COPY_AUDIO_CODECS = frozenset({"aac"})
_JOIN_AUDIO_RATE = 48_000
# last_frame decodes from this many seconds before the last frame's timestamp (ffmpeg starts at the keyframe
# before that): only the frames in this window are converted, so it is the cost past the decoding itself.
_LAST_FRAME_WINDOW = 0.5


class VideoError(StorycError):
    """ffmpeg could not read or write a video; the message carries ffmpeg's own words."""


@dataclass(frozen=True)
class VideoInfo:
    seconds: float
    width: int
    height: int
    fps: float
    frames: int
    has_audio: bool = False


@dataclass(frozen=True)
class _Stream:
    """One stream as framecrc describes it; `params` is everything that must match for a stream copy."""

    media_type: str
    codec: str
    params: tuple[tuple[str, str], ...]
    time_base: Fraction
    packets: tuple[tuple[int, int], ...]  # (pts, duration) in time_base units


@dataclass(frozen=True)
class _Media:
    video: _Stream
    audio: _Stream | None
    width: int
    height: int
    fps: Fraction
    seconds: Fraction


# --------------------------------------------------------------------------- running ffmpeg


def run_ffmpeg(args: Sequence[str], *, what: str) -> str:
    """Run ffmpeg quietly with `args`; return its stdout or raise VideoError with the tail of stderr."""
    try:
        proc = subprocess.run(quiet_command(args), capture_output=True, check=False)
    except OSError as exc:
        raise VideoError(f"{what}: cannot run ffmpeg ({exc})") from exc
    stderr = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        tail = "\n".join(stderr.splitlines()[-_STDERR_TAIL_LINES:]) or f"exit status {proc.returncode}"
        raise VideoError(f"{what}: ffmpeg failed:\n{tail}")
    return proc.stdout.decode("utf-8", "replace")


@contextlib.contextmanager
def atomic_output(target: Path, suffix: str | None = None) -> Iterator[Path]:
    """A temporary path for ffmpeg to write, renamed over `target` only when ffmpeg wrote something.

    ffmpeg failing because the disk refused its output (full, read-only) raises that `OSError`, naming
    `target`, as any other write storyc makes would: not ffmpeg's lines about trailers and packets.
    """
    with atomic_path(target, suffix) as tmp:
        try:
            yield tmp
        except VideoError as exc:
            refused = _disk_refusal(str(exc))
            if refused is None:
                raise
            raise OSError(refused, os.strerror(refused), str(target)) from exc
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise VideoError(f"{target}: ffmpeg wrote nothing")


def _disk_refusal(ffmpeg_says: str) -> int | None:
    """The errno of a disk refusal ffmpeg reports (it prints the C library's `strerror`), or None."""
    return next((code for code in DISK_REFUSALS if os.strerror(code) in ffmpeg_says), None)


# --------------------------------------------------------------------------- probing


def probe(path: Path) -> VideoInfo:
    """Duration, size, frame rate and frame count of the first video stream of `path`."""
    media = _probe_media(Path(path))
    return VideoInfo(
        seconds=float(media.seconds),
        width=media.width,
        height=media.height,
        fps=float(media.fps),
        frames=len(media.video.packets),
        has_audio=media.audio is not None,
    )


def _probe_media(path: Path) -> _Media:
    if not path.is_file():
        raise VideoError(f"{path}: no such file")
    try:
        out = run_ffmpeg(
            ["-i", str(path), "-map", "0:V:0?", "-map", "0:a:0?", "-c", "copy", "-f", "framecrc", "-"],
            what=f"cannot read {path}",
        )
    except VideoError as exc:
        if "does not contain any stream" in str(exc):
            raise VideoError(f"cannot read {path}: it has no video stream") from exc
        raise
    streams = _parse_framecrc(out)
    video = next((s for s in streams if s.media_type == "video"), None)
    if video is None or not video.packets:
        raise VideoError(f"cannot read {path}: it has no video stream")
    audio = next((s for s in streams if s.media_type == "audio"), None)
    width, height = (int(v) for v in dict(video.params)["dimensions"].split("x"))
    seconds, fps = _timing(video)
    return _Media(video, audio, width, height, fps, seconds)


def _parse_framecrc(text: str) -> list[_Stream]:
    headers: dict[int, dict[str, str]] = {}
    packets: dict[int, list[tuple[int, int]]] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            _parse_header(line, headers)
        elif line.strip():
            fields = [f.strip() for f in line.split(",")]
            index, dts, pts, duration = (int(f) for f in fields[:4])
            packets.setdefault(index, []).append((dts if pts == _NOPTS else pts, duration))
    return [_stream(h, packets.get(i, [])) for i, h in sorted(headers.items()) if "media_type" in h]


def _parse_header(line: str, headers: dict[int, dict[str, str]]) -> None:
    """`#key N: value` lines describe stream N (`#software: ...` has no stream and is skipped)."""
    key_part, sep, value = line[1:].partition(":")
    key, _, index = key_part.partition(" ")
    if sep and index.strip().isdigit():
        headers.setdefault(int(index), {})[key] = value.strip()


def _stream(header: dict[str, str], packets: list[tuple[int, int]]) -> _Stream:
    ignored = {"tb", "media_type", "codec_id"}
    params = tuple(sorted((k, v) for k, v in header.items() if k not in ignored))
    return _Stream(
        media_type=header["media_type"],
        codec=header.get("codec_id", "?"),
        params=params,
        time_base=Fraction(header.get("tb", "1/1")),
        packets=tuple(packets),
    )


def _timing(video: _Stream) -> tuple[Fraction, Fraction]:
    """(seconds, fps) from packet timestamps: first pts to the end of the last frame."""
    pts = sorted(p for p, _ in video.packets)
    durations = [d for _, d in video.packets if d > 0]
    if durations:
        frame = Fraction(statistics.median_low(durations))
    elif len(pts) > 1:
        frame = Fraction(pts[-1] - pts[0], len(pts) - 1)
    else:
        frame = Fraction(0)
    if frame <= 0:
        frame = 1 / (25 * video.time_base)  # a lone still image: ffmpeg's own default rate
    last = max(p + (d if d > 0 else frame) for p, d in video.packets)
    seconds = (last - pts[0]) * video.time_base
    return seconds, 1 / (frame * video.time_base)


# --------------------------------------------------------------------------- first frame


def first_frame(video: Path, out_png: Path) -> None:
    """Write the first frame of `video` (upright, as a player shows it) to `out_png` as an RGB PNG."""
    video = Path(video)
    if not video.is_file():
        raise VideoError(f"{video}: no such file")
    with atomic_output(Path(out_png), ".png") as tmp:
        args = ["-i", str(video), "-map", "0:V:0", "-frames:v", "1", "-update", "1"]
        args += ["-pix_fmt", "rgb24", "-c:v", "png", "-f", "image2", "-y"]
        run_ffmpeg([*args, str(tmp)], what=f"cannot take the first frame of {video}")


def last_frame(video: Path, out_png: Path) -> None:
    """Write the last frame of `video` (upright, as a player shows it) to `out_png` as an RGB PNG.

    The last decoded frame, not the last keyframe: ffmpeg decodes from the keyframe before the last
    half second and keeps overwriting one picture with every frame it passes on unchanged
    (`-fps_mode passthrough`: no frame dropped or doubled, whatever the frame rate does), so the
    picture left is the last. The half second is counted from the video stream's own last
    timestamp, never the container's duration (which a longer audio track stretches). Any read or
    decode error fails (`-xerror`): a video cut short must not pass its last whole frame off as its end.
    """
    video = Path(video)
    if not video.is_file():
        raise VideoError(f"{video}: no such file")
    media = _probe_media(video)
    start = max(0.0, float(_last_frame_time(media.video)) - _LAST_FRAME_WINDOW)
    with tempfile.TemporaryDirectory(prefix="storyc-frame-") as work:
        picture = Path(work) / "last.bmp"  # BMP: writing every frame of the window costs next to nothing
        _decode_to_last(video, picture, start)
        if not picture.is_file() and start > 0:
            _decode_to_last(video, picture, 0.0)  # the seek went past the last frame: decode it all
        if not picture.is_file():
            raise VideoError(f"cannot take the last frame of {video}: ffmpeg decoded no frame")
        _save_png(picture, Path(out_png))


def _last_frame_time(video: _Stream) -> Fraction:
    """Seconds from the video stream's first timestamp to its last frame's (the timeline `-ss` seeks in)."""
    pts = [p for p, _ in video.packets]
    return (max(pts) - min(pts)) * video.time_base


def _decode_to_last(video: Path, picture: Path, start: float) -> None:
    args = ["-xerror", "-ss", f"{start:.6f}", "-i", str(video), "-map", "0:V:0", "-fps_mode", "passthrough"]
    args += ["-update", "1", "-pix_fmt", "bgr24", "-c:v", "bmp", "-f", "image2", "-y", str(picture)]
    run_ffmpeg(args, what=f"cannot take the last frame of {video} (damaged or cut short?)")


def _save_png(picture: Path, out_png: Path) -> None:
    from PIL import Image

    with atomic_output(out_png, ".png") as tmp, Image.open(picture) as image:
        image.convert("RGB").save(tmp, "PNG")


_FRAME_TAKERS = {"first": first_frame, "last": last_frame}


def stored_frame(video: Path, position: FramePosition, store: Path) -> Path:
    """The PNG of `video`'s first or last frame in the folder `store`, named by the video's sha256 and `position`.

    Content-addressed: the frame is extracted (atomically) the first time that content is asked
    for, under any path; after that the file is found by name and no ffmpeg runs.
    """
    video = Path(video)
    take = _FRAME_TAKERS.get(position)
    if take is None:
        raise ValueError(f"unknown frame position {position!r}; positions are {sorted(_FRAME_TAKERS)}")
    try:
        digest = sha256_file(video).removeprefix("sha256:")
    except FileNotFoundError:
        raise VideoError(f"{video}: no such file") from None
    except OSError as exc:  # a folder, a FIFO (NotARegularFile), no permission
        raise VideoError(f"cannot read {video}: {exc.strerror or exc}") from None
    frame = Path(store) / f"{digest}-{position}.png"
    if not frame.is_file():
        take(video, frame)
    return frame


def representative_frame(video: Path, out_png: Path) -> None:
    """Write the frame of `video`'s first seconds that best stands for it (ffmpeg's `thumbnail` filter, which
    skips a flat first frame, a fade from black...) to `out_png`: for thumbnails of reference videos."""
    video = Path(video)
    if not video.is_file():
        raise VideoError(f"{video}: no such file")
    with atomic_output(Path(out_png), ".png") as tmp:
        args = ["-i", str(video), "-map", "0:V:0", "-vf", "thumbnail=48", "-frames:v", "1", "-update", "1"]
        args += ["-pix_fmt", "rgb24", "-c:v", "png", "-f", "image2", "-y"]
        run_ffmpeg([*args, str(tmp)], what=f"cannot take a frame of {video}")


# --------------------------------------------------------------------------- join


def join(inputs: Sequence[Path], out: Path, *, crf: int = 18, preset: str = "veryfast") -> JoinMode:
    """Concatenate `inputs` in order into the MP4 `out`; return how: "copy" or "reencode".

    Inputs that agree on codec (H.264, optional AAC), size, pixel format (H.264's
    parameter sets), aspect and frame rate are joined by the concat demuxer with a
    stream copy: lossless and fast. Anything else is re-encoded with libx264 to the
    first input's size (others letterboxed) and frame rate; audio is kept if any
    input has it, with silence for the inputs that have none.
    """
    paths = [Path(p) for p in inputs]
    if not paths:
        raise ValueError("join needs at least one input video")
    media = [_probe_media(p) for p in paths]
    mode: JoinMode = "copy" if _copyable(media) else "reencode"
    with atomic_output(Path(out), ".mp4") as tmp:
        if mode == "copy":
            _join_copy(paths, tmp)
        else:
            _join_reencode(paths, media, tmp, crf=crf, preset=preset)
    return mode


def _copyable(media: Sequence[_Media]) -> bool:
    first = media[0]
    if first.video.codec not in _COPY_VIDEO_CODECS:
        return False
    if first.audio is not None and first.audio.codec not in _COPY_AUDIO_CODECS:
        return False
    return all(_signature(m) == _signature(first) for m in media)


def _signature(m: _Media) -> tuple[object, ...]:
    audio = None if m.audio is None else (m.audio.codec, m.audio.params)
    # extradata (SPS/PPS) pins profile, chroma format and bit depth: equal ones decode with one decoder setup
    return (m.video.codec, m.video.params, m.fps, audio)


def _join_copy(paths: Sequence[Path], tmp: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="storyc-join-") as work:
        listing = Path(work) / "inputs.txt"
        listing.write_text("".join(f"file {_concat_quote(p)}\n" for p in paths), "utf-8")
        args = ["-f", "concat", "-safe", "0", "-i", str(listing)]
        args += ["-map", "0:v:0", "-map", "0:a:0?", "-c", "copy", "-movflags", "+faststart", "-f", "mp4", "-y"]
        run_ffmpeg([*args, str(tmp)], what=f"cannot join {len(paths)} videos")


def _concat_quote(path: Path) -> str:
    """Quote a path for a concat-demuxer list (single quotes; a quote is written '\\'')."""
    text = str(path.resolve())
    if "\n" in text or "\r" in text:
        raise VideoError(f"cannot join {text!r}: line breaks in file names are not supported")
    return "'" + text.replace("'", "'\\''") + "'"


def _join_reencode(paths: Sequence[Path], media: Sequence[_Media], tmp: Path, *, crf: int, preset: str) -> None:
    first = media[0]
    width, height = first.width - first.width % 2, first.height - first.height % 2
    with_audio = any(m.audio is not None for m in media)
    graph = _reencode_graph(media, width, height, first.fps, with_audio)
    args = [a for p in paths for a in ("-i", str(p))]
    args += ["-filter_complex", graph, "-map", "[v]"]
    if with_audio:
        args += ["-map", "[a]", "-c:a", "aac", "-b:a", "192k"]
    args += ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p"]
    args += ["-movflags", "+faststart", "-f", "mp4", "-y", str(tmp)]
    run_ffmpeg(args, what=f"cannot join {len(paths)} videos")


def _reencode_graph(media: Sequence[_Media], width: int, height: int, fps: Fraction, with_audio: bool) -> str:
    chains: list[str] = []
    pads: list[str] = []
    for i, m in enumerate(media):
        chains.append(
            f"[{i}:V:0]scale={width}:{height}:force_original_aspect_ratio=decrease,"
            f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p,setpts=PTS-STARTPTS[v{i}]"
        )
        pads.append(f"[v{i}]")
        if with_audio:
            chains.append(_audio_chain(i, m))
            pads.append(f"[a{i}]")
    n_audio = 1 if with_audio else 0
    concat = f"{''.join(pads)}concat=n={len(media)}:v=1:a={n_audio}[vc]" + ("[a]" if with_audio else "")
    return ";".join([*chains, concat, f"[vc]fps={fps.numerator}/{fps.denominator}[v]"])


def _audio_chain(i: int, m: _Media) -> str:
    """Input i's audio (or silence) cut or padded to its video's length, so segments stay in sync."""
    dur = f"{float(m.seconds):.6f}"
    fmt = f"aformat=sample_fmts=fltp:sample_rates={_JOIN_AUDIO_RATE}:channel_layouts=stereo"
    if m.audio is None:
        return f"anullsrc=r={_JOIN_AUDIO_RATE}:cl=stereo,atrim=duration={dur},{fmt}[a{i}]"
    return f"[{i}:a:0]aresample={_JOIN_AUDIO_RATE},{fmt},asetpts=PTS-STARTPTS,apad,atrim=duration={dur}[a{i}]"
