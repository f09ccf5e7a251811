"""storyc.media.animatic: cards and scene animatics, checked by decoding the MP4s they produce."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat

from storyc.media import animatic, video
from storyc.media.animatic import (
    BACKGROUND,
    REF_COLOURS,
    AnimaticScene,
    CardRef,
    CardShot,
    Hold,
    draw_card,
    frame_size,
    prompt_layout,
    render_scene,
    timeline,
)
from storyc.media.video import VideoError, probe

FPS = 24
FFMPEG = ("-nostdin", "-hide_banner", "-loglevel", "error", "-y")


def shot(number: int, seconds: int, *segments: tuple[str, str | None], refs: tuple[CardRef, ...] = ()) -> CardShot:
    return CardShot(number=number, seconds=seconds, segments=segments or (("A quiet shot.", None),), refs=refs)


def scene(*shots: CardShot, aspect: str = "16:9", start: Path | None = None, end: Path | None = None) -> AnimaticScene:
    return AnimaticScene("meet", "The elephant and the ball", aspect, shots, start_frame=start, end_frame=end)  # type: ignore[arg-type]


def solid(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (640, 360)) -> Path:
    Image.new("RGB", size, colour).save(path)
    return path


def frame_at(clip: Path, n: int, folder: Path) -> Image.Image:
    """Decode frame number `n` of `clip`."""
    out = folder / f"{clip.stem}-{n}.png"
    args = ["-i", str(clip), "-vf", f"select=eq(n\\,{n})", "-fps_mode", "passthrough", "-frames:v", "1"]
    subprocess.run([video.ffmpeg_exe(), *FFMPEG, *args, str(out)], check=True, capture_output=True)
    with Image.open(out) as image:
        return image.convert("RGB")


def near(a: tuple[float, ...], b: tuple[float, ...], tol: float) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def colour_count(image: Image.Image, colour: tuple[int, int, int]) -> int:
    counts = {c: n for n, c in image.getcolors(image.width * image.height) or []}
    return counts.get(colour, 0)


def long_prompt(chars: int) -> tuple[tuple[str, str | None], ...]:
    sentence = "walks slowly across the sunlit clearing while dust drifts through long shadows and the camera follows, "
    segments: list[tuple[str, str | None]] = []
    length = 0
    while length < chars:
        segments += [("", "ellie"), (" " + sentence, None)]
        length += len("@ellie " + sentence)
    text = "".join(t if r is None else f"@{r}" for t, r in segments)
    assert len(text) >= chars
    return tuple(segments)


# --------------------------------------------------------------------------- sizes and timeline


@pytest.mark.parametrize(
    ("aspect", "size", "expected"),
    [
        ("16:9", "preview", (1280, 720)),
        ("9:16", "preview", (720, 1280)),
        ("1:1", "preview", (720, 720)),
        ("16:9", "4k", (3840, 2160)),
        ("9:16", "4k", (2160, 3840)),
        ("1:1", "4k", (2160, 2160)),
    ],
)
def test_frame_size(aspect: str, size: str, expected: tuple[int, int]) -> None:
    assert frame_size(aspect, size) == expected  # type: ignore[arg-type]


def test_timeline_takes_start_and_end_holds_out_of_the_first_and_last_shots(tmp_path: Path) -> None:
    img = tmp_path / "x.png"
    one = scene(shot(1, 1), start=img, end=img)
    assert timeline(one, FPS) == (Hold("start", 0, 6), Hold("shot", 0, 12), Hold("end", 0, 6))
    long = scene(shot(1, 8), shot(2, 2), shot(3, 5), start=img, end=img)
    assert [h.frames for h in timeline(long, FPS)] == [24, 8 * 24 - 24, 2 * 24, 5 * 24 - 24, 24]
    assert [h.frames for h in timeline(scene(shot(1, 3), shot(2, 2)), FPS)] == [72, 48]


@pytest.mark.parametrize(
    ("bad", "match"),
    [(scene(), "no shots"), (scene(shot(1, 0)), "seconds"), (scene(shot(1, 2)), "fps")],
)
def test_invalid_scenes_are_rejected(bad: AnimaticScene, match: str, tmp_path: Path) -> None:
    fps = 0 if match == "fps" else FPS
    with pytest.raises(ValueError, match=match):
        render_scene(bad, tmp_path / "x.mp4", fps=fps)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("aspect", ["16:9", "9:16", "1:1"])
def test_render_scene_has_the_frame_size_and_exact_duration(tmp_path: Path, aspect: str) -> None:
    out = tmp_path / "renders" / "meet.mp4"
    render_scene(scene(shot(1, 1), shot(2, 2), aspect=aspect), out)
    info = probe(out)
    assert (info.width, info.height) == frame_size(aspect)  # type: ignore[arg-type]
    assert info.fps == pytest.approx(FPS)
    assert info.frames == 3 * FPS
    assert info.seconds == pytest.approx(3.0, abs=1 / FPS)
    assert [p.name for p in out.parent.iterdir()] == ["meet.mp4"]  # no temporary files left


@pytest.fixture(scope="module")
def bookended(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 16:9 scene (2 s + 1 s) opening on a red 16:9 image and closing on a blue square one."""
    folder = tmp_path_factory.mktemp("bookended")
    start = solid(folder / "start.png", (200, 40, 40))
    end = solid(folder / "end.jpg", (40, 60, 210), size=(400, 400))
    out = folder / "scene.mp4"
    render_scene(scene(shot(1, 2), shot(2, 1), start=start, end=end), out)
    return out, folder


