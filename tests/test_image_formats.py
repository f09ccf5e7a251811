"""Every image format fal's Kling O3 pages list is taken, judged by its bytes, not its name.

fal's reference-to-video page accepts jpg, jpeg, png, webp, gif and avif
(the endpoint files' `assets.image_formats`).  Each is checked here the whole
way: it compiles, the animatic card and the sheet draw it, and a render on
the fake fal through the real fal_client uploads it with its own content
type.  A `.png` that is really a WebP is a WebP throughout.  What fal does
not take (TIFF, BMP) is a located error naming what it does take; damaged
files of each format are in the invalid-board corpus (`truncated-webp`, ...).
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakefal import FakeFal
from helpers import fast_fal, make_image, make_project

from storyc.cli import cli
from storyc.compile.pipeline import compile_file
from storyc.render.session import fal_session

# Pillow's name -> (the suffix a user would give it, the content type fal should be told)
FORMATS = {
    "JPEG": (".jpg", "image/jpeg"),
    "PNG": (".png", "image/png"),
    "WEBP": (".webp", "image/webp"),
    "GIF": (".gif", "image/gif"),
    "AVIF": (".avif", "image/avif"),
}
COLOR = (40, 160, 90)  # a flat green: every format, lossy or paletted, keeps it close

BOARD = """
version: 1
target:
  endpoint: fal-ai/kling-video/o3/standard/reference-to-video
characters:
  ellie:
    frontal: refs/ellie-front.png
    references: [refs/ellie-side.png]
scenes:
  - id: meet
    prompt: "@ellie walks into the green light."
    duration: 3
    start_frame: {frame}
