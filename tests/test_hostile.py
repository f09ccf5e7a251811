"""Hostile input the invalid-board corpus can't hold: FIFOs, sockets, huge files, pixel bombs, time.

Every case must end in a located `PATH:LINE:COL: error: MESSAGE`, exit 1, no
traceback, and must stay inside a memory and time budget that the test
enforces: `storyc check` runs in a subprocess with its address space capped
(`RLIMIT_AS`) and a timeout, so a regression shows up as a failure here, not
as a stuck or swapping test run.
"""

from __future__ import annotations

import os
import resource
import socket
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest
from helpers import one_line

from storyc.compile import sandbox, source
from storyc.compile.pipeline import compile_file
from storyc.diagnostics import BAD_NAME, Diagnostics, printable
from storyc.files import NotARegularFile, open_regular, read_regular

ROOT = Path(__file__).resolve().parent.parent
MEMORY_LIMIT = 1536 * 1024 * 1024  # 1.5 GiB of address space: a blow-up fails fast instead of swapping
TIMEOUT = 30  # seconds; each case takes about one

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")


def _limits() -> None:  # runs in the child, before storyc starts
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_storyc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STORYC_TRACEBACK": "1"}  # a crash would print one
    done = subprocess.run(
        [sys.executable, "-m", "storyc", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=_limits,
        check=False,
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    assert "MemoryError" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done


def check(board: str, cwd: Path, *, cache: bool = False) -> list[str]:
    """`storyc check`: its diagnostic lines; asserts exit 1 and a summary line."""
    done = run_storyc("check", *([] if cache else ["--no-cache"]), board, cwd=cwd)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = one_line(done.stdout)
    assert lines and " error" in lines[-1] and lines[-1].endswith("in 1 file"), done.stdout
    return lines[:-1]


def project(tmp_path: Path, board: str) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "refs").mkdir()
    for name in ("front.png", "side.png"):
        solid_png(tmp_path / "refs" / name, 400, 400)
    (tmp_path / "board.yaml").write_text(textwrap.dedent(board).lstrip(), "utf-8")
    return tmp_path


def solid_png(path: Path, width: int, height: int) -> Path:
    """A real, decodable black RGB PNG, written row by row: a 12000x12000 one costs a few hundred KB, never 432 MB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * width)  # filter byte 0, then black pixels
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


# --- files that are not regular files ----------------------------------------------------


@needs_fifo
@pytest.mark.parametrize("cache", [False, True], ids=["no-cache", "cache"])
def test_a_fifo_as_the_board_is_refused_without_blocking(tmp_path: Path, cache: bool) -> None:
    (tmp_path / ".git").mkdir()
    os.mkfifo(tmp_path / "board.yaml")
    assert check("board.yaml", tmp_path, cache=cache) == [
        "board.yaml:1:1: error: cannot read storyboard: not a regular file: it is a named pipe (FIFO)"
    ]


@needs_fifo
def test_a_fifo_as_a_template_file_and_an_asset_is_refused_without_blocking(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        """
        version: 1
        templates:
          spot: templates/spot.j2
        styles:
          dawn: refs/dawn.png
        scenes:
          - id: meet
            template: spot
            scene: "a walk in the light of @dawn"
            duration: 5
        """,
    )
    (root / "templates").mkdir()
    os.mkfifo(root / "templates" / "spot.j2")
    os.mkfifo(root / "refs" / "dawn.png")
    assert check("board.yaml", root) == [
        "board.yaml:3:9: error: template file 'templates/spot.j2' is not a regular file: it is a named pipe (FIFO)",
        "board.yaml:5:9: error: 'refs/dawn.png' is not a regular file: it is a named pipe (FIFO)",
    ]


def test_a_socket_as_an_asset_is_refused(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        """
        version: 1
        styles:
          dawn: refs/dawn.png
        scenes:
          - {id: meet, prompt: "a walk in the light of @dawn", duration: 5}
        """,
    )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(root / "refs" / "dawn.png"))
        assert check("board.yaml", root) == [
            "board.yaml:3:9: error: 'refs/dawn.png' is not a regular file: it is a socket"
        ]


@needs_fifo
def test_a_file_swapped_for_a_fifo_after_its_stat_is_still_refused_without_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    regular = tmp_path / "regular.txt"
    regular.write_text("text", "utf-8")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    looks_regular = regular.stat()
    monkeypatch.setattr(Path, "stat", lambda self, **_: looks_regular)  # the check before opening is fooled
    with pytest.raises(NotARegularFile, match=r"it is a named pipe \(FIFO\)"):
        open_regular(fifo)  # O_NONBLOCK: the open returns at once, and fstat tells the truth


def test_reading_stops_at_the_limit(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * 1000)
    assert read_regular(big, 1000) == b"x" * 1000
    with pytest.raises(OSError, match="larger than 999 bytes"):
        read_regular(big, 999)


# --- boards too big, too deep, too many nodes --------------------------------------------


def test_a_board_over_the_size_cap_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    board = tmp_path / "board.yaml"
    board.write_text("version: 1\nvars:\n  x: '" + "a" * (5 * 1024 * 1024) + "'\nscenes: []\n", "utf-8")
    size = board.stat().st_size
    assert check("board.yaml", tmp_path) == [
        f"board.yaml:1:1: error: the storyboard is {size} bytes (5.0 MiB); storyc reads at most 4194304 bytes (4 MiB)"
    ]


def test_a_board_nested_a_hundred_thousand_deep_is_refused_at_the_65th_level(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "board.yaml").write_text("version: 1\nvars:\n  deep: " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert check("board.yaml", tmp_path) == ["board.yaml:3:72: error: nesting deeper than 64 levels"]


def test_a_board_with_too_many_nodes_is_refused_at_the_node_past_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source, "MAX_NODES", 1000)  # the real limit (100,000) takes seconds to reach
    (tmp_path / ".git").mkdir()
    board = tmp_path / "board.yaml"
    board.write_text("version: 1\nvars:\n  many: [" + "1, " * 2000 + "1]\nscenes: []\n", "utf-8")
    result = compile_file(board, "board.yaml", use_cache=False)
    # the root mapping, 'version' and its value, 'vars' and its mapping, 'many' and its list: 7 nodes
    # come before the list's items, so the 1001st node is item 994, at column 10 + 3 * 993
    assert [d.format() for d in result.diagnostics] == [
        f"board.yaml:3:{10 + 3 * 993}: error: the storyboard has more than 1000 YAML nodes; storyc reads at most 1000"
    ]


# --- templates: memory and time ----------------------------------------------------------

BOMBS = {
    "repeat": "{{ 'a' * 10**9 }}",
    "repeat100m": "{{ ('a' * 10**8) | length }}",
    "power": "{{ 3 ** (2 ** 30) }}",
    "multiply": "{% set ns = namespace(n=7) %}{% for i in range(64) %}{% set ns.n = ns.n * ns.n %}{% endfor %}",
    "loops": "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "recursion": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "join": "{% set l = ['a' * 60000] * 60000 %}{{ l | join }}",
    "nested": "{% set ns = namespace(x=[1]) %}{% for i in range(60) %}{% set ns.x = [ns.x, ns.x] %}{% endfor %}"
    "{{ ns.x == ns.x }}",
    "block": "{% set x %}{% for i in range(100000) %}{{ 'a' * 60000 }}{% endfor %}{% endset %}{{ x | length }}",
    "replace": "{{ ('a' * 60000).replace('', 'a' * 60000) }}",
    "percent": "{{ '%*s' % (10**9, 'a') }}",
    "mutate": "{{ scene.update({'duration': 15}) }}",
}


def test_template_bombs_are_refused_within_memory_and_time(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    quoted = {name: "'" + template.replace("'", "''") + "'" for name, template in BOMBS.items()}  # YAML quoting
    scenes = "".join(f"  - id: {name}\n    prompt: {quoted[name]}\n    duration: 5\n" for name in BOMBS)
    (tmp_path / "board.yaml").write_text("version: 1\nscenes:\n" + scenes, "utf-8")
    line = {name: 4 + 3 * i for i, name in enumerate(BOMBS)}
    too = "error: template too expensive:"
    assert check("board.yaml", tmp_path) == [
        f"board.yaml:{line['repeat']}:13: {too} string repetition would make 1000000000 characters (limit 65536)",
        f"board.yaml:{line['repeat100m']}:13: {too} string repetition would make 100000000 characters (limit 65536)",
        f"board.yaml:{line['power']}:13: {too} 3 ** 1073741824 would have 512305047 digits (limit 1000)",
        f"board.yaml:{line['multiply']}:13: {too} multiplication would make a number of 1731 digits (limit 1000)",
        f"board.yaml:{line['loops']}:13: {too} loops run more than 100000 times (limit 100000)",
        f"board.yaml:{line['recursion']}:13: {too} macro calls nest more than 50 deep (limit 50)",
        f"board.yaml:{line['join']}:13: {too} a value of more than 1048576 characters given to the filter 'join' "
        "(limit 1048576)",
        f"board.yaml:{line['nested']}:13: {too} a value of more than 1048576 characters given to a comparison "
        "(limit 1048576)",
        f"board.yaml:{line['block']}:13: {too} it makes more than 16777216 characters of text in all (limit 16777216)",
        f"board.yaml:{line['replace']}:13: {too} 'replace' would make 3600120000 characters (limit 65536)",
        f"board.yaml:{line['percent']}:13: {too} '%' formatting would make 1000000000 characters (limit 65536)",
        f"board.yaml:{line['mutate']}:13: error: template: not allowed in a sandboxed template: "
        "'dict.update' changes data, and templates may only read it",
    ]


def test_a_slow_template_runs_out_of_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "MAX_SECONDS", 0.05)  # the real budget is 2 s a field
    root = project(
        tmp_path,
        """
        version: 1
        scenes:
          - id: meet
            prompt: "{% for i in range(100000) %}{% if range(100000) | sum %}{% endif %}{% endfor %}"
            duration: 5
        """,
    )
    result = compile_file(root / "board.yaml", "board.yaml", use_cache=False)
    assert [d.format() for d in result.diagnostics] == [
        "board.yaml:4:13: error: template too expensive: rendering took more than 0.05 seconds (limit 0.05 s)"
    ]


def test_include_in_a_template_file_is_reported_in_that_file(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        """
        version: 1
        templates:
          spot: templates/spot.j2
        scenes:
          - {id: meet, template: spot, scene: a walk at dawn, duration: 5}
        """,
    )
    (root / "templates").mkdir()
    (root / "templates" / "spot.j2").write_text("Scene: {{ scene.scene }}\n{% include 'footer.j2' %}\n", "utf-8")
    assert check("board.yaml", root) == [
        "templates/spot.j2:2:1: error: template: '{% include %}' is not supported: a storyboard's templates "
        "can't load other templates (declare each under 'templates' and pick one with 'template:')"
    ]


def test_templates_still_do_ordinary_work(tmp_path: Path) -> None:
    """The limits leave room for real templates: loops, macros, filters, formatting."""
    root = project(
        tmp_path,
        """
        version: 1
        vars:
          beats: [enters, turns, waves]
        characters:
          ellie: {frontal: refs/front.png, references: [refs/side.png]}
        scenes:
          - id: meet
            prompt: >-
              {% macro beat(n, verb) %}{{ n }}. @ellie {{ verb }}{% endmacro %}
              {% for verb in vars.beats %}{{ beat(loop.index, verb) }}{{ '; ' if not loop.last }}{% endfor %}
              {{ '(%s beats)' % vars.beats | length }} {{ '{:.1f}'.format(2.5) }} {{ 'x' * 3 }} {{ 2 ** 10 }}
              {{ vars.beats | join(', ') | upper }} {{ 'ok' if vars.beats[0] == 'enters' }}
            duration: 5
        """,
    )
    result = compile_file(root / "board.yaml", "board.yaml", use_cache=False)
    assert result.board is not None, [d.format() for d in result.diagnostics]
    assert result.board.jobs[0].arguments["prompt"] == (
        "1. @Element1 enters; 2. @Element1 turns; 3. @Element1 waves (3 beats) 2.5 xxx 1024 ENTERS, TURNS, WAVES ok"
    )


# --- images: pixel bombs -----------------------------------------------------------------


@pytest.fixture(scope="module")
def big_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 12000x12000 PNG (144 MP: Pillow would decode it, under its own bomb limit)."""
    return solid_png(tmp_path_factory.mktemp("big") / "big.png", 12000, 12000)


def test_a_12000_pixel_square_png_is_refused_from_its_header(tmp_path: Path, big_png: Path) -> None:
    root = project(
        tmp_path,
        """
        version: 1
        styles:
          dawn: refs/dawn.png
        scenes:
          - {id: meet, prompt: "a walk in the light of @dawn", duration: 5}
        """,
    )
    png = root / "refs" / "dawn.png"
    png.write_bytes(big_png.read_bytes())
    assert png.stat().st_size < 1_000_000  # a small file, a 432 MB decode
    assert check("board.yaml", root) == [
        "board.yaml:3:9: error: image 'refs/dawn.png' is 12000x12000, 144 megapixels; "
        "storyc accepts at most 50 megapixels (scale it down)"
    ]


THUMBNAILS = """
import sys
from pathlib import Path
from storyc.media import animatic, video
from storyc.preview import sheet

for name in sys.argv[1:]:
    path = Path(name)
    assert animatic.thumbnail(path) is None, name
    assert sheet._data_uri(path, 160) is None, name
    try:
        animatic._letterboxed(path, (1280, 720), "start_frame")
    except video.VideoError as exc:
        print(exc)
    else:
        raise AssertionError(name)
"""


def test_thumbnails_of_pixel_bombs_are_refused_not_decoded(tmp_path: Path, big_png: Path) -> None:
    """The animatic and the sheet decode images for cards and thumbnails: never a bomb, never exit 3."""
    big = big_png
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes((ROOT / "tests" / "cases" / "invalid" / "refs" / "bomb.png").read_bytes())  # 20000x20000
    done = subprocess.run(
        [sys.executable, "-c", THUMBNAILS, str(big), str(bomb)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=_limits,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"start_frame: cannot read {big}: the image is 12000x12000, 144 megapixels; "
        "storyc accepts at most 50 megapixels (scale it down)",
        f"start_frame: cannot read {bomb}: the image is 20000x20000, 400 megapixels; "
        "storyc accepts at most 50 megapixels (scale it down)",
    ]


def test_a_large_jpeg_thumbnail_is_decoded_at_a_reduced_scale(tmp_path: Path) -> None:
    from PIL import Image

    from storyc.media import animatic

    path = tmp_path / "photo.jpg"
    Image.new("RGB", (6400, 4800), (200, 40, 40)).save(path, "JPEG")
    thumb = animatic.thumbnail(path)
    assert thumb is not None
    assert max(thumb.size) == 768
    red = thumb.getpixel((10, 10))
    assert isinstance(red, tuple) and red[0] > 150


# --- diagnostics stay one line each -------------------------------------------------------


def test_a_message_can_never_break_the_one_line_rule() -> None:
    diags = Diagnostics("bo\nard.yaml")
    diags.error(BAD_NAME, None, "name 'a\nb\u2028c\x00d\ud800' is bad")
    (line,) = [d.format() for d in diags]
    assert line == "bo\\nard.yaml: error: name 'a\\nb\\u2028c\\0d\\ud800' is bad"
    assert printable("plain text, café") == "plain text, café"