def test_start_and_end_frames_keep_the_total_duration(bookended: tuple[Path, Path]) -> None:
    info = probe(bookended[0])
    assert info.frames == 3 * FPS
    assert info.seconds == pytest.approx(3.0, abs=1 / FPS)


def test_first_frame_shows_the_start_image(bookended: tuple[Path, Path]) -> None:
    clip, folder = bookended
    first = ImageStat.Stat(frame_at(clip, 0, folder)).mean
    assert near(tuple(first), (200, 40, 40), tol=6), first
    # the start image is held for a quarter of the 2 s first shot (12 frames), then the card
    assert near(tuple(ImageStat.Stat(frame_at(clip, 11, folder)).mean), (200, 40, 40), tol=6)
    assert not near(tuple(ImageStat.Stat(frame_at(clip, 12, folder)).mean), (200, 40, 40), tol=60)


def test_last_frames_show_the_end_image_letterboxed(bookended: tuple[Path, Path]) -> None:
    clip, folder = bookended
    last = frame_at(clip, 3 * FPS - 1, folder)
    assert near(last.getpixel((640, 360)), (40, 60, 210), tol=8)  # type: ignore[arg-type]
    assert near(last.getpixel((20, 360)), (0, 0, 0), tol=8)  # type: ignore[arg-type]  # pillarbox
    # a quarter of the 1 s last shot is 6 frames: frame 65 is still the card
    assert near(frame_at(clip, 3 * FPS - 6, folder).getpixel((640, 360)), (40, 60, 210), tol=8)  # type: ignore[arg-type]
    assert not near(frame_at(clip, 3 * FPS - 7, folder).getpixel((640, 360)), (40, 60, 210), tol=60)  # type: ignore[arg-type]


def test_render_4k(tmp_path: Path) -> None:
    out = tmp_path / "4k.mp4"
    render_scene(scene(shot(1, 1)), out, size="4k")
    info = probe(out)
    assert (info.width, info.height) == (3840, 2160)
    assert info.frames == FPS


def test_long_prompt_renders(tmp_path: Path) -> None:
    ellie = CardRef("ellie", "character", solid(tmp_path / "ellie.png", (90, 90, 90)))
    out = tmp_path / "long.mp4"
    render_scene(scene(shot(1, 1, *long_prompt(2500), refs=(ellie,)), aspect="1:1"), out)
    assert probe(out).frames == FPS


def test_failed_encode_keeps_the_old_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "meet.mp4"
    out.write_bytes(b"old")
    real = animatic._encode_args

    def broken(*args: object, **kwargs: object) -> list[str]:
        argv = real(*args, **kwargs)  # type: ignore[arg-type]
        argv[argv.index("-filter_complex") + 1] = "no_such_filter[v]"
        return argv

    monkeypatch.setattr(animatic, "_encode_args", broken)
    with pytest.raises(VideoError, match="no_such_filter"):
        render_scene(scene(shot(1, 1)), out)
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["meet.mp4"]


