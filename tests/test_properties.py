"""Property tests (hypothesis): the compiler's promises hold for any board."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from helpers import BASIC_BOARD, BASIC_IMAGES, make_image, make_project
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storyc.compile.pipeline import compile_file

CHARACTERS = ["ellie", "rex", "kiki"]
STYLES = ["dawn", "noir", "pop"]
NAMES = CHARACTERS + STYLES
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@contextmanager
def project(board: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield make_project(Path(tmp), board, BASIC_IMAGES)


# --- random edits never crash ------------------------------------------------------

edits = st.lists(
    st.tuples(
        st.sampled_from(["delete", "duplicate", "replace", "insert", "indent", "swap"]),
        st.integers(min_value=0, max_value=10_000),
        st.text(alphabet=st.sampled_from(list("@{}%#:-[]&*!|>'\" \nabc0189_")), max_size=12),
    ),
    min_size=1,
    max_size=4,
)


def apply_edits(text: str, ops: list[tuple[str, int, str]]) -> str:
    lines = text.splitlines()
    for op, n, junk in ops:
        if not lines:
            break
        i = n % len(lines)
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "replace":
            pos = n % (len(lines[i]) + 1)
            lines[i] = lines[i][:pos] + junk + lines[i][pos + len(junk) :]
        elif op == "insert":
            lines.insert(i, junk)
        elif op == "indent":
            lines[i] = " " * (n % 5) + lines[i].lstrip()
        else:
            j = (n // 7) % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines) + "\n"


@FAST
@given(edits)
def test_random_edits_never_raise_and_diagnostics_are_located(ops: list[tuple[str, int, str]]) -> None:
    text = apply_edits(BASIC_BOARD.lstrip(), ops)
    with project(text) as path:
        result = compile_file(path, "board.yaml", use_cache=False)
    n_lines = text.count("\n") + 1
    for d in result.diagnostics:
        assert d.loc is not None and 1 <= d.loc.line <= n_lines and d.loc.col >= 1, d.format()
        assert "Traceback" not in d.message
    assert result.ok == (not any(d.severity == "error" for d in result.diagnostics))


# --- numbering is 1..N with no gaps and matches the argument lists -------------------

prompt_words = st.lists(
    st.one_of(st.sampled_from(NAMES).map(lambda n: f"@{n}"), st.sampled_from(["walks", "x@y.com", "@@", "and", "."])),
    min_size=1,
    max_size=12,
)


def board_with_scenes(prompts: list[str]) -> str:
    head = """
version: 1
characters:
  ellie: {frontal: refs/ellie-front.png, references: [refs/ellie-side.png]}
  rex: {frontal: refs/rex-front.png, references: [refs/rex-side.png]}
  kiki: {frontal: refs/rex-side.png, references: [refs/dawn.png]}
styles:
  dawn: refs/dawn.png
  noir: https://example.org/noir.jpg
  pop: {image: refs/ellie-side.png}
scenes:
"""
    scenes = "".join(f"  - id: s{i}\n    prompt: {p!r}\n    duration: 5\n" for i, p in enumerate(prompts))
    return head + scenes


@FAST
@given(st.lists(prompt_words.map(" ".join), min_size=1, max_size=4))
def test_numbering_is_gapless_and_matches_arguments(prompts: list[str]) -> None:
    with project(board_with_scenes(prompts)) as path:
        result = compile_file(path, "board.yaml", use_cache=False)
    assert result.board is not None, [d.format() for d in result.diagnostics]
    for job, prompt in zip(result.board.jobs, prompts, strict=True):
        mentioned = [w[1:] for w in re.findall(r"(?<![A-Za-z0-9@])@[a-z]+", prompt.replace("@@", ""))]
        chars = list(dict.fromkeys(m for m in mentioned if m in CHARACTERS))
        styles = list(dict.fromkeys(m for m in mentioned if m in STYLES))
        expected = {f"@Element{i}": n for i, n in enumerate(chars, 1)}
        expected.update({f"@Image{i}": n for i, n in enumerate(styles, 1)})
        assert job.references == expected
        assert len(job.arguments.get("elements", [])) == len(chars)
        assert len(job.arguments.get("image_urls", [])) == len(styles)
        used = {int(n) for n in re.findall(r"@Element(\d+)", job.arguments["prompt"])}
        assert used == set(range(1, len(chars) + 1))
        assert not re.search(r"(?<![A-Za-z0-9])@(ellie|rex|kiki|dawn|noir|pop)\b", job.arguments["prompt"])


# --- editing one scene never changes another scene's key -----------------------------


@FAST
@given(
    st.lists(prompt_words.map(" ".join), min_size=2, max_size=4),
    st.data(),
)
def test_editing_one_scene_keeps_other_keys(prompts: list[str], data: st.DataObject) -> None:
    target = data.draw(st.integers(min_value=0, max_value=len(prompts) - 1))
    edited = list(prompts)
    edited[target] = edited[target] + " " + data.draw(prompt_words.map(" ".join))
    with project(board_with_scenes(prompts)) as path:
        before = compile_file(path, "board.yaml", use_cache=False).board
        path.write_text(board_with_scenes(edited))
        after = compile_file(path, "board.yaml", use_cache=False).board
    assert before is not None and after is not None
    for i, (a, b) in enumerate(zip(before.jobs, after.jobs, strict=True)):
        if i != target:
            assert a.key == b.key


# --- renaming an asset keeps the key; changing its bytes changes it -------------------


@settings(max_examples=25, deadline=None)
@given(
    st.from_regex(r"[a-z][a-z0-9_-]{0,12}", fullmatch=True),
    st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
)
def test_rename_keeps_key_and_new_bytes_change_it(new_name: str, color: tuple[int, int, int]) -> None:
    with project(BASIC_BOARD) as path:
        root = path.parent
        before = compile_file(path, "board.yaml", use_cache=False).board
        (root / "refs/dawn.png").rename(root / f"refs/{new_name}.png")
        path.write_text(path.read_text().replace("refs/dawn.png", f"refs/{new_name}.png"))
        renamed = compile_file(path, "board.yaml", use_cache=False).board
        make_image(root / f"refs/{new_name}.png", color="#%02x%02x%02x" % color)  # noqa: UP031
        repainted = compile_file(path, "board.yaml", use_cache=False).board
    assert before is not None and renamed is not None and repainted is not None
    assert renamed.job("meet").key == before.job("meet").key  # type: ignore[union-attr]
    orange = (255, 165, 0)
    if color != orange:
        assert repainted.job("meet").key != before.job("meet").key  # type: ignore[union-attr]
