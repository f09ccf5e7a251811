"""storyc.media.video: probe, first and last frames, the frame store and join, on clips made with the bundled ffmpeg."""

from __future__ import annotations

import hashlib
import itertools
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from storyc.diagnostics import StorycError
from storyc.media import video
from storyc.media.video import VideoError, first_frame, join, last_frame, probe, stored_frame

FFMPEG = ("-nostdin", "-hide_banner", "-loglevel", "error", "-y")


def make_clip(
    path: Path,
    *,
    size: tuple[int, int] = (320, 240),
    fps: int = 24,
    seconds: float = 1.0,
    colour: str = "red",
    audio: bool = False,
) -> Path:
    """A solid-colour H.264 clip (optionally with a sine tone)."""
    w, h = size
    args = [video.ffmpeg_exe(), *FFMPEG, "-f", "lavfi", "-i", f"color=c={colour}:s={w}x{h}:r={fps}:d={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac", "-shortest"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(args, check=True, capture_output=True)
    return path


def mean_colour(path: Path) -> tuple[float, ...]:
    with Image.open(path) as image:
        return tuple(ImageStat.Stat(image.convert("RGB")).mean)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


@pytest.mark.parametrize(
    ("size", "fps", "seconds", "frames"),
    [((320, 240), 24, 2.0, 48), ((256, 144), 30, 1.5, 45)],
)
def test_probe_reports_duration_size_fps_and_frames(
    tmp_path: Path, size: tuple[int, int], fps: int, seconds: float, frames: int
) -> None:
    info = probe(make_clip(tmp_path / "clip.mp4", size=size, fps=fps, seconds=seconds))
    assert (info.width, info.height) == size
    assert info.fps == pytest.approx(fps, abs=0.01)
    assert info.frames == frames
    assert info.seconds == pytest.approx(seconds, abs=1 / fps)
    assert info.has_audio is False


def test_probe_sees_audio(tmp_path: Path) -> None:
    assert probe(make_clip(tmp_path / "a.mp4", audio=True)).has_audio is True


def test_first_frame_is_a_png_of_the_first_frame(tmp_path: Path) -> None:
    clip = tmp_path / "red-then-blue.mp4"
    graph = "color=c=red:s=160x90:r=24:d=0.5[a];color=c=blue:s=160x90:r=24:d=0.5[b];[a][b]concat=n=2:v=1:a=0[out0]"
    subprocess.run(
        [video.ffmpeg_exe(), *FFMPEG, "-f", "lavfi", "-i", graph, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(clip)],
        check=True,
        capture_output=True,
    )
    out = tmp_path / "thumbs" / "first.png"
    first_frame(clip, out)
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size == (160, 90)
    r, g, b = mean_colour(out)
    assert r > 200 and g < 60 and b < 60, (r, g, b)
    assert leftovers(out.parent) == []


def test_join_same_format_stream_copies_and_sums_durations(tmp_path: Path) -> None:
    a = make_clip(tmp_path / "a.mp4", colour="red", seconds=1.0)
    b = make_clip(tmp_path / "b.mp4", colour="blue", seconds=2.0)
    out = tmp_path / "out" / "joined.mp4"
    assert join([a, b], out) == "copy"
    info = probe(out)
    assert info.seconds == pytest.approx(3.0, abs=1 / 24)
    assert info.frames == 72
    assert (info.width, info.height) == (320, 240)
    assert leftovers(out.parent) == []


def test_join_copy_handles_quotes_in_paths(tmp_path: Path) -> None:
    folder = tmp_path / "it's here"
    folder.mkdir()
    a = make_clip(folder / "a'1.mp4")
    assert join([a, a], tmp_path / "joined.mp4") == "copy"
    assert probe(tmp_path / "joined.mp4").frames == 48


def test_join_different_sizes_reencodes_to_the_first_size(tmp_path: Path) -> None:
    a = make_clip(tmp_path / "a.mp4", size=(320, 240), fps=24, seconds=1.0)
    b = make_clip(tmp_path / "b.mp4", size=(640, 360), fps=30, seconds=1.5)
    out = tmp_path / "joined.mp4"
    assert join([a, b], out) == "reencode"
    info = probe(out)
    assert (info.width, info.height) == (320, 240)
    assert info.fps == pytest.approx(24, abs=0.01)
    assert info.seconds == pytest.approx(2.5, abs=1 / 24)


def test_join_keeps_audio_when_some_inputs_have_it(tmp_path: Path) -> None:
    a = make_clip(tmp_path / "a.mp4", audio=True)
    b = make_clip(tmp_path / "b.mp4", audio=False)
    out = tmp_path / "joined.mp4"
    assert join([a, b], out) == "reencode"  # different stream layouts cannot be stream-copied
    info = probe(out)
    assert info.has_audio is True
    assert info.seconds == pytest.approx(2.0, abs=1 / 24)


def test_join_failure_leaves_the_old_output_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = make_clip(tmp_path / "a.mp4")
    out = tmp_path / "joined.mp4"
    out.write_bytes(b"old")

    def broken(paths: list[Path], tmp: Path) -> None:
        tmp.write_bytes(b"half a video")
        raise VideoError("disk on fire")

    monkeypatch.setattr(video, "_join_copy", broken)
    with pytest.raises(VideoError, match="disk on fire"):
        join([a, a], out)
    assert out.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_join_needs_inputs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one"):
        join([], tmp_path / "out.mp4")


@pytest.mark.parametrize("content", [b"", b"this is not a video\n" * 50, bytes(range(256)) * 40])
def test_unreadable_files_raise_video_error(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(VideoError, match=r"bad\.mp4"):
        probe(bad)
    with pytest.raises(VideoError):
        first_frame(bad, tmp_path / "thumb.png")
    assert not (tmp_path / "thumb.png").exists()
    assert leftovers(tmp_path) == []


def test_missing_file_and_audio_only_file_raise_video_error(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="no such file"):
        probe(tmp_path / "missing.mp4")
    tone = tmp_path / "tone.m4a"
    subprocess.run(
        [video.ffmpeg_exe(), *FFMPEG, "-f", "lavfi", "-i", "sine=duration=0.5", "-c:a", "aac", str(tone)],
        check=True,
        capture_output=True,
    )
    with pytest.raises(VideoError, match=r"tone\.m4a"):
        probe(tone)


def test_a_reference_videos_thumbnail_is_a_representative_frame_not_a_fade_in(tmp_path: Path) -> None:
    from PIL import Image

    from storyc.media import animatic
    from storyc.media.video import run_ffmpeg

    clip = tmp_path / "fade.mp4"
    source = "color=c=red:s=320x320:r=24:d=2,fade=t=in:st=0:d=0.5"  # opens on black, then red
    run_ffmpeg(["-y", "-f", "lavfi", "-i", source, "-pix_fmt", "yuv420p", str(clip)], what="a test clip")
    first = tmp_path / "first.png"
    first_frame(clip, first)
    with Image.open(first) as opening:
        dark = opening.convert("RGB").getpixel((160, 160))
        assert isinstance(dark, tuple) and max(dark) < 30  # the first frame is black
    thumb = animatic.thumbnail(clip)
    assert thumb is not None
    red = thumb.convert("RGB").getpixel((160, 160))
    assert isinstance(red, tuple) and red[0] > 180 and red[1] < 60 and red[2] < 60


# --------------------------------------------------------------------------- last frame and the frame store

BLUE, RED, LIME, YELLOW = (0, 0, 255), (255, 0, 0), (0, 255, 0), (255, 255, 0)


def close_to(found: tuple[float, ...], wanted: tuple[int, int, int]) -> bool:
    return all(abs(f - w) < 40 for f, w in zip(found, wanted, strict=True))


def make_bookended_clip(path: Path, *, extra_input: list[str] | None = None, timing: str = "") -> Path:
    """One blue frame, two seconds of red, one lime frame; H.264 with B-frames and a single keyframe.

    `timing` is a filter (setpts) applied to the frames before encoding; `extra_input` adds inputs
    (an audio track) after the video.
    """
    graph = (
        "color=c=blue:s=160x96:r=24,trim=end_frame=1[a];color=c=red:s=160x96:r=24:d=2[b];"
        f"color=c=lime:s=160x96:r=24,trim=end_frame=1[c];[a][b][c]concat=n=3:v=1:a=0{timing}[out0]"
    )
    args = [video.ffmpeg_exe(), *FFMPEG, "-f", "lavfi", "-i", graph, *(extra_input or [])]
    args += ["-c:v", "libx264", "-preset", "medium", "-x264-params", "keyint=1000:scenecut=0:bframes=3"]
    args += ["-pix_fmt", "yuv420p", "-fps_mode", "passthrough", str(path)]
    subprocess.run(args, check=True, capture_output=True)
    return path


def test_last_frame_is_the_last_decoded_frame_not_the_last_keyframe(tmp_path: Path) -> None:
    clip = make_bookended_clip(tmp_path / "clip.mp4")
    last = tmp_path / "frames" / "last.png"
    last_frame(clip, last)
    with Image.open(last) as image:
        assert image.format == "PNG" and image.mode == "RGB" and image.size == (160, 96)
    assert close_to(mean_colour(last), LIME), mean_colour(last)  # the only keyframe is the blue one
    first_frame(clip, tmp_path / "frames" / "first.png")
    assert close_to(mean_colour(tmp_path / "frames" / "first.png"), BLUE)
    assert leftovers(last.parent) == []


def test_first_and_last_frame_of_a_one_frame_clip_are_the_same_pixels(tmp_path: Path) -> None:
    clip = tmp_path / "one.mp4"
    source = "testsrc2=s=320x180:r=24,trim=end_frame=1"  # detail and colour: any difference in conversion shows
    video.run_ffmpeg(["-y", "-f", "lavfi", "-i", source, "-pix_fmt", "yuv420p", str(clip)], what="a test clip")
    first_frame(clip, tmp_path / "first.png")
    last_frame(clip, tmp_path / "last.png")
    with Image.open(tmp_path / "first.png") as first, Image.open(tmp_path / "last.png") as last:
        assert first.mode == last.mode == "RGB"
        assert first.tobytes() == last.tobytes()


def test_last_frame_of_a_variable_frame_rate_clip(tmp_path: Path) -> None:
    # frame n at n/24 s, then a 1.5 s hold before the last frame: irregular timestamps, kept as they are
    clip = make_bookended_clip(tmp_path / "vfr.mp4", timing=",setpts='(N/24+if(gte(N,49),1.5,0))/TB'")
    timestamps = sorted(pts for pts, _ in video._probe_media(clip).video.packets)
    assert len({b - a for a, b in itertools.pairwise(timestamps)}) > 1  # really variable
    out = tmp_path / "last.png"
    last_frame(clip, out)
    assert close_to(mean_colour(out), LIME), mean_colour(out)


def test_last_frame_when_the_container_outlasts_the_video(tmp_path: Path) -> None:
    tone = ["-f", "lavfi", "-i", "sine=frequency=440:duration=5", "-c:a", "aac"]
    clip = make_bookended_clip(tmp_path / "long-audio.mp4", extra_input=tone)
    assert probe(clip).seconds < 2.2  # the video stream; the container says 5 s
    out = tmp_path / "last.png"
    last_frame(clip, out)
    assert close_to(mean_colour(out), LIME), mean_colour(out)


def test_last_frame_decodes_it_all_when_the_seek_overshoots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clip = make_bookended_clip(tmp_path / "clip.mp4")
    monkeypatch.setattr(video, "_LAST_FRAME_WINDOW", -10.0)  # seek 10 s past the last frame: nothing decoded there
    out = tmp_path / "last.png"
    last_frame(clip, out)
    assert close_to(mean_colour(out), LIME), mean_colour(out)


@pytest.mark.parametrize("faststart", [False, True], ids=["index-at-end", "index-first"])
def test_a_truncated_video_has_no_last_frame(tmp_path: Path, faststart: bool) -> None:
    whole = tmp_path / "whole.mp4"
    make_clip(whole, seconds=2.0, colour="yellow")
    if faststart:  # the index survives the cut: ffmpeg reads the frames that arrived, then finds the rest missing
        subprocess.run(
            [
                video.ffmpeg_exe(),
                *FFMPEG,
                "-i",
                str(whole),
                "-c",
                "copy",
                "-movflags",
                "+faststart",
                str(tmp_path / "fs.mp4"),
            ],
            check=True,
            capture_output=True,
        )
        whole = tmp_path / "fs.mp4"
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) - len(data) // 8])  # the last few frames lost
    out = tmp_path / "last.png"
    with pytest.raises(StorycError, match=r"cut\.mp4"):
        last_frame(cut, out)
    with pytest.raises(StorycError, match=r"cut\.mp4"):
        stored_frame(cut, "last", tmp_path / "store")
    assert not out.exists() and leftovers(tmp_path) == []
    assert not (tmp_path / "store").exists() or list((tmp_path / "store").iterdir()) == []


def test_stored_frames_are_extracted_once_per_content(tmp_path: Path) -> None:
    clip = make_bookended_clip(tmp_path / "clip.mp4")
    store = tmp_path / "frames"
    last = stored_frame(clip, "last", store)
    first = stored_frame(clip, "first", store)
    digest = hashlib.sha256(clip.read_bytes()).hexdigest()
    assert (last, first) == (store / f"{digest}-last.png", store / f"{digest}-first.png")
    assert close_to(mean_colour(last), LIME) and close_to(mean_colour(first), BLUE)
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (last, first)}

    copy = tmp_path / "elsewhere" / "renamed.mp4"  # the same bytes under another name: the same frames
    copy.parent.mkdir()
    copy.write_bytes(clip.read_bytes())
    assert stored_frame(clip, "last", store) == last
    assert stored_frame(copy, "last", store) == last and stored_frame(copy, "first", store) == first
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (last, first)} == before  # not written again
    assert sorted(p.name for p in store.iterdir()) == sorted([last.name, first.name])  # no leftovers

    other = make_clip(tmp_path / "yellow.mp4", colour="yellow")
    assert close_to(mean_colour(stored_frame(other, "last", store)), YELLOW)


def test_stored_frame_refuses_what_is_not_a_video_file(tmp_path: Path) -> None:
    with pytest.raises(StorycError, match="no such file"):
        stored_frame(tmp_path / "missing.mp4", "last", tmp_path / "store")
    with pytest.raises(StorycError, match="not a regular file"):
        stored_frame(tmp_path, "first", tmp_path / "store")
    with pytest.raises(ValueError, match="unknown frame position"):
        stored_frame(make_clip(tmp_path / "a.mp4"), "middle", tmp_path / "store")  # type: ignore[arg-type]