def test_unreadable_start_frame_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "start.png"
    bad.write_text("not an image")
    with pytest.raises(VideoError, match=r"start_frame.*start\.png"):
        render_scene(scene(shot(1, 1), start=bad), tmp_path / "x.mp4")


# --------------------------------------------------------------------------- cards


@pytest.mark.parametrize("aspect", ["16:9", "9:16", "1:1"])
def test_a_2500_character_prompt_fits_without_cutting(tmp_path: Path, aspect: str) -> None:
    refs = (
        CardRef("ellie", "character", None),
        CardRef("ball", "character", None),
        CardRef("dawn", "style", None),
    )
    card_scene = scene(shot(1, 3, *long_prompt(2500), refs=refs), aspect=aspect)
    layout = prompt_layout(card_scene, card_scene.shots[0])
    assert not layout.truncated
    assert layout.font_px >= 9  # small, but legible at preview size
    assert draw_card(card_scene, card_scene.shots[0]).size == frame_size(aspect)  # type: ignore[arg-type]


def test_an_overlong_prompt_is_cut_with_an_ellipsis() -> None:
    card_scene = scene(shot(1, 3, *long_prompt(12_000)), aspect="1:1")
    layout = prompt_layout(card_scene, card_scene.shots[0])
    assert layout.truncated
    assert layout.lines[-1][-1] == (("…", None),)
    draw_card(card_scene, card_scene.shots[0])


def test_a_word_longer_than_a_line_is_broken() -> None:
    card_scene = scene(shot(1, 3, ("x" * 3000, None)))
    layout = prompt_layout(card_scene, card_scene.shots[0])
    assert len(layout.lines) > 5
    assert not layout.truncated


def test_draw_card_highlights_reference_runs() -> None:
    text = (" walks in, lit like ", None)
    highlighted = draw_card(scene(s := shot(1, 3, ("", "ellie"), text, ("", "dawn"))), s)
    plain = draw_card(scene(p := shot(1, 3, ("@ellie", None), text, ("@dawn", None))), p)
    # the runs are not in `refs`, so they get the "unknown" colour; with refs, the kind's colour
    assert colour_count(highlighted, REF_COLOURS["unknown"]) > 50
    assert colour_count(plain, REF_COLOURS["unknown"]) == 0
    kinds = (CardRef("ellie", "character", None), CardRef("dawn", "style", None))
    with_refs = shot(1, 3, ("", "ellie"), text, ("", "dawn"), refs=kinds)
    card = draw_card(scene(with_refs), with_refs)
    prompt_area = card.crop((0, 150, 1280, 400))  # above the thumbnail row
    assert colour_count(prompt_area, REF_COLOURS["character"]) > 50
    assert colour_count(prompt_area, REF_COLOURS["style"]) > 50


def test_character_and_style_thumbnails_are_told_apart(tmp_path: Path) -> None:
    refs = (
        CardRef("ellie", "character", solid(tmp_path / "ellie.png", (10, 200, 10))),
        CardRef("dawn", "style", None),  # remote: a placeholder chip
        CardRef("gone", "style", tmp_path / "missing.png"),  # unreadable: a placeholder, not a crash
    )
    card = draw_card(scene(s := shot(1, 3, refs=refs)), s)
    row = card.crop((0, 450, 1280, 720))
    assert colour_count(row, REF_COLOURS["character"]) > 200  # border and name label
    assert colour_count(row, REF_COLOURS["style"]) > 400
    # 200x150 boxes from x=40 every 216 px, top at y=483: the placeholders' initials sit inside the borders
    for centre_x in (356, 572):
        inside = card.crop((centre_x - 40, 523, centre_x + 40, 593))
        assert colour_count(inside, REF_COLOURS["style"]) > 100
    greens = sum(n for n, (r, g, b) in _colors(row) if g > 180 and r < 40 and b < 40)
    assert greens > 5000


