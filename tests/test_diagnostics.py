"""Diagnostics a person can act on (issue 26 item 1): rule codes, the source line with the fault
underlined, help, GitHub annotations, YAML and Jinja errors in storyc's words, one diagnostic per
problem, shots counted from 1."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import BASIC_IMAGES, make_project, one_line

from storyc.cli import cli

TESTS = Path(__file__).resolve().parent
CORPUS = TESTS / "cases" / "invalid"

BOARD = """
version: 1
title: Diagnostics
characters:
  ellie: {frontal: refs/ellie-front.png, references: [refs/ellie-side.png]}
  rex:
    description: a red dog
    frontal: refs/rex-front.png
    references: [refs/rex-side.png]
vars:
  place: a savanna
scenes:
  - id: meet
    prompt: "@ellie meets @rex in {{ vars.place }}."
    duration: 8
"""


def board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str = BOARD, **replace: str) -> Path:
    for old, new in replace.items():
        assert old.replace("_", " ") in text or old in text, old
        text = text.replace(old, new)
    path = make_project(tmp_path, text, BASIC_IMAGES)
    monkeypatch.chdir(tmp_path)
    return path


def check(*args: str, color: bool = False) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["check", "--no-cache", *args], catch_exceptions=False, color=color)
    return result.exit_code, result.stdout


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new), "utf-8")


# --- 1. a rule code for each kind of problem ------------------------------------------------


def test_every_corpus_diagnostic_carries_a_listed_rule_code(monkeypatch: pytest.MonkeyPatch) -> None:
    from storyc.diagnostics import RULES  # here, so that the other tests run on a storyc without it

    monkeypatch.chdir(CORPUS)
    codes: set[str] = set()
    for case in sorted(p.name for p in CORPUS.glob("*.yaml")):
        result = CliRunner().invoke(cli, ["check", "--no-cache", "--format", "json", case])
        for file in json.loads(result.stdout)["files"]:
            for d in file["diagnostics"]:
                assert d["code"] in RULES, (case, d)
                codes.add(d["code"])
    assert len(codes) >= 25  # the corpus exercises most kinds


def test_rule_codes_are_stable_and_each_has_a_title() -> None:
    from storyc.diagnostics import RULES  # here, so that the other tests run on a storyc without it

    assert all(re.fullmatch(r"SC\d{3}", code) and rule.code == code for code, rule in RULES.items())
    assert all(rule.title and rule.title == rule.title.strip() for rule in RULES.values())
    # The codes users filter on: renumbering one is a breaking change, so these are pinned.
    assert (RULES["SC004"].title, RULES["SC031"].title, RULES["SC041"].title) == (
        "invalid YAML",
        "unknown reference",
        "undefined template variable",
    )


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        ("@rex in", "@rexx in", "SC031"),
        ("duration: 8", "duraton: 8", "SC012"),
        ("vars.place", "vars.plac", "SC041"),
        ("  - id: meet", "  - id: meet\n  - id: meet", "SC024"),
        ("  - id: meet", "  - id: [meet", "SC004"),
    ],
    ids=["unknown-reference", "unknown-key", "undefined-variable", "duplicate-scene", "yaml"],
)
def test_the_code_is_the_kind_of_problem(
    old: str, new: str, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    board(tmp_path, monkeypatch, BOARD.replace(old, new))
    _, out = check("--format", "json", "board.yaml")
    assert code in [d["code"] for d in json.loads(out)["files"][0]["diagnostics"]], out


# --- 2. the source line, a caret under the fault, help ------------------------------------------


def test_check_shows_the_source_line_with_the_name_underlined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    board(tmp_path, monkeypatch, BOARD.replace("@rex in", "@rexx in"))
    code, out = check("board.yaml")
    assert code == 1
    assert out.splitlines()[:6] == [
        "board.yaml:13:27: error: unknown reference '@rexx' (did you mean 'rex'?)",
        "   |",
        '13 |     prompt: "@ellie meets @rexx in {{ vars.place }}."',
        "   |                           ^^^^^ SC031 unknown reference",
        "   = help: write '@rex'",
        "",
    ]
    assert "\x1b[" not in out  # no colour off a terminal


def test_colour_only_when_asked_and_never_with_no_color(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    board(tmp_path, monkeypatch, BOARD.replace("@rex in", "@rexx in"))
    _, coloured = check("board.yaml", color=True)
    assert "\x1b[31m" in coloured and "\x1b[34m" in coloured  # red marks, blue gutter
    monkeypatch.setenv("NO_COLOR", "1")
    _, plain = check("board.yaml", color=True)
    assert "\x1b[" not in plain
    assert plain == re.sub(r"\x1b\[[0-9;]*m", "", coloured)


def test_a_plain_value_is_underlined_whole_and_json_gains_the_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    board(tmp_path, monkeypatch, BOARD.replace("duration: 8", "duration: 8 s  # eight"))
    _, out = check("board.yaml")
    assert "   |               ^^^ SC015 wrong type or value" in out.splitlines(), out
    _, data = check("--format", "json", "board.yaml")
    (diag,) = json.loads(data)["files"][0]["diagnostics"]
    assert diag == {
        "path": "board.yaml",
        "line": 14,
        "col": 15,
        "severity": "error",
        "code": "SC015",
        "message": "scene 'meet' duration: expected a whole number, got text \"8 s\"",
    }


@pytest.mark.parametrize(
    ("line", "col", "marks"),
    [
        ('    prompt: "a \\" b" # c', 13, 8),  # a quoted scalar, to its closing quote
        ("    prompt: 'it''s' # c", 13, 7),  # '' inside single quotes
        ("    prompt: walks in the @rain  # c", 13, 18),  # a plain value, less the comment
        ("  - {prompt: a, duration: 2.5}", 27, 3),  # a value in a flow mapping, to its ','/'}'
        ("    duraton: 8", 5, 7),  # a key, to its colon
        ("    prompt: hi @rexx there", 16, 5),  # an @name
        ("\tkey: x", 2, 3),
        ("    prompt: 象が @rexx", 16, 5),  # wide characters before the name take two columns each
    ],
)
def test_the_underline_covers_the_token(line: str, col: int, marks: int) -> None:
    from storyc.report import token_width, underline

    assert token_width(line, col - 1) == marks
    padding, count = underline(line, col)
    assert count == marks
    assert padding.strip(" \t") == ""
    assert len(padding) == col - 1 + sum(c in "象が" for c in line[: col - 1])
    assert ("\t" in padding) == ("\t" in line[: col - 1])  # tabs kept, so the marks line up


# --- 3. GitHub Actions annotations ----------------------------------------------------------------


def test_check_format_github_annotates_each_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = board(tmp_path, monkeypatch, BOARD.replace("vars:", "styles:\n  dusk: refs/dawn.png\nvars:"))
    code, out = check("--format", "github", "board.yaml")
    assert (code, out.splitlines()) == (
        0,
        [
            "::warning file=board.yaml,line=10,col=3,title=SC035::style 'dusk' is declared but no scene uses it",
            "board.yaml: 1 scene, 8 s, $3.36 to render",
            "0 errors, 1 warning in 1 file",
        ],
    )
    edit(path, "@rex in", "@rexx in")
    code, out = check("--format", "github", "board.yaml")
    assert (code, out.splitlines()) == (
        1,
        [
            "::error file=board.yaml,line=15,col=27,title=SC031::unknown reference '@rexx' (did you mean 'rex'?)"
            "%0Ahelp: write '@rex'",
            "1 error, 0 warnings in 1 file",
        ],
    )


def test_github_annotations_escape_what_would_end_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "a,b:c"
    folder.mkdir()
    board(folder, monkeypatch, BOARD.replace("@rex in", "@rexx in 100%"))
    _, out = check("--format", "github", "board.yaml")
    assert out.splitlines()[0].startswith("::error file=board.yaml,line=13,col=27,title=SC031::")
    monkeypatch.chdir(tmp_path)
    _, out = check("--format", "github", "a,b:c/board.yaml")
    assert out.splitlines()[0].startswith("::error file=a%2Cb%3Ac/board.yaml,line=13,")


# --- 4. YAML syntax errors in storyc's words, at the mistake ---------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("@ellie walks in", "quote the value: YAML reads '@' as reserved, so it cannot start a value"),
        ("`rex` runs", "quote the value: YAML reads '`' as reserved, so it cannot start a value"),
        ("*ellie walks in", "quote the value: YAML reads '*' as an alias (`*name` repeats the value anchored `&name`)"),
        ("&ellie walks in", "quote the value: YAML reads '&' as an anchor (`&name` names the value after it)"),
        ("%ellie walks in", "quote the value: YAML reads '%' as the start of a directive"),
    ],
)
def test_a_value_starting_with_a_reserved_character_says_to_quote_it(
    value: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = BOARD.replace('prompt: "@ellie meets @rex in {{ vars.place }}."', f"subjects: {value}")
    board(tmp_path, monkeypatch, text)
    code, out = check("board.yaml")
    assert code == 1
    assert out.splitlines()[:5] == [
        f'board.yaml:13:15: error: {message} (write "{value}")',
        "   |",
        f"13 |     subjects: {value}",
        f"   |               {'^' * len(value)} SC005 a value YAML reads as syntax: quote it",
        f'   = help: write it in quotes: subjects: "{value}"',
    ]


def test_a_tag_that_may_be_text_says_how_to_keep_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    board(tmp_path, monkeypatch, BOARD.replace('prompt: "@ellie meets', 'prompt: !ellie meets "'))
    _, out = check("board.yaml")
    assert (
        out.splitlines()[0] == "board.yaml:13:13: error: YAML tag '!ellie' is not allowed: a storyboard is plain data"
    )
    assert "   = help: if it is text, write it in quotes: prompt: " in out


def test_an_anchor_that_an_alias_uses_is_not_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    board(tmp_path, monkeypatch, BOARD.replace("duration: 8", "duration: &d 8\n    seed: *d").replace("seed", "x_seed"))
    _, out = check("--format", "json", "board.yaml")
    assert [d["code"] for d in json.loads(out)["files"][0]["diagnostics"]] == ["SC012"]  # x_seed: unknown key


@pytest.mark.parametrize(
    ("indent", "message", "help_line"),
    [
        (
            "   ",
            "check the indentation of this line: 'duration' (3 spaces in) does not line up with 'prompt' "
            "above it (line 13, 4 spaces in)",
            "to make 'duration' a key beside 'prompt', indent it 4 spaces",
        ),
        (
            "      ",
            "check the indentation of this line: 'duration' (6 spaces in) does not line up with 'prompt' "
            "above it (line 13, 4 spaces in)",
            "to make 'duration' a key beside 'prompt', indent it 4 spaces "
            "(indented deeper, YAML reads it as more of the value of 'prompt')",
        ),
    ],
    ids=["less", "more"],
)
def test_a_bad_indent_is_reported_at_its_line(
    indent: str, message: str, help_line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = BOARD.replace('"@ellie meets @rex in {{ vars.place }}."', "ellie meets rex").replace(
        "    duration: 8", f"{indent}duration: 8"
    )
    board(tmp_path, monkeypatch, text)
    _, out = check("board.yaml")
    lines = out.splitlines()
    assert lines[0] == f"board.yaml:14:{len(indent) + 1}: error: {message}"
    assert lines[3] == f"   | {indent}^^^^^^^^ SC006 indentation that does not line up"
    assert lines[4] == f"   = help: {help_line}"


# --- 5. one diagnostic per problem across profiles --------------------------------------------------


PROFILES = """
profiles:
  draft: {endpoint: fal-ai/kling-video/o3/standard/reference-to-video}
  final: {}
