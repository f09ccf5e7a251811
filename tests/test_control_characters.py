"""No control character reaches fal: what the invalid-board corpus can't hold.

The corpus holds the located errors in a board (a NUL in a prompt, a control
character a `vars:` value brings into a template).  Here: a control character
in a template file is reported in that file; what a template's code writes
is reported where the template is used; and the texts that must still pass
do (tab, newline, a backslash before a zero, every printable character).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import make_image

from storyc.compile.compiler import CompileResult
from storyc.compile.pipeline import compile_file
from storyc.compile.source import first_spelling
from storyc.compile.validate import CONTROL_CHARACTER, control_name


def compile_board(tmp_path: Path, board: str) -> CompileResult:
    (tmp_path / ".git").mkdir(exist_ok=True)
    make_image(tmp_path / "refs" / "front.png")
    make_image(tmp_path / "refs" / "side.png")
    path = tmp_path / "board.yaml"
    path.write_text(board, "utf-8")
    return compile_file(path, "board.yaml", use_cache=False)


def messages(result: CompileResult) -> list[str]:
    return [d.format() for d in result.diagnostics]


def test_a_control_character_in_a_template_file_is_reported_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spot.j2").write_text("Scene: {{ scene.scene }}\nlook \x0c of dawn\n", "utf-8")
    board = (
        "version: 1\ntemplates:\n  spot: spot.j2\n"
        "scenes:\n  - {id: meet, scene: A quiet walk, template: spot, duration: 5}\n"
    )
    assert messages(compile_board(tmp_path, board)) == [
        "spot.j2:2:6: error: control character U+000C (FF) in prompt text; delete it"
    ]


def test_what_template_code_writes_is_reported_at_the_templates_use(tmp_path: Path) -> None:
    """`{{ "\\x00" }}` is four harmless characters in the YAML: only the rendered text holds a NUL."""
    board = (
        "version: 1\ntemplates:\n  spot: '{{ scene.scene }}{{ \"\\x00\" }}'\n"
        "scenes:\n"
        "  - id: meet\n    scene: A quiet walk\n    template: spot\n    duration: 5\n"
        "  - id: play\n    shots:\n      - {prompt: 'A ball{{ \"\\x7f\" }} rolls.', duration: 5}\n"
    )
    assert messages(compile_board(tmp_path, board)) == [
        "board.yaml:7:15: error: the template writes control character U+0000 (NUL) into the prompt, "
        "from a value it inserts (vars, a description); remove it there",
        "board.yaml:11:18: error: the template writes control character U+007F (DEL) into the prompt, "
        "from a value it inserts (vars, a description); remove it there",
    ]


def test_a_description_inserted_by_a_template_is_reported_at_both_ends(tmp_path: Path) -> None:
    """Where it is written (the cause), and where a template puts it into a prompt (what fal would get)."""
    board = (
        "version: 1\ncharacters:\n"
        '  ellie: {description: "shy\\e[1m", frontal: refs/front.png, references: [refs/side.png]}\n'
        "templates:\n  spot: '{{ scene.scene }}, {{ characters.ellie.description }}'\n"
        "scenes:\n  - {id: meet, scene: '@ellie walks', template: spot, duration: 5}\n"
    )
    assert messages(compile_board(tmp_path, board)) == [
        "board.yaml:3:28: error: control character U+001B (ESC) in prompt text; delete it",
        "board.yaml:7:49: error: the template writes control character U+001B (ESC) into the prompt, "
        "from a value it inserts (vars, a description); remove it there",
    ]


def test_tab_newline_and_escaped_backslashes_still_compile(tmp_path: Path) -> None:
    board = (
        'version: 1\nvars:\n  mood: "calm,\\tquiet"\n'
        "scenes:\n"
        "  - id: meet\n"
        '    prompt: "A \\\\0 walk,\\ta {{ vars.mood }} dawn.\\nThe end \\u00e9\\u2014\\u00a0!"\n'
        "    duration: 5\n"
    )
    result = compile_board(tmp_path, board)
    assert result.board is not None, messages(result)
    assert result.board.jobs[0].arguments["prompt"] == "A \\0 walk,\ta calm,\tquiet dawn.\nThe end \u00e9\u2014\u00a0!"


@pytest.mark.parametrize(
    ("char", "name"),
    [
        ("\0", "U+0000 (NUL)"),
        ("\x1b", "U+001B (ESC)"),
        ("\x7f", "U+007F (DEL)"),
        ("\x85", "U+0085 (a C1 control; Windows-1252's '…' read as Latin-1?)"),
        ("\x81", "U+0081 (a C1 control)"),
    ],
)
def test_control_names(char: str, name: str) -> None:
    assert CONTROL_CHARACTER.fullmatch(char)
    assert control_name(char) == name


def test_only_controls_are_refused() -> None:
    refused = {chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and CONTROL_CHARACTER.match(chr(c))}
    assert refused == {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]} - {"\t", "\n"}


@pytest.mark.parametrize(
    ("source", "char", "offset"),
    [
        ('"a\\\\0 b\\0"', "\0", 7),  # '\\0' is a backslash and a zero; the NUL is the second escape
        ('"a\\x07"', "\x07", 2),
        ('"a\\u0085 \\N"', "\x85", 2),
        ('"\\e"', "\x1b", 1),
        ("'a \x85 b'", "\x85", 3),  # no escapes in single quotes: the character itself
        ('"abc"', "\0", None),
    ],
)
def test_first_spelling_finds_the_escape(source: str, char: str, offset: int | None) -> None:
    assert first_spelling(source, char) == offset
