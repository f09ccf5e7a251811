"""Animatics: each shot of a scene as a still card, held for exactly its duration, encoded to MP4.

A card shows the scene id and title, "shot N of M · Ds", a strip of the scene's
shots, the compiled prompt (references highlighted as `@name`) and a row of
reference thumbnails. Cards are drawn once each with Pillow; ffmpeg repeats
them (the `loop` filter), so the frame count is exact by construction and no
frame is drawn in Python more than once.
"""

from __future__ import annotations

import functools
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from storyc.media import video

if TYPE_CHECKING:
    from PIL import Image, ImageDraw, ImageFont

AspectRatio = Literal["16:9", "9:16", "1:1"]
CardSize = Literal["preview", "4k"]
Colour = tuple[int, int, int]

_FRAME_SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "preview": {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (720, 720)},
    "4k": {"16:9": (3840, 2160), "9:16": (2160, 3840), "1:1": (2160, 2160)},
}

BACKGROUND: Colour = (18, 20, 26)
TEXT: Colour = (236, 238, 242)
MUTED: Colour = (138, 145, 160)
STRIP: Colour = (58, 62, 74)
BOX: Colour = (10, 11, 14)
REF_COLOURS: dict[str, Colour] = {
    "character": (255, 183, 77),  # amber
    "style": (94, 200, 255),  # sky blue
    "unknown": (255, 110, 180),  # a run naming a reference the shot does not list
}
_VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".webm", ".mkv"})
_THUMB_CACHE_PX = 768  # decoded thumbnails are kept at most this big (enough for a 4k card)
# x264 for held stills: there is no motion, so B-frames, extra reference frames, a deep lookahead and
# sub-pixel refinement cost time and buy nothing (measured: ~25% faster, same error, slightly smaller files).
_ENCODE = (
    *("-c:v", "libx264", "-preset", "veryfast", "-tune", "stillimage", "-crf", "20", "-pix_fmt", "yuv420p"),
    *("-x264-params", "bframes=0:ref=1:rc-lookahead=5:subme=1"),
)
_BT709 = ("-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv")


@dataclass(frozen=True)
class CardRef:
    name: str  # e.g. "ellie"
    kind: Literal["character", "style"]
    thumbnail: Path | None  # local image, or local video (its first frame is used); None for a remote URL


@dataclass(frozen=True)
class CardShot:
    number: int  # 1-based
    seconds: int  # whole seconds >= 1
    segments: tuple[tuple[str, str | None], ...]  # (text, reference name or None) runs; references show as @name
    refs: tuple[CardRef, ...]  # references this shot mentions, in order


@dataclass(frozen=True)
class AnimaticScene:
    scene_id: str
    title: str  # storyboard title
    aspect_ratio: Literal["16:9", "9:16", "1:1"]
    shots: tuple[CardShot, ...]
    start_frame: Path | None = None
    end_frame: Path | None = None
    candidates: bool = False  # a still's candidate cards: each "shot" is a candidate, with no duration


@dataclass(frozen=True)
class Hold:
    """One still of a scene's timeline: what it shows and for how many frames."""

    kind: Literal["start", "shot", "end"]
    shot: int  # index into scene.shots; for start/end, the shot whose time it takes
    frames: int


@dataclass(frozen=True)
class PromptLayout:
    """How a prompt was fitted on a card: font size, wrapped lines, whether it had to be cut."""

    font_px: int
    lines: tuple[tuple[tuple[tuple[str, str | None], ...], ...], ...]  # line -> word -> (text, ref)
    truncated: bool


# --------------------------------------------------------------------------- timeline and sizes


def frame_size(aspect_ratio: AspectRatio, size: CardSize = "preview") -> tuple[int, int]:
    """(width, height) in pixels of a card or animatic."""
    try:
        return _FRAME_SIZES[size][aspect_ratio]
    except KeyError:
        raise ValueError(f"unknown frame size {size!r} / aspect ratio {aspect_ratio!r}") from None