"""


def test_a_problem_in_several_profiles_is_reported_once_naming_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    styles = "styles:\n" + "".join(f"  s{i}: refs/dawn.png\n" for i in range(6))
    text = BOARD.replace("vars:", PROFILES.lstrip() + styles + "vars:")
    text = text.replace("in {{ vars.place }}", "with " + " ".join(f"@s{i}" for i in range(6)))
    board(tmp_path, monkeypatch, text)
    code, out = check("board.yaml")
    assert code == 1
    assert one_line(out)[0] == (
        "board.yaml:22:9: error: scene 'meet' uses 8 references (ellie, rex, s0, s1, s2, s3, s4, s5); "
        "its endpoint accepts at most 7 (characters + styles); in profiles 'draft', 'final'"
    )
    assert one_line(out)[-1] == "1 error, 0 warnings in 1 file"
    assert "   = help: profile 'draft' renders on fal-ai/kling-video/o3/standard/reference-to-video" in out
    assert "   = help: profile 'final' renders on fal-ai/kling-video/o3/4k/reference-to-video" in out
    _, data = check("--format", "json", "board.yaml")
    (diag,) = json.loads(data)["files"][0]["diagnostics"]
    assert diag["profiles"] == ["draft", "final"]


# --- 6. one error for one mistake -------------------------------------------------------------------


@pytest.mark.parametrize("table", ["target", "profile"])
def test_a_non_whole_default_duration_is_one_error(table: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = "target: {duration: 7.5}\n" if table == "target" else "profiles:\n  draft: {duration: 7.5}\n"
    board(tmp_path, monkeypatch, BOARD.replace("vars:", settings + "vars:").replace("    duration: 8\n", ""))
    code, out = check("board.yaml")
    assert code == 1
    where = (
        "board.yaml:9:20: error: target.duration"
        if table == "target"
        else "board.yaml:10:21: error: profiles.draft.duration"
    )
    assert [line for line in one_line(out) if ": error: " in line] == [
        f"{where}: expected a whole number, got float 7.5"
    ]


# --- 7. Jinja errors in storyc's words, at the name --------------------------------------------------


def test_an_undefined_variable_is_named_at_its_column(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    board(tmp_path, monkeypatch, BOARD.replace("vars.place", "vars.plac"))
    _, out = check("board.yaml")
    assert out.splitlines()[:5] == [
        "board.yaml:13:43: error: undefined variable: no 'plac' in vars (did you mean 'place'?)",
        "   |",
        '13 |     prompt: "@ellie meets @rex in {{ vars.plac }}."',
        "   |                                           ^^^^ SC041 undefined template variable",
        "   = help: write 'vars.place'",
    ]
    assert "dict object" not in out


def test_an_undefined_name_in_a_template_file_is_located_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = BOARD.replace("vars:", "templates:\n  look: {file: look.j2}\nvars:").replace(
        "duration: 8", "duration: 8\n    template: look"
    )
    board(tmp_path, monkeypatch, text)
    (tmp_path / "look.j2").write_text("{{ scene.prompt }}\nLit by {{ lamp }}.\n", "utf-8")
    _, out = check("board.yaml")
    assert one_line(out)[0] == "look.j2:2:11: error: undefined variable: no 'lamp'"


# --- 8. shots counted from 1 -------------------------------------------------------------------------


def test_a_shot_is_named_as_people_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shots = 'shots:\n      - {prompt: "@ellie waves", duration: 2.5}\n      - {prompt: "@rex", duratio: 3}'
    board(tmp_path, monkeypatch, BOARD.replace('prompt: "@ellie meets @rex in {{ vars.place }}."', shots))
    _, out = check("board.yaml")
    messages = [line.split(": error: ")[1] for line in one_line(out) if ": error: " in line]
    assert "scene 'meet' shot 1 duration: expected a whole number, got float 2.5" in messages
    assert "scene 'meet' shot 2: unknown key 'duratio' (did you mean 'duration'?)" in messages
    assert not [m for m in messages if "shots[" in m]


README_BOARD = """
version: 1
vars:
  place: a sunlit savanna clearing