"""


def project(tmp_path: Path, fmt: str, name: str | None = None) -> tuple[Path, str]:
    """A board whose start frame is a flat green image in `fmt`, named `name` (default: the format's suffix)."""
    frame = f"refs/frame{FORMATS[fmt][0]}" if name is None else f"refs/{name}"
    board = make_project(
        tmp_path / "film",
        BOARD.format(frame=frame),
        {"refs/ellie-front.png": "grey", "refs/ellie-side.png": "grey"},
    )
    make_image(board.parent / frame, color=f"#{COLOR[0]:02x}{COLOR[1]:02x}{COLOR[2]:02x}", fmt=fmt)
    return board, frame


def close_to_green(pixel: tuple[int, ...]) -> bool:
    return all(abs(a - b) <= 12 for a, b in zip(pixel[:3], COLOR, strict=True))


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_each_format_fal_takes_compiles_with_its_content_type(tmp_path: Path, fmt: str) -> None:
    board, frame = project(tmp_path, fmt)
    result = compile_file(board, use_cache=False)
    assert result.board is not None, [d.format() for d in result.diagnostics]
    (job,) = result.board.jobs
    assert job.arguments["start_image_url"] == frame
    assert job.files[frame].content_type == FORMATS[fmt][1]


def test_a_png_that_is_really_a_webp_is_judged_and_uploaded_as_a_webp(tmp_path: Path, fake_fal: FakeFal) -> None:
    board, frame = project(tmp_path, "WEBP", name="frame.png")
    result = compile_file(board, use_cache=False)
    assert result.board is not None, [d.format() for d in result.diagnostics]
    (job,) = result.board.jobs
    assert job.files[frame].content_type == "image/webp"
    with fal_session(result.board, list(result.board.jobs), fast_fal(), None) as session:
        summary = session.run(concurrency=1)
    assert [r.state for r in summary.results] == ["done"]
    (upload,) = [u for u in fake_fal.uploads if u.sha256 == job.files[frame].sha256.removeprefix("sha256:")]
    assert (upload.file_name, upload.content_type) == ("frame.webp", "image/webp")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_each_format_renders_on_fal_uploaded_with_its_content_type(tmp_path: Path, fake_fal: FakeFal, fmt: str) -> None:
    board, frame = project(tmp_path, fmt)
    result = compile_file(board, use_cache=False)
    assert result.board is not None, [d.format() for d in result.diagnostics]
    with fal_session(result.board, list(result.board.jobs), fast_fal(), None) as session:
        summary = session.run(concurrency=1)
    assert [r.state for r in summary.results] == ["done"], [r.error for r in summary.results]
    data = (board.parent / frame).read_bytes()
    (upload,) = [u for u in fake_fal.uploads if u.size == len(data) and u.file_name == Path(frame).name]
    assert upload.content_type == FORMATS[fmt][1]
    (submitted,) = fake_fal.submits
    assert fake_fal.file_bytes(submitted["start_image_url"]) == data  # fal got these very bytes


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_the_animatic_and_the_sheet_draw_each_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    from storyc.media.animatic import thumbnail

    board, frame = project(tmp_path, fmt)
    thumb = thumbnail(board.parent / frame)  # what the cards and the sheet draw; None is a "missing" box
    assert thumb is not None
    assert close_to_green(thumb.convert("RGB").getpixel((thumb.width // 2, thumb.height // 2)))  # type: ignore[arg-type]

    monkeypatch.chdir(board.parent)
    runner = CliRunner()
    animatic = runner.invoke(cli, ["render", "board.yaml", "--backend", "animatic"], catch_exceptions=False)
    assert animatic.exit_code == 0, animatic.output
    assert list((board.parent / "renders" / "animatic").glob("meet-*.mp4"))
    sheet = runner.invoke(cli, ["sheet", "board.yaml", "-o", "sheet.html"], catch_exceptions=False)
    assert sheet.exit_code == 0, sheet.output
    html = (board.parent / "sheet.html").read_text("utf-8")
    thumbs = [_decode(uri) for uri in re.findall(r'<img[^>]+src="data:image/jpeg;base64,([^"]+)"', html)]
    assert any(close_to_green(t) for t in thumbs)  # the frame's thumbnail, among the grey character's


def _decode(b64: str) -> tuple[int, ...]:
    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(b64))) as image:
        rgb = image.convert("RGB")
        pixel = rgb.getpixel((rgb.width // 2, rgb.height // 2))
    assert isinstance(pixel, tuple)
    return pixel


@pytest.mark.parametrize(("fmt", "name"), [("TIFF", "frame.tiff"), ("BMP", "frame.bmp"), ("TIFF", "frame.png")])
def test_a_format_fal_does_not_take_is_a_located_error_naming_those_it_takes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, name: str
) -> None:
    board = make_project(
        tmp_path / "film",
        BOARD.format(frame=f"refs/{name}"),
        {"refs/ellie-front.png": "grey", "refs/ellie-side.png": "grey"},
    )
    make_image(board.parent / "refs" / name, fmt=fmt)
    monkeypatch.chdir(board.parent)
    result = CliRunner().invoke(cli, ["check", "--no-cache", "board.yaml"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert (
        f"board.yaml:12:18: error: image 'refs/{name}' is {fmt}; Kling accepts JPEG, PNG, WebP, GIF or AVIF"
        in result.output.splitlines()
    )


def test_a_truncated_webp_named_png_is_refused_at_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    board, frame = project(tmp_path, "WEBP", name="frame.png")
    path = board.parent / frame
    path.write_bytes(path.read_bytes()[:-40])
    monkeypatch.chdir(board.parent)
    result = CliRunner().invoke(cli, ["check", "--no-cache", "board.yaml"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"board.yaml:12:18: error: image '{frame}' is truncated or damaged" in result.output


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "AVIF"])
def test_an_animated_image_is_read_whole_and_renders_on_fal(tmp_path: Path, fake_fal: FakeFal, fmt: str) -> None:
    """Every frame is decoded at check; fal takes the file (an AVIF sequence's brand is `avis`, not `avif`)."""
    from PIL import Image

    board, frame = project(tmp_path, fmt)
    frames = [Image.new("RGB", (400, 320), color) for color in (COLOR, (200, 30, 30), (30, 30, 200))]
    frames[0].save(board.parent / frame, fmt, save_all=True, append_images=frames[1:], duration=100)
    result = compile_file(board, use_cache=False)
    assert result.board is not None, [d.format() for d in result.diagnostics]
    with fal_session(result.board, list(result.board.jobs), fast_fal(), None) as session:
        summary = session.run(concurrency=1)
    assert [r.state for r in summary.results] == ["done"], [r.error for r in summary.results]


STILL_BOARD = """
version: 1
target:
  endpoint: fal-ai/kling-video/o3/standard/reference-to-video
styles:
  dawn: refs/palette.png
stills:
  opening:
    prompt: "A clearing at first light, in the palette of @dawn"
characters:
  ellie:
    frontal: {still: opening}
    references: [refs/ellie-side.png]
scenes:
  - id: meet
    prompt: "@ellie walks into the light."
    duration: 3
"""


@pytest.mark.parametrize(("fmt", "name"), [("WEBP", "palette.png"), ("TIFF", "palette.png")])
def test_a_stills_input_image_is_judged_by_its_bytes_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, name: str
) -> None:
    """An image endpoint's input (nano-banana-2/edit) passes the same checks: a WebP named .png is a WebP."""
    board = make_project(tmp_path / "film", STILL_BOARD, {"refs/ellie-side.png": "grey"})
    make_image(board.parent / "refs" / name, fmt=fmt)
    result = compile_file(board, use_cache=False)
    if fmt == "TIFF":
        assert result.board is None
        assert any(
            d.format().endswith(f"error: image 'refs/{name}' is TIFF; Kling accepts JPEG, PNG, WebP, GIF or AVIF")
            for d in result.diagnostics
        ), [d.format() for d in result.diagnostics]
        return
    assert result.board is not None, [d.format() for d in result.diagnostics]
    (still,) = result.board.stills
    assert still.endpoint == "fal-ai/nano-banana-2/edit"
    assert still.files[f"refs/{name}"].content_type == "image/webp"


def test_every_format_an_endpoint_file_lists_is_one_tested_here() -> None:
    """A format added to an endpoint file without storyc knowing its content type fails here, not at upload."""
    from storyc.compile import endpoints

    for endpoint in endpoints.registry().values():
        assert set(endpoint.assets.image_formats) <= set(FORMATS), endpoint.id


@pytest.mark.parametrize(
    ("fmt", "name", "uploaded_as"),
    [("JPEG", "frame.jpeg", "frame.jpeg"), ("JPEG", "frame.JPG", "frame.JPG"), ("PNG", "frame.jpg", "frame.png")],
)
def test_an_upload_keeps_a_name_that_fits_its_bytes_and_renames_one_that_does_not(
    tmp_path: Path, fmt: str, name: str, uploaded_as: str
) -> None:
    board, frame = project(tmp_path, fmt, name=name)
    result = compile_file(board, use_cache=False)
    assert result.board is not None, [d.format() for d in result.diagnostics]
    assert result.board.jobs[0].files[frame].upload_name == uploaded_as