def timeline(scene: AnimaticScene, fps: int = 24) -> tuple[Hold, ...]:
    """The stills of `scene` in order with their frame counts; they sum to sum(shot seconds) * fps.

    A start (end) frame is held for min(1 s, a quarter of the first (last) shot), rounded
    down to whole frames, taken out of that shot's card.
    """
    _check(scene, fps)
    frames = [shot.seconds * fps for shot in scene.shots]
    start = min(fps, frames[0] // 4) if scene.start_frame else 0
    end = min(fps, frames[-1] // 4) if scene.end_frame else 0
    frames[0] -= start
    frames[-1] -= end
    holds = [Hold("start", 0, start)]
    holds += [Hold("shot", i, n) for i, n in enumerate(frames)]
    holds.append(Hold("end", len(frames) - 1, end))
    return tuple(h for h in holds if h.frames > 0)


def _check(scene: AnimaticScene, fps: int) -> None:
    if not scene.shots:
        raise ValueError(f"scene {scene.scene_id!r} has no shots")
    if not isinstance(fps, int) or fps < 1:
        raise ValueError(f"fps must be a whole number >= 1, not {fps!r}")
    for shot in scene.shots:
        if not isinstance(shot.seconds, int) or shot.seconds < 1:
            raise ValueError(f"scene {scene.scene_id!r} shot {shot.number}: seconds must be a whole number >= 1")


# --------------------------------------------------------------------------- rendering


def render_scene(scene: AnimaticScene, out: Path, *, size: CardSize = "preview", fps: int = 24) -> None:
    """Write `scene` as an H.264 MP4 animatic to `out` (atomically), exactly sum(shot seconds) long."""
    holds = timeline(scene, fps)
    total = sum(h.frames for h in holds)
    with tempfile.TemporaryDirectory(prefix="storyc-animatic-") as tmp:
        stills = [
            _write_still(scene, hold, size, Path(tmp) / f"{i:03d}-{hold.kind}.bmp") for i, hold in enumerate(holds)
        ]
        args = _encode_args(stills, [h.frames for h in holds], fps, total)
        with video.atomic_output(Path(out), ".mp4") as dest:
            video.run_ffmpeg([*args, str(dest)], what=f"cannot encode the animatic of scene {scene.scene_id!r}")


def _write_still(scene: AnimaticScene, hold: Hold, size: CardSize, path: Path) -> Path:
    """Save the picture of one hold as an uncompressed BMP (writes ~10x faster than PNG; ffmpeg reads it once)."""
    if hold.kind == "shot":
        image = draw_card(scene, scene.shots[hold.shot], size)
    else:
        frame = scene.start_frame if hold.kind == "start" else scene.end_frame
        assert frame is not None
        image = _letterboxed(frame, frame_size(scene.aspect_ratio, size), f"scene {scene.scene_id!r} {hold.kind}_frame")
        _label_frame(image, f"{hold.kind.upper()} FRAME  ·  {scene.scene_id}")
    image.save(path, "BMP")
    return path


def _label_frame(image: Image.Image, label: str) -> None:
    """Mark a start or end frame as such, so a reviewer never takes the reference picture for footage."""
    from PIL import ImageDraw

    grid = _Grid(image.width, image.height)
    px = grid.px(26)
    draw = ImageDraw.Draw(image)
    font = _font(px)
    left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
    pad = grid.px(12)
    box = (grid.margin, grid.margin, grid.margin + right - left + 2 * pad, grid.margin + bottom - top + 2 * pad)
    draw.rectangle(box, fill=BOX)
    draw.text((box[0] + pad - left, box[1] + pad - top), label, font=font, fill=TEXT)


def _encode_args(stills: Sequence[Path], frames: Sequence[int], fps: int, total: int) -> list[str]:
    """ffmpeg arguments (all but the output path) holding still i for frames[i] frames at `fps`.

    Each still is converted to BT.709 YUV once, repeated by `loop` to its exact frame
    count, the pieces concatenated and re-stamped 0, 1/fps, 2/fps, ... so the
    constant-rate output has exactly `total` frames. Every card starts on a keyframe.
    """
    inputs = [arg for still in stills for arg in ("-i", str(still))]
    chains = [
        f"[{i}:v]scale=out_color_matrix=bt709:out_range=tv,format=yuv420p,loop=loop={n - 1}:size=1:start=0[s{i}]"
        for i, n in enumerate(frames)
    ]
    pads = "".join(f"[s{i}]" for i in range(len(frames)))
    graph = ";".join([*chains, f"{pads}concat=n={len(frames)}:v=1:a=0,setpts=N/({fps}*TB),setsar=1[v]"])
    starts = [sum(frames[:i]) for i in range(len(frames))]
    keyframes = "expr:" + "+".join(f"eq(n,{s})" for s in starts)
    output = ["-map", "[v]", *_ENCODE, *_BT709, "-force_key_frames", keyframes, "-r", str(fps)]
    output += ["-frames:v", str(total), "-movflags", "+faststart", "-f", "mp4", "-y"]
    return [*inputs, "-filter_complex", graph, *output]


# --------------------------------------------------------------------------- images


def _letterboxed(path: Path, size: tuple[int, int], what: str) -> Image.Image:
    """The image (or a video's first frame) at `path`, fitted inside `size` on black."""
    from PIL import Image, ImageOps

    try:
        still = _open_still(Path(path), max(size))
    except (OSError, video.VideoError) as exc:
        raise video.VideoError(f"{what}: cannot read {path}: {exc}") from exc
    fitted = ImageOps.contain(still, size, Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", size, (0, 0, 0))
    canvas.paste(fitted, ((size[0] - fitted.width) // 2, (size[1] - fitted.height) // 2))
    return canvas


def _open_still(path: Path, px: int) -> Image.Image:
    """An upright RGB image from an image file, or from a representative frame of a video file.

    `px`: how big the caller will show it; a large JPEG is decoded at a
    reduced scale, never below that.
    """
    if path.suffix.lower() not in _VIDEO_SUFFIXES:
        return _load_rgb(path, px)
    with tempfile.TemporaryDirectory(prefix="storyc-frame-") as tmp:
        png = Path(tmp) / "frame.png"
        video.representative_frame(path, png)  # not the first: a clip may open on a flat colour
        return _load_rgb(png, px)


def _load_rgb(path: Path, px: int) -> Image.Image:
    """The image, decoded only if its header shows at most `assets.MAX_IMAGE_PIXELS` (else `OSError`).

    A 420 KB PNG can hold 12000x12000 pixels: decoding it whole, then turning
    and converting it, took the animatic and the sheet to 1.7 GB.
    """
    from PIL import Image, ImageOps

    from storyc.compile.assets import open_image, too_many_pixels
    from storyc.files import open_regular

    with open_regular(path) as f, open_image(f) as opened:  # a FIFO is refused, not waited on
        too_big = too_many_pixels(*opened.size)
        if too_big is not None:
            raise OSError(f"the image is {too_big}")
        if min(opened.width, opened.height) >= 2 * px:
            opened.draft("RGB", (px, px))  # JPEG: decode at 1/2 to 1/8 scale, still at least px a side
        image = ImageOps.exif_transpose(opened)  # a loaded copy, turned as the camera meant
    if image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, BOX)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def thumbnail(path: Path) -> Image.Image | None:
    """A reference's thumbnail (an image, or a video's first frame), cached per file; None if unreadable.

    The cache is keyed by path, modification time and size, so an edited file is re-read.
    Callers must not modify the returned image.
    """
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return _cached_thumbnail(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)


def first_frame_image(path: Path, px: int) -> Image.Image | None:
    """A video's first frame (what a player shows before it plays), upright, at its full size unless it is
    at least twice `px` a side; None if unreadable.  Not `thumbnail`'s representative frame: a poster is
    the frame the video opens on."""
    try:
        with tempfile.TemporaryDirectory(prefix="storyc-frame-") as tmp:
            png = Path(tmp) / "frame.png"
            video.first_frame(path, png)
            return _load_rgb(png, px)
    except (OSError, video.VideoError):
        return None


@functools.lru_cache(maxsize=64)
def _cached_thumbnail(path: str, mtime_ns: int, size: int) -> Image.Image | None:
    try:
        image = _open_still(Path(path), _THUMB_CACHE_PX)
    except (OSError, video.VideoError):
        return None
    image.thumbnail((_THUMB_CACHE_PX, _THUMB_CACHE_PX))
    return image


# --------------------------------------------------------------------------- the card


@dataclass(frozen=True)
class _Grid:
    """Layout units: everything is designed for a 720 px short side and scaled by `u`."""

    width: int
    height: int

    @property
    def u(self) -> float:
        return min(self.width, self.height) / 720

    def px(self, value: float) -> int:
        return max(1, round(value * self.u))

    @property
    def margin(self) -> int:
        return self.px(40)


@functools.lru_cache(maxsize=256)
def _font(px: int) -> ImageFont.FreeTypeFont:
    from PIL import ImageFont

    font = ImageFont.load_default(size=px)  # Pillow's bundled scalable font (Aileron)
    assert isinstance(font, ImageFont.FreeTypeFont)  # with a size, Pillow >= 10.1 gives the scalable one
    return font


def draw_card(scene: AnimaticScene, shot: CardShot, size: CardSize = "preview") -> Image.Image:
    """The still card of one shot: header, shot strip, prompt text and reference thumbnails."""
    from PIL import Image, ImageDraw

    grid = _Grid(*frame_size(scene.aspect_ratio, size))
    card = Image.new("RGB", (grid.width, grid.height), BACKGROUND)
    draw = ImageDraw.Draw(card)
    body_top = _draw_header(draw, grid, scene, shot)
    body_bottom = grid.height - grid.margin
    if shot.refs:
        body_bottom = _draw_refs(card, draw, grid, shot.refs) - grid.px(28)
    box = (grid.margin, body_top, grid.width - grid.margin, body_bottom)
    _draw_prompt(draw, grid, shot, box)
    return card


def _bold(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, px: int, fill: Colour, anchor: str) -> None:
    """Text made bolder with a thin stroke of its own colour (the bundled font has no bold face)."""
    draw.text(xy, text, font=_font(px), fill=fill, anchor=anchor, stroke_width=_stroke(px), stroke_fill=fill)


def _stroke(px: int) -> float:
    return max(0.35, px / 40)


def _ellipsize(text: str, font: ImageFont.FreeTypeFont, max_w: float) -> str:
    if font.getlength(text) <= max_w:
        return text
    while text and font.getlength(text + "…") > max_w:
        text = text[:-1]
    return text + "…"


def _draw_header(draw: ImageDraw.ImageDraw, grid: _Grid, scene: AnimaticScene, shot: CardShot) -> int:
    """Scene id and "shot N of M · Ds" on one line, the title under them, then the strip; returns the body top."""
    m, id_px, title_px = grid.margin, grid.px(30), grid.px(20)
    if scene.candidates:
        label = f"candidate {shot.number} of {len(scene.shots)}"
    else:
        label = f"shot {shot.number} of {len(scene.shots)} · {shot.seconds}s"
    label_font = _font(grid.px(26))
    baseline = m + _font(id_px).getmetrics()[0]
    draw.text((grid.width - m, baseline), label, font=label_font, fill=TEXT, anchor="rs")
    id_room = grid.width - 2 * m - label_font.getlength(label) - grid.px(24)
    _bold(draw, (m, baseline), _ellipsize(scene.scene_id, _font(id_px), id_room), id_px, TEXT, "ls")
    bottom = baseline + _font(id_px).getmetrics()[1]
    if scene.title:
        baseline = bottom + grid.px(8) + _font(title_px).getmetrics()[0]
        title = _ellipsize(scene.title, _font(title_px), grid.width - 2 * m)
        draw.text((m, baseline), title, font=_font(title_px), fill=MUTED, anchor="ls")
        bottom = baseline + _font(title_px).getmetrics()[1]
    strip_top = bottom + grid.px(16)
    _draw_strip(draw, grid, scene, shot, strip_top)
    return strip_top + grid.px(6) + grid.px(32)


def _draw_strip(draw: ImageDraw.ImageDraw, grid: _Grid, scene: AnimaticScene, shot: CardShot, top: int) -> None:
    """One bar per shot, as long as the shot; the current one lit."""
    gap, height = grid.px(4), grid.px(6)
    room = grid.width - 2 * grid.margin - gap * (len(scene.shots) - 1)
    total = sum(s.seconds for s in scene.shots)
    x = float(grid.margin)
    for other in scene.shots:
        w = room * other.seconds / total
        colour = TEXT if other is shot or other.number == shot.number else STRIP
        draw.rectangle((round(x), top, max(round(x), round(x + w) - 1), top + height - 1), fill=colour)
        x += w + gap


# ----------------------------------------------------------------------------- references row


def caption_px(grid: _Grid, box_w: int) -> tuple[int, int]:
    """Sizes of a thumbnail's name and kind: readable on a 9:16 card with seven references too
    (never below 14 and 12 px on a 720 px short side)."""
    name_px = max(grid.px(14), min(grid.px(20), box_w // 6))
    return name_px, max(grid.px(12), name_px * 3 // 4)


def _draw_refs(card: Image.Image, draw: ImageDraw.ImageDraw, grid: _Grid, refs: Sequence[CardRef]) -> int:
    """Thumbnails in a row along the bottom, name and kind under each; returns the row's top."""
    gap, room = grid.px(16), grid.width - 2 * grid.margin
    box_h = grid.px(180 if grid.height > grid.width else 150 if grid.width > grid.height else 120)
    box_w = box_h * 4 // 3
    if len(refs) * box_w + (len(refs) - 1) * gap > room:
        box_w = (room - (len(refs) - 1) * gap) // len(refs)
        box_h = box_w * 3 // 4
    name_px, kind_px = caption_px(grid, box_w)
    label_h = grid.px(8) + sum(_font(px).getmetrics()[0] + _font(px).getmetrics()[1] for px in (name_px, kind_px))
    top = grid.height - grid.margin - box_h - label_h
    for i, ref in enumerate(refs):
        x = grid.margin + i * (box_w + gap)
        _draw_thumb(card, draw, grid, ref, (x, top, x + box_w, top + box_h))
        _draw_ref_label(draw, grid, ref, (x, top + box_h + grid.px(8), box_w), (name_px, kind_px))
    return top


def _draw_thumb(
    card: Image.Image, draw: ImageDraw.ImageDraw, grid: _Grid, ref: CardRef, box: tuple[int, int, int, int]
) -> None:
    from PIL import ImageOps

    colour = REF_COLOURS[ref.kind]
    border, radius = max(2, grid.px(3)), grid.px(10)
    x0, y0, x1, y1 = box
    draw.rounded_rectangle(box, radius=radius, fill=BOX)
    image = thumbnail(ref.thumbnail) if ref.thumbnail is not None else None
    if image is not None:
        inset = border + grid.px(2)
        fitted = ImageOps.contain(image, (x1 - x0 - 2 * inset, y1 - y0 - 2 * inset))
        card.paste(fitted, ((x0 + x1 - fitted.width) // 2, (y0 + y1 - fitted.height) // 2))
    else:
        _draw_placeholder(draw, ref, box)
    draw.rounded_rectangle(box, radius=radius, outline=colour, width=border)


def _draw_placeholder(draw: ImageDraw.ImageDraw, ref: CardRef, box: tuple[int, int, int, int]) -> None:
    """A chip for a reference without a local picture: its initial, and "remote" or "missing"."""
    x0, y0, x1, y1 = box
    h = y1 - y0
    initial_px, note_px = max(6, h * 9 // 20), max(6, h // 9)
    _bold(draw, ((x0 + x1) / 2, y0 + h * 0.52), ref.name[:1].upper(), initial_px, REF_COLOURS[ref.kind], "mm")
    note = "remote" if ref.thumbnail is None else "missing"
    draw.text(((x0 + x1) / 2, y1 - h * 0.1), note, font=_font(note_px), fill=MUTED, anchor="ms")


def _draw_ref_label(
    draw: ImageDraw.ImageDraw, grid: _Grid, ref: CardRef, at: tuple[int, int, int], sizes: tuple[int, int]
) -> None:
    x, top, width = at
    name_px, kind_px = sizes
    baseline = top + _font(name_px).getmetrics()[0]
    name = _ellipsize(f"@{ref.name}", _font(name_px), width)
    _bold(draw, (x, baseline), name, name_px, REF_COLOURS[ref.kind], "ls")
    kind: str = ref.kind
    if ref.thumbnail is not None and ref.thumbnail.suffix.lower() in _VIDEO_SUFFIXES:
        kind += " · video"
    baseline += _font(name_px).getmetrics()[1] + _font(kind_px).getmetrics()[0]
    draw.text((x, baseline), _ellipsize(kind, _font(kind_px), width), font=_font(kind_px), fill=MUTED, anchor="ls")


# ----------------------------------------------------------------------------- prompt text

_Piece = tuple[str, str | None]  # (text, reference name or None)
_Word = tuple[_Piece, ...]
_NEWLINE: _Word = ()
_MAX_PX, _MIN_PX = 46, 7  # prompt font size range, in layout units
_LINE_SPACING = 1.3


def prompt_layout(scene: AnimaticScene, shot: CardShot, size: CardSize = "preview") -> PromptLayout:
    """How `shot`'s prompt is fitted on its card (the largest font size at which it fits the text box)."""
    from PIL import Image, ImageDraw

    grid = _Grid(*frame_size(scene.aspect_ratio, size))
    scratch = ImageDraw.Draw(Image.new("RGB", (grid.width, grid.height)))
    top = _draw_header(scratch, grid, scene, shot)
    bottom = grid.height - grid.margin
    if shot.refs:
        bottom = _refs_top(grid, shot.refs) - grid.px(28)
    return _fit(shot.segments, grid, grid.width - 2 * grid.margin, bottom - top)


def _refs_top(grid: _Grid, refs: Sequence[CardRef]) -> int:
    from PIL import Image, ImageDraw

    scratch = Image.new("RGB", (grid.width, grid.height))
    empty = tuple(CardRef(r.name, r.kind, None) for r in refs)
    return _draw_refs(scratch, ImageDraw.Draw(scratch), grid, empty)


def _draw_prompt(draw: ImageDraw.ImageDraw, grid: _Grid, shot: CardShot, box: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = box
    layout = _fit(shot.segments, grid, x1 - x0, y1 - y0)
    font, px = _font(layout.font_px), layout.font_px
    line_h = _line_height(px)
    ascent = font.getmetrics()[0]
    kinds: dict[str, str] = {ref.name: ref.kind for ref in shot.refs}
    y = y0 + max(0, (y1 - y0 - line_h * len(layout.lines)) // 2)  # centred in the box
    for line in layout.lines:
        _draw_line(draw, line, (x0, y + ascent), px, kinds)
        y += line_h


def _draw_line(
    draw: ImageDraw.ImageDraw, line: Sequence[_Word], origin: tuple[int, int], px: int, kinds: dict[str, str]
) -> None:
    font = _font(px)
    x, baseline = float(origin[0]), origin[1]
    _, top, _, bottom = font.getbbox("@Hg", anchor="ls")
    pad = _chip_pad(px)
    for i, word in enumerate(line):
        if i:
            x += font.getlength(" ")
        for text, ref in word:
            if ref is None:
                draw.text((x, baseline), text, font=font, fill=TEXT, anchor="ls")
                x += font.getlength(text)
                continue
            colour = REF_COLOURS[kinds.get(ref, "unknown")]
            width = _piece_width((text, ref), font, px)
            chip = (x, baseline + top - pad / 2, x + width, baseline + bottom + pad / 2)
            draw.rounded_rectangle(chip, radius=max(1, px // 5), fill=_mix(colour, BACKGROUND, 0.2))
            _bold(draw, (x + pad, baseline), text, px, colour, "ls")
            x += width


def _mix(a: Colour, b: Colour, t: float) -> Colour:
    r, g, bl = (round(b[k] + (a[k] - b[k]) * t) for k in range(3))
    return (r, g, bl)


def _chip_pad(px: int) -> float:
    return max(1.0, px * 0.18)


def _line_height(px: int) -> int:
    return max(px + 1, round(px * _LINE_SPACING))


def _piece_width(piece: _Piece, font: ImageFont.FreeTypeFont, px: int) -> float:
    text, ref = piece
    if ref is None:
        return font.getlength(text)
    return font.getlength(text) + 2 * _chip_pad(px) + 2 * _stroke(px)


def _word_width(word: _Word, font: ImageFont.FreeTypeFont, px: int) -> float:
    return sum(_piece_width(p, font, px) for p in word)


def _tokens(segments: Sequence[tuple[str, str | None]]) -> list[_Word]:
    """Words made of pieces (a reference and the punctuation glued to it stay one word); () is a line break."""
    tokens: list[_Word] = []
    word: list[_Piece] = []
    for text, ref in segments:
        if ref is not None:
            word.append((f"@{ref}", ref))
            continue
        for part in re.split(r"(\s+)", text):
            if part and not part.isspace():
                word.append((part, None))
            elif part:
                if word:
                    tokens.append(tuple(word))
                    word = []
                tokens.extend([_NEWLINE] * min(2, part.count("\n")))
    if word:
        tokens.append(tuple(word))
    return tokens


def _fit(segments: Sequence[tuple[str, str | None]], grid: _Grid, width: int, height: int) -> PromptLayout:
    """The largest font size whose wrapped text fits `width` x `height` (binary search); else cut at the smallest."""
    tokens = _tokens(segments)
    lo, hi = grid.px(_MIN_PX), grid.px(_MAX_PX)
    best: PromptLayout | None = None
    while lo <= hi:
        px = (lo + hi) // 2
        lines = _wrap(tokens, px, width)
        if len(lines) * _line_height(px) <= height:
            best, lo = PromptLayout(px, lines, truncated=False), px + 1
        else:
            hi = px - 1
    if best is not None:
        return best
    px = grid.px(_MIN_PX)
    return _truncate(_wrap(tokens, px, width), px, width, max(1, height // _line_height(px)))


def _wrap(tokens: Sequence[_Word], px: int, width: float) -> tuple[tuple[_Word, ...], ...]:
    font = _font(px)
    space = font.getlength(" ")
    lines: list[list[_Word]] = [[]]
    x = 0.0
    for token in tokens:
        if token == _NEWLINE:
            lines.append([])
            x = 0.0
            continue
        for word in _break_long(token, font, px, width):
            w = _word_width(word, font, px)
            if lines[-1] and x + space + w > width:
                lines.append([])
                x = 0.0
            x += (space if lines[-1] else 0.0) + w
            lines[-1].append(word)
    while lines and not lines[-1]:
        lines.pop()
    return tuple(tuple(line) for line in lines)


def _break_long(word: _Word, font: ImageFont.FreeTypeFont, px: int, width: float) -> list[_Word]:
    """A word wider than the line, cut into line-wide parts (references are never cut)."""
    if _word_width(word, font, px) <= width:
        return [word]
    parts: list[_Word] = []
    current: list[_Piece] = []
    used = 0.0
    for piece in word:
        units = [piece] if piece[1] is not None else [(ch, None) for ch in piece[0]]
        for unit in units:
            w = _piece_width(unit, font, px)
            if current and used + w > width:
                parts.append(tuple(current))
                current, used = [], 0.0
            current.append(unit)
            used += w
    if current:
        parts.append(tuple(current))
    return [_merge_plain(p) for p in parts]


def _merge_plain(word: _Word) -> _Word:
    """Join adjacent plain pieces back into one (fewer draw calls)."""
    merged: list[_Piece] = []
    for text, ref in word:
        if merged and ref is None and merged[-1][1] is None:
            merged[-1] = (merged[-1][0] + text, None)
        else:
            merged.append((text, ref))
    return tuple(merged)


def _truncate(lines: Sequence[Sequence[_Word]], px: int, width: float, max_lines: int) -> PromptLayout:
    """Keep the first `max_lines` lines and end the last with an ellipsis."""
    font = _font(px)
    kept = [list(line) for line in lines[:max_lines]]
    last = kept[-1]
    ellipsis: _Word = (("…", None),)
    space = font.getlength(" ")

    def line_width(words: Sequence[_Word]) -> float:
        return sum(_word_width(w, font, px) for w in words) + space * len(words)

    while last and line_width([*last, ellipsis]) > width:
        last.pop()
    last.append(ellipsis)
    return PromptLayout(px, tuple(tuple(line) for line in kept), truncated=True)