characters:
  ellie: {frontal: refs/ellie-front.png, references: [refs/ellie-side.png]}
scenes:
  - id: meet
    prompt: "@elie walks into {{ vars.place }}"
    duration: 5
  - id: play
    prompt: "@ellie plays in {{ vars.plac }}"
    duration: 5
"""

README_OUTPUT = """\
board.yaml:8:14: error: unknown reference '@elie' (did you mean 'ellie'?)
  |
8 |     prompt: "@elie walks into {{ vars.place }}"
  |              ^^^^^ SC031 unknown reference
  = help: write '@ellie'

board.yaml:11:38: error: undefined variable: no 'plac' in vars (did you mean 'place'?)
   |
11 |     prompt: "@ellie plays in {{ vars.plac }}"
   |                                      ^^^^ SC041 undefined template variable
   = help: write 'vars.place'

2 errors, 0 warnings in 1 file
"""


def test_the_readme_example_is_real_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the README's diagnostics section shows is what `storyc check` prints, and --format github."""
    board(tmp_path, monkeypatch, README_BOARD)
    assert check("board.yaml") == (1, README_OUTPUT)
    assert check("--format", "github", "board.yaml")[1].splitlines() == [
        "::error file=board.yaml,line=8,col=14,title=SC031::unknown reference '@elie' (did you mean 'ellie'?)"
        "%0Ahelp: write '@ellie'",
        "::error file=board.yaml,line=11,col=38,title=SC041::undefined variable: no 'plac' in vars "
        "(did you mean 'place'?)%0Ahelp: write 'vars.place'",
        "2 errors, 0 warnings in 1 file",
    ]