def test_video_reference_thumbnail_is_decoded_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clip = tmp_path / "ball.mp4"
    args = ["-f", "lavfi", "-i", "color=c=0x10C810:s=320x240:r=24:d=0.5", "-pix_fmt", "yuv420p", str(clip)]
    subprocess.run([video.ffmpeg_exe(), *FFMPEG, *args], check=True, capture_output=True)
    calls: list[Path] = []
    real = video.representative_frame

    def counting(src: Path, out_png: Path) -> None:
        calls.append(src)
        real(src, out_png)

    monkeypatch.setattr(video, "representative_frame", counting)
    ball = CardRef("ball", "character", clip)
    cards = [draw_card(scene(s), s) for s in (shot(1, 3, refs=(ball,)), shot(2, 2, refs=(ball,)))]
    assert len(calls) == 1  # decoded once, then cached
    for card in cards:
        row = card.crop((0, 450, 1280, 720))
        greens = sum(n for n, (r, g, b) in _colors(row) if g > 170 and r < 50 and b < 50)
        assert greens > 5000


def test_4k_card_is_the_preview_card_scaled_up() -> None:
    refs = (CardRef("ellie", "character", None), CardRef("dawn", "style", None))
    s = shot(2, 3, ("", "ellie"), (" crosses the clearing in the light of ", None), ("", "dawn"), refs=refs)
    board = scene(shot(1, 2), s, shot(3, 4))
    preview = draw_card(board, s, "preview")
    big = draw_card(board, s, "4k")
    assert big.size == (3840, 2160)
    diff = ImageStat.Stat(ImageChops.difference(big.resize(preview.size, Image.Resampling.BOX), preview)).mean
    assert max(diff) < 6, diff  # same layout; only anti-aliasing differs
    assert colour_count(preview, BACKGROUND) > 0.6 * 1280 * 720


def test_importing_the_video_layer_loads_no_heavy_library() -> None:
    code = "import sys, storyc.media.animatic, storyc.media.video; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert not {"PIL", "imageio_ffmpeg", "numpy"} & set(done.stdout.split())


def _colors(image: Any) -> list[tuple[int, tuple[int, int, int]]]:
    """(count, RGB) for each colour of an RGB image (Pillow types them loosely)."""
    return list(image.getcolors(image.width * image.height) or [])


def test_start_and_end_frames_are_labelled_as_such(tmp_path: Path) -> None:
    from PIL import Image

    from storyc.media import animatic

    picture = tmp_path / "open.png"
    Image.new("RGB", (1280, 720), (200, 30, 30)).save(picture)
    scene = animatic.AnimaticScene(
        scene_id="meet", title="T", aspect_ratio="16:9", shots=(), start_frame=picture, end_frame=picture
    )
    for kind in ("start", "end"):
        still = animatic._write_still(scene, animatic.Hold(kind, 0, 24), "preview", tmp_path / f"{kind}.bmp")
        with Image.open(still) as image:
            rgb = image.convert("RGB")
            assert rgb.getpixel((45, 45)) == animatic.BOX  # the label's box, top left
            assert rgb.getpixel((640, 600)) == (200, 30, 30)  # the picture itself, untouched elsewhere


def test_thumbnail_captions_stay_readable_on_a_crowded_vertical_card() -> None:
    from storyc.media import animatic

    grid = animatic._Grid(720, 1280)  # a 9:16 preview card
    seven_across = (grid.width - 2 * grid.margin - 6 * grid.px(16)) // 7
    name_px, kind_px = animatic.caption_px(grid, seven_across)
    assert name_px >= 14 and kind_px >= 12


def test_one_colour_per_kind_on_cards_and_in_the_sheet() -> None:
    import re

    import storyc.preview.sheet
    from storyc.media import animatic

    css = (Path(storyc.preview.sheet.__file__).parent / "sheet.html").read_text("utf-8")
    for kind in ("character", "style"):
        hex_colour = re.search(rf"--{kind}:#([0-9a-f]{{6}})", css)
        assert hex_colour is not None
        r, _, b = (int(hex_colour[1][i : i + 2], 16) for i in (0, 2, 4))
        card_r, _, card_b = animatic.REF_COLOURS[kind]
        assert (r > b) == (card_r > card_b), kind  # warm for characters, cool for styles, on both
