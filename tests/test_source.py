"""The loader refuses what a storyboard must never contain, and keeps positions."""

from __future__ import annotations

from pathlib import Path

from storyc.compile.source import MAX_ALIAS_NODES, parse
from storyc.diagnostics import Diagnostics, Loc


def load_text(text: str) -> tuple[object, list[str]]:
    diags = Diagnostics("b.yaml")
    doc = parse(text, Path("/tmp/b.yaml"), diags)
    return (doc.data if doc else None), [d.format() for d in diags]


def test_positions_of_keys_and_values() -> None:
    diags = Diagnostics("b.yaml")
    doc = parse("version: 1\nscenes:\n  - id: a\n    prompt: hi @x\n", Path("/tmp/b.yaml"), diags)
    assert doc is not None
    assert doc.loc(("scenes", 0, "prompt")) == Loc(4, 13)
    assert doc.key_loc(("scenes", 0, "prompt")) == Loc(4, 5)
    assert doc.locate_in_scalar(("scenes", 0, "prompt"), "@x", 0) == Loc(4, 16)
    assert doc.loc(("scenes", 0, "missing")) == Loc(3, 5)  # falls back to the nearest ancestor


def test_yaml_1_2_scalars_and_dates_stay_text() -> None:
    data, problems = load_text("a: yes\nb: 0x1F\nc: 1_000\nd: 2024-01-01\ne: ~\nf: 1.5\ng: true\n")
    assert problems == []
    assert data == {"a": "yes", "b": 31, "c": 1000, "d": "2024-01-01", "e": None, "f": 1.5, "g": True}


def test_duplicate_keys_are_errors() -> None:
    _, problems = load_text("a: 1\nb: 2\na: 3\n")
    assert problems == ["b.yaml:3:1: error: duplicate key 'a' (first given at line 1)"]


def test_tags_are_refused() -> None:
    _, problems = load_text("a: !!python/object/apply:os.system [echo hi]\nb: !foo x\n")
    assert problems == [
        "b.yaml:1:4: error: YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed: "
        "a storyboard is plain data",
        "b.yaml:2:4: error: YAML tag '!foo' is not allowed: a storyboard is plain data",
    ]


def test_alias_bomb_is_bounded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    data, problems = load_text("\n".join(lines) + "\n")
    assert data is None
    assert problems == [problems[0]] and f"more than {MAX_ALIAS_NODES} nodes" in problems[0]


def test_small_aliases_and_merge_keys_work() -> None:
    data, problems = load_text("base: &b {duration: 8, aspect_ratio: '9:16'}\nscene:\n  <<: *b\n  duration: 5\n")
    assert problems == []
    assert data["scene"] == {"duration": 5, "aspect_ratio": "9:16"}  # type: ignore[index]


def test_syntax_error_is_located() -> None:
    _, problems = load_text("a: [1, 2\nb: 3\n")
    # ruamel gives up on line 2; the mistake is the '[' left open on line 1
    assert len(problems) == 1 and problems[0].startswith("b.yaml:1:4: error: invalid YAML: the list '['")


def test_empty_and_multi_document() -> None:
    assert load_text("")[1] == ["b.yaml:1:1: error: the storyboard is empty"]
    assert "invalid YAML" in load_text("a: 1\n---\nb: 2\n")[1][0]


def test_a_board_compiled_once_per_profile_is_parsed_once_and_again_when_edited(tmp_path: Path) -> None:
    from storyc.compile.source import load

    board = tmp_path / "board.yaml"
    board.write_text("version: 1\nscenes: []\n", "utf-8")
    first, second = Diagnostics("board.yaml"), Diagnostics("board.yaml")
    doc = load(board, first)
    assert doc is not None and load(board, second) is doc  # the second profile's compile: no new parse
    board.write_text("version: 1\nscenes: [] # edited\n", "utf-8")
    edited = load(board, Diagnostics("board.yaml"))
    assert edited is not None and edited is not doc and "edited" in edited.text
    board.write_text("version: 1\nscenes: [\n", "utf-8")  # broken: each load reports it, not only the first
    reports = [Diagnostics("board.yaml") for _ in range(2)]
    assert [load(board, d) for d in reports] == [None, None]
    assert [d.format() for d in reports[0].sorted()] == [d.format() for d in reports[1].sorted()] != []
    assert load(board, Diagnostics("other.yaml")) is None  # another display name: its own diagnostics
