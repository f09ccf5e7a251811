"""Property tests (hypothesis): the compiler's promises hold for any board."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
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
    assert_edits_compile_with_located_diagnostics(BASIC_BOARD, ops)


def assert_edits_compile_with_located_diagnostics(board: str, ops: list[tuple[str, int, str]]) -> None:
    text = apply_edits(board.lstrip(), ops)
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


# --- keys through the graph of stills and frames are Merkle ------------------------------


@dataclass(frozen=True)
class GraphBoard:
    """A board of stills and scenes wired at random: which step each one takes an image from."""

    stills: int  # still0 .. still{n-1}
    hero_from_still: bool  # the character's frontal is {still: still0}
    mentions_hero: tuple[bool, ...]  # per still after the first: its prompt names @hero
    starts: tuple[str | None, ...]  # per scene: its start_frame, "still:N" or "scene:N" (an earlier one)
    texts: dict[str, str]  # step -> the words in its prompt
    picks: dict[str, int]  # still -> pick (of 2 variants)

    def steps(self) -> list[str]:
        return [f"still{i}" for i in range(self.stills)] + [f"scene{i}" for i in range(len(self.starts))]

    def needs(self, step: str) -> set[str]:
        """The steps `step` takes an image from, directly (the model of the contract, not of the code)."""
        kind, index = step[:5], int(step[5:])
        found: set[str] = set()
        hero = {"still0"} if self.hero_from_still else set()
        if kind == "still":
            return hero if index > 0 and self.mentions_hero[index - 1] else set()
        found |= hero  # every scene names @hero
        start = self.starts[index]
        if start is not None:
            found.add(start.replace(":", ""))
        return found

    def downstream(self, changed: str) -> set[str]:
        """`changed` and every step that needs it, directly or not."""
        found = {changed}
        grew = True
        while grew:
            more = {s for s in self.steps() if s not in found and self.needs(s) & found}
            found |= more
            grew = bool(more)
        return found

    def yaml(self) -> str:
        lines = ["version: 1", "stills:"]
        for i in range(self.stills):
            hero = "@hero " if i > 0 and self.mentions_hero[i - 1] else ""
            lines += [f"  still{i}:", f"    prompt: '{hero}{self.texts[f'still{i}']}'", "    variants: 2"]
            lines.append(f"    pick: {self.picks[f'still{i}']}")
        frontal = "{still: still0}" if self.hero_from_still else "refs/ellie-front.png"
        lines += ["characters:", "  hero:", f"    frontal: {frontal}", "    references: [refs/ellie-side.png]"]
        lines.append("scenes:")
        for i, start in enumerate(self.starts):
            lines += [f"  - id: scene{i}", f"    prompt: '@hero {self.texts[f'scene{i}']}'", "    duration: 5"]
            if start is not None:
                kind, n = start.split(":")
                slot = f"{{still: still{n}}}" if kind == "still" else f"{{last_frame_of: scene{n}}}"
                lines.append(f"    start_frame: {slot}")
        return "\n".join(lines) + "\n"


@st.composite
def graph_boards(draw: st.DrawFn) -> GraphBoard:
    stills = draw(st.integers(1, 3))
    scenes = draw(st.integers(1, 4))
    starts: list[str | None] = []
    for i in range(scenes):
        options: list[str | None] = [None, *(f"still:{n}" for n in range(stills)), *(f"scene:{n}" for n in range(i))]
        starts.append(draw(st.sampled_from(options)))
    steps = [f"still{i}" for i in range(stills)] + [f"scene{i}" for i in range(scenes)]
    return GraphBoard(
        stills=stills,
        hero_from_still=draw(st.booleans()),
        mentions_hero=tuple(draw(st.lists(st.booleans(), min_size=stills - 1, max_size=stills - 1))),
        starts=tuple(starts),
        texts={s: f"{s} at dawn" for s in steps},
        picks={f"still{i}": draw(st.integers(1, 2)) for i in range(stills)},
    )


def graph_keys(board: GraphBoard, path: Path) -> dict[str, str]:
    path.write_text(board.yaml(), "utf-8")
    result = compile_file(path, "board.yaml", use_cache=False)
    compiled = result.board
    assert compiled is not None, [d.format() for d in result.diagnostics]
    keys = {s.still: s.key for s in compiled.stills}
    keys.update({j.scene: j.key for j in compiled.jobs})
    return keys


GRAPH = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@GRAPH
@given(graph_boards(), st.data())
def test_an_upstream_change_changes_exactly_its_downstream_keys_and_reverting_restores_them(
    board: GraphBoard, data: st.DataObject
) -> None:
    changed = data.draw(st.sampled_from(board.steps()))
    edited = replace(board, texts={**board.texts, changed: board.texts[changed] + ", in the rain"})
    with project("version: 1\n") as path:
        before = graph_keys(board, path)
        after = graph_keys(edited, path)
        reverted = graph_keys(board, path)
    moved = {step for step in before if before[step] != after[step]}
    assert moved == board.downstream(changed)
    assert reverted == before


@GRAPH
@given(graph_boards(), st.data())
def test_a_new_pick_changes_what_uses_the_still_but_not_the_still(board: GraphBoard, data: st.DataObject) -> None:
    still = data.draw(st.sampled_from([s for s in board.steps() if s.startswith("still")]))
    edited = replace(board, picks={**board.picks, still: 3 - board.picks[still]})
    with project("version: 1\n") as path:
        before = graph_keys(board, path)
        after = graph_keys(edited, path)
    moved = {step for step in before if before[step] != after[step]}
    assert moved == board.downstream(still) - {still}


@GRAPH
@given(graph_boards(), st.lists(st.sampled_from(["a", "bird", "flies", "@hero", "away"]), min_size=1).map(" ".join))
def test_boards_differing_in_an_unrelated_scene_share_every_other_key(board: GraphBoard, words: str) -> None:
    with project("version: 1\n") as path:
        before = graph_keys(board, path)
        path.write_text(board.yaml() + f"  - id: extra\n    prompt: '{words}'\n    duration: 5\n", "utf-8")
        result = compile_file(path, "board.yaml", use_cache=False)
    compiled = result.board
    assert compiled is not None, [d.format() for d in result.diagnostics]
    after = {s.still: s.key for s in compiled.stills} | {j.scene: j.key for j in compiled.jobs}
    assert after.pop("extra")
    assert after == before


GRAPH_BOARD = """
version: 1
target:
  still_endpoint: fal-ai/nano-banana-2/edit
stills:
  sheet:
    prompt: "a turnaround sheet, {{ vars.look }}"
  open:
    prompt: "@ellie at dawn in the palette of @dawn"
    variants: 3
    pick: 2
vars:
  look: flat colours
characters:
  ellie:
    frontal: {still: sheet}
    references: [refs/ellie-side.png]
styles:
  dawn: {image: {still: sheet}}
scenes:
  - id: meet
    start_frame: {still: open}
    prompt: "@ellie walks in."
    duration: 5
  - id: play
    start_frame: {last_frame_of: meet}
    end_frame: {first_frame_of: meet}
    prompt: "@ellie plays in the light of @dawn."
    duration: 5
"""


@FAST
@given(edits)
def test_random_edits_of_a_graph_board_never_raise_and_diagnostics_are_located(ops: list[tuple[str, int, str]]) -> None:
    assert_edits_compile_with_located_diagnostics(GRAPH_BOARD, ops)