def test_plan_shows_a_board_s_problems_the_same_way_on_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    board(tmp_path, monkeypatch, BOARD.replace("@rex in", "@rexx in"))
    result = CliRunner().invoke(cli, ["plan", "board.yaml"], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:5] == [
        "board.yaml:13:27: error: unknown reference '@rexx' (did you mean 'rex'?)",
        "   |",
        '13 |     prompt: "@ellie meets @rexx in {{ vars.place }}."',
        "   |                           ^^^^^ SC031 unknown reference",
        "   = help: write '@rex'",
    ]
    result = CliRunner().invoke(cli, ["plan", "--json", "board.yaml"], catch_exceptions=False)
    assert result.stderr.splitlines()[0] == "board.yaml:13:27: error: unknown reference '@rexx' (did you mean 'rex'?)"
    assert "^^^^^" not in result.stderr  # beside a JSON document, one line each
    assert json.loads(result.stdout)["diagnostics"][0]["code"] == "SC031"


def test_a_whole_duration_written_as_a_decimal_is_that_many_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`duration: 8.0` was refused by fal's schema ("'8.0' is not one of ['3', ...]"): it is 8 seconds."""
    path = board(tmp_path, monkeypatch)
    result = CliRunner().invoke(cli, ["compile", "--json", "board.yaml"], catch_exceptions=False)
    eight = json.loads(result.stdout)["jobs"][0]
    edit(path, "duration: 8", "duration: 8.0")
    code, out = check("board.yaml")
    assert code == 0, out
    result = CliRunner().invoke(cli, ["compile", "--json", "board.yaml"], catch_exceptions=False)
    job = json.loads(result.stdout)["jobs"][0]
    assert (job["arguments"]["duration"], job["key"]) == ("8", eight["key"])  # the same request as `8`


