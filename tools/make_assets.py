"""Regenerate the example boards' reference images and videos, deterministically.

    python tools/make_assets.py

Images are drawn with Pillow (flat shapes compress to a few KB), videos are
encoded with the ffmpeg binary from imageio-ffmpeg. Every image respects the
limits storyc checks: PNG or JPEG, >= 300 px a side, aspect within 1:2.5..2.5:1.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent


def elephant(view: str, size: tuple[int, int] = (320, 400)) -> Image.Image:
    image = Image.new("P", size, 0)
    image.putpalette([232, 222, 200, 120, 124, 130, 200, 30, 40, 40, 40, 40, 250, 250, 250] + [0] * 750)
    draw = ImageDraw.Draw(image)
    if view == "front":
        draw.ellipse((60, 90, 260, 300), fill=1)  # head
        draw.ellipse((10, 110, 110, 250), fill=1)  # ears
        draw.ellipse((210, 110, 310, 250), fill=1)
        draw.rectangle((140, 250, 180, 370), fill=1)  # trunk
        draw.ellipse((115, 160, 135, 180), fill=3)
        draw.ellipse((185, 160, 205, 180), fill=3)
        draw.rectangle((70, 290, 250, 320), fill=2)  # scarf
    elif view == "side":
        draw.ellipse((40, 140, 260, 320), fill=1)  # body
        draw.ellipse((200, 90, 300, 200), fill=1)  # head
        draw.rectangle((270, 170, 295, 330), fill=1)  # trunk
        for x in (70, 120, 180, 220):
            draw.rectangle((x, 290, x + 30, 380), fill=1)
        draw.rectangle((195, 190, 255, 215), fill=2)
        draw.ellipse((260, 120, 272, 132), fill=3)
    else:  # back
        draw.ellipse((50, 120, 270, 340), fill=1)
        draw.ellipse((10, 110, 110, 250), fill=1)
        draw.ellipse((210, 110, 310, 250), fill=1)
        draw.line((160, 330, 160, 380), fill=3, width=6)  # tail
        draw.rectangle((70, 120, 250, 145), fill=2)
    return image


def palette(colors: list[tuple[int, int, int]], size: tuple[int, int] = (400, 320)) -> Image.Image:
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    band = size[1] / len(colors)
    for i, color in enumerate(colors):
        draw.rectangle((0, round(i * band), size[0], round((i + 1) * band)), fill=color)
    return image


def savanna(sun_height: float, size: tuple[int, int] = (480, 320)) -> Image.Image:
    image = Image.new("RGB", size, (250, 200, 140))
    draw = ImageDraw.Draw(image)
    w, h = size
    sun_y = int(h * sun_height)
    draw.ellipse((w // 2 - 30, sun_y - 30, w // 2 + 30, sun_y + 30), fill=(255, 235, 160))
    draw.rectangle((0, int(h * 0.65), w, h), fill=(190, 150, 80))
    draw.ellipse((60, int(h * 0.5), 150, int(h * 0.62)), fill=(70, 90, 50))  # acacia crown
    draw.rectangle((100, int(h * 0.6), 108, int(h * 0.68)), fill=(60, 40, 30))
    return image


def ball(view: str, size: tuple[int, int] = (360, 360)) -> Image.Image:
    """A red ball with a white stripe, seen from the front (stripe across) or the side (stripe around)."""
    image = Image.new("P", size, 0)
    image.putpalette([240, 232, 214, 200, 40, 40, 250, 250, 250] + [0] * 759)
    draw = ImageDraw.Draw(image)
    draw.ellipse((40, 40, 320, 320), fill=1)
    if view == "front":
        draw.rectangle((40, 165, 320, 195), fill=2)
    else:
        draw.ellipse((150, 40, 210, 320), outline=2, width=14)
    return image


def ball_video(path: Path) -> None:
    """A 3 s clip of a blue ball rolling across the frame.

    The ball is a small blue square overlaid at x = 20 + 90 t: drawbox's own `x='t*100'` is evaluated
    once, not per frame, which left an earlier version of this clip one flat colour.
    """
    from storyc.media.video import run_ffmpeg

    source = (
        "color=c=0xE8DEC8:s=360x360:r=12:d=3[bg];color=c=0x1E64C8:s=60x60:r=12:d=3[ball];"
        "[bg][ball]overlay=x='20+90*t':y=150:eval=frame"
    )
    run_ffmpeg(
        [
            "-y",
            "-filter_complex",
            source,
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-crf",
            "38",
            "-preset",
            "veryslow",
            "-movflags",
            "+faststart",
            "-fflags",
            "+bitexact",
            "-flags:v",
            "+bitexact",
            str(path),
        ],
        what="ball video",
    )


def elephant_example() -> None:
    refs = ROOT / "examples" / "elephant" / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    for view in ("front", "side", "back"):
        elephant(view).save(refs / f"ellie-{view}.png", optimize=True)
    palette([(255, 200, 120), (250, 160, 90), (230, 110, 80), (120, 70, 90)]).save(
        refs / "dawn-palette.jpg", quality=60
    )
    savanna(0.6).save(refs / "open.png", optimize=True)
    savanna(0.25).save(refs / "close.png", optimize=True)
    ball_video(refs / "ball.mp4")


def keyframes_example() -> None:
    """The stills example: what the stills themselves are generated from."""
    refs = ROOT / "examples" / "keyframes" / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    elephant("side").save(refs / "ellie-side.png", optimize=True)
    palette([(255, 200, 120), (250, 160, 90), (230, 110, 80), (120, 70, 90)]).save(
        refs / "dawn-palette.jpg", quality=60
    )
    for view in ("front", "side"):
        ball(view).save(refs / f"ball-{view}.png", optimize=True)


if __name__ == "__main__":
    elephant_example()
    keyframes_example()