def test_the_language_server_gives_the_code_the_profiles_and_the_caret_s_span() -> None:
    """`storyc lsp` publishes check's diagnostics: with the rule code, the profiles a problem is found
    in (as check's message says them), and the span the terminal's caret covers."""
    from lsprotocol import types

    from storyc.diagnostics import Diagnostic, Loc
    from storyc.lsp.positions import LineIndex
    from storyc.lsp.server import _lsp_diagnostic

    text = 'scenes:\n  - id: meet\n    prompt: "{{ vars.plac }} at dawn"\n'
    found = Diagnostic("board.yaml", Loc(3, 21), "error", "undefined variable: no 'plac' in vars", "SC041", width=4)
    published = _lsp_diagnostic(found, LineIndex(text))
    assert (published.code, published.message, published.severity) == (
        "SC041",
        "undefined variable: no 'plac' in vars",
        types.DiagnosticSeverity.Error,
    )
    assert published.range == types.Range(types.Position(2, 20), types.Position(2, 24))  # 'plac'
    in_two = Diagnostic("board.yaml", Loc(2, 9), "error", "too many", "SC033", profiles=("draft", "final"))
    assert _lsp_diagnostic(in_two, LineIndex(text)).message == "too many; in profiles 'draft', 'final'"


def test_the_readme_shows_the_example_and_lists_every_rule_code() -> None:
    """The README's diagnostics section is this output, and its table names every code storyc can give."""
    from storyc.diagnostics import RULES

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")
    assert README_OUTPUT.rstrip() in readme
    for code, title in RULES.items():
        assert f"| {code} | {title} |" in readme, code
