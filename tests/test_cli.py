"""The command line, through click's runner and through the installed console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import BASIC_BOARD, BASIC_IMAGES, make_project, one_line

from storyc import __version__
from storyc.cli import cli


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = make_project(tmp_path, BASIC_BOARD, BASIC_IMAGES)
    monkeypatch.chdir(tmp_path)
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_version() -> None:
    code, out, _ = run("--version")
    assert (code, out) == (0, f"storyc, version {__version__}\n")


def test_check_clean_board(project: Path) -> None:
    code, out, _ = run("check", "board.yaml")
    assert code == 0
    assert out.splitlines() == ["board.yaml: 2 scenes, 15 s, $6.30 to render", "0 errors, 0 warnings in 1 file"]


def test_check_reports_every_problem_and_exits_1(project: Path) -> None:
    project.write_text(project.read_text().replace("@rex runs", "@rexx runs").replace("duration: 8", "duration: 20"))
    code, out, _ = run("check", "board.yaml")
    assert code == 1
    assert one_line(out) == [
        "board.yaml:20:15: error: scene 'meet' duration: must be at most 15, got 20",
        "board.yaml:23:18: error: unknown reference '@rexx' (did you mean 'rex'?)",
        "2 errors, 0 warnings in 1 file",
    ]


def test_check_json_format(project: Path) -> None:
    project.write_text(project.read_text().replace("@rex runs", "@rexx runs"))
    code, out, _ = run("check", "--format", "json", "board.yaml")
    assert code == 1
    payload = json.loads(out)
    assert payload["ok"] is False
    (diag,) = payload["files"][0]["diagnostics"]
    assert diag == {
        "path": "board.yaml",
        "line": 23,
        "col": 18,
        "severity": "error",
        "code": "SC031",
        "message": "unknown reference '@rexx' (did you mean 'rex'?)",
        "help": ["write '@rex'"],
    }


def test_check_missing_file_is_a_diagnostic_not_a_traceback(project: Path) -> None:
    code, out, _ = run("check", "nope.yaml")
    assert code == 1
    assert out.splitlines()[0] == "nope.yaml: error: cannot read storyboard: No such file or directory"


def test_compile_json_matches_the_contract(project: Path) -> None:
    code, out, err = run("compile", "board.yaml", "--json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["storyboard"] == "board.yaml"
    assert [j["scene"] for j in data["jobs"]] == ["meet", "play"]
    assert set(data["jobs"][0]) == {"scene", "endpoint", "arguments", "references", "seconds", "cost_usd", "key"}


def test_compile_scene_selection(project: Path) -> None:
    code, out, _ = run("compile", "board.yaml", "--json", "--scene", "play")
    assert code == 0
    assert [j["scene"] for j in json.loads(out)["jobs"]] == ["play"]


def test_compile_unknown_scene_is_a_usage_error(project: Path) -> None:
    code, _, err = run("compile", "board.yaml", "--scene", "plai")
    assert code == 2
    assert "no scene 'plai' in board.yaml (did you mean 'play'?)" in err


def test_compile_human_view(project: Path) -> None:
    code, out, _ = run("compile", "board.yaml")
    assert code == 0
    assert "  @Element1  @rex" in out
    assert "    @Element1 runs, styled like @Image1." in out
    assert out.rstrip().endswith("2 scenes, 15 s, $6.30 to render")


def test_compile_errors_go_to_stderr_and_exit_1(project: Path) -> None:
    project.write_text(project.read_text().replace("@rex runs", "@Element1 runs"))
    code, out, err = run("compile", "board.yaml")
    assert code == 1 and out == ""
    assert "board.yaml:23:18: error: '@Element1' is a positional reference" in err
    code, out, err = run("compile", "board.yaml", "--json")  # stdout: the same problems, as JSON
    assert code == 1 and json.loads(out)["diagnostics"][0]["line"] == 23
    assert "board.yaml:23:18: error: '@Element1' is a positional reference" in err


def test_schema_prints_the_json_schema() -> None:
    code, out, _ = run("schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "scenes" in schema["properties"]


def test_usage_error_exit_2() -> None:
    code, _, err = run("compile", "--sceen", "meet")
    assert code == 2 and "No such option '--sceen'" in err


def test_help_teaches_every_command() -> None:
    for command in cli.commands:
        code, out, _ = run(command, "--help")
        assert code == 0
        assert len(out.splitlines()) > 4, command


def console_script() -> str:
    script = Path(sysconfig.get_path("scripts")) / "storyc"
    if not script.exists():  # pragma: no cover - installed elsewhere
        pytest.skip("the storyc console script is not installed in this environment")
    return str(script)


def test_console_script_in_a_real_subprocess(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_")}
    done = subprocess.run(
        [console_script(), "compile", "board.yaml", "--json"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["jobs"][0]["cost_usd"] == 3.36
    bad = subprocess.run([console_script(), "check", "missing.yaml"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "Traceback" not in bad.stdout + bad.stderr


def test_python_dash_m_and_interrupt_exit_130(project: Path) -> None:
    code = (
        "import sys, storyc.cli as c\n"
        "def boom(*a, **k): raise KeyboardInterrupt\n"
        "c.cli.main = boom\n"
        "c.main(['check', 'board.yaml'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 130
    assert done.stderr.strip() == "storyc: interrupted"


def test_unexpected_error_exit_3_without_traceback(project: Path) -> None:
    code = (
        "import storyc.cli as c\n"
        "def boom(*a, **k): raise RuntimeError('kaboom')\n"
        "c.cli.main = boom\n"
        "c.main(['check', 'board.yaml'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "STORYC_TRACEBACK"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 3
    assert "unexpected error (a bug in storyc" in done.stderr and "Traceback" not in done.stderr


def test_every_error_storyc_raises_for_users_shares_one_base() -> None:
    """A new error type outside StorycError would reach the boundary as 'a bug' (exit 3)."""
    import importlib
    import inspect
    import pkgutil

    import storyc
    from storyc.compile.sandbox import TooExpensive, UnsupportedTag
    from storyc.diagnostics import StorycError
    from storyc.files import FileTooLarge, NotARegularFile
    from storyc.render.backends.base import ServiceAnswer
    from storyc.render.run import Interrupted

    # Signals between storyc's own layers, never shown as such: the render's stop flag, a service's
    # answers, and what the compile stage turns into located diagnostics (an OSError for a file, a
    # template's limit or tag).
    internal = (Interrupted, ServiceAnswer, NotARegularFile, FileTooLarge, TooExpensive, UnsupportedTag)
    outside = []
    for info in pkgutil.walk_packages(storyc.__path__, "storyc."):
        if info.name == "storyc.__main__":  # runs the command line on import
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, Exception)
                and value.__module__ == module.__name__
                and not name.startswith("_")
                and not issubclass(value, (StorycError, *internal))
            ):
                outside.append(f"{module.__name__}.{name}")
    assert outside == []


# Each command with arguments that run offline in `project`; `diff` gets a git repository first.
FORMAT_RUNS: dict[str, list[str]] = {
    "check": ["check", "board.yaml"],
    "compile": ["compile", "board.yaml"],
    "plan": ["plan", "board.yaml"],
    "render": ["render", "board.yaml", "--backend", "animatic", "--scene", "meet"],
    "status": ["status", "board.yaml"],
    "pull": ["pull", "board.yaml"],
    "push": ["push", "board.yaml"],
    "gc": ["gc", "board.yaml", "--dry-run"],
    "cut": ["cut", "board.yaml", "--backend", "animatic"],
    "sheet": ["sheet", "board.yaml"],
    "diff": ["diff", "board.yaml"],
    "schema": ["schema"],
    "init": ["init", "fresh"],
}


def test_every_command_documents_and_supports_format_json(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    from helpers import commit_all, git

    monkeypatch.setenv("STORYC_STORE", f"memory://formats-{uuid.uuid4().hex}")  # for push

    # `lsp` reports nothing: its stdout is the Language Server Protocol (tests/test_lsp.py)
    assert set(cli.commands) - {"lock", "lsp"} == set(FORMAT_RUNS), "a new command needs its --format json run here"
    git(project.parent, "init", "-q")
    commit_all(project.parent, "board")
    run("render", "board.yaml", "--backend", "animatic")  # so that `cut` has every scene
    for name, args in FORMAT_RUNS.items():
        code, out, _ = run(name, "--help")
        assert code == 0 and "--format" in out and "--json" in out, name
        code, out, err = run(*args, "--format", "json")
        assert code in (0, 1), (name, err)
        assert isinstance(json.loads(out), dict), name
        code, alias, _ = run(*[a if a != "fresh" else "fresh2" for a in args], "--json")
        assert isinstance(json.loads(alias), dict), name


def test_a_scenes_state_is_the_field_state_in_every_json(project: Path) -> None:
    for args, states in ((["plan", "board.yaml"], ["render", "render"]), (["status", "board.yaml"], ["new", "new"])):
        _, out, _ = run(*args, "--json")
        assert [s["state"] for s in json.loads(out)["scenes"]] == states
    _, out, _ = run("render", "board.yaml", "--backend", "animatic", "--json")
    assert [s["state"] for s in json.loads(out)["scenes"]] == ["done", "done"]


def test_check_locked_json_says_not_ok_when_it_exits_1(project: Path) -> None:
    from storyc.lock.lockfile import Lock, dumps

    (project.parent / "board.lock").write_text(dumps(Lock()), "utf-8")  # a lock that records no scene yet
    code, out, err = run("check", "board.yaml", "--locked", "--format", "json")
    payload = json.loads(out)
    assert code == 1 and payload["ok"] is False and payload["stale_locks"]
    assert "out of date" in err


def test_no_color_turns_styling_off(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project.parent / "board.yaml").write_text(project.read_text("utf-8").replace("duration: 8", "duration: 99"))
    styled = CliRunner().invoke(cli, ["check", "board.yaml"], color=True)
    assert "\x1b[" in styled.stdout
    monkeypatch.setenv("NO_COLOR", "1")
    plain = CliRunner().invoke(cli, ["check", "board.yaml"], color=True)
    assert plain.exit_code == 1 and "error:" in plain.stdout and "\x1b[" not in plain.stdout


def test_the_board_defaults_to_board_yaml_here_or_in_a_folder(project: Path, tmp_path: Path) -> None:
    code, out, _ = run("check")
    assert code == 0 and out.startswith("board.yaml: 2 scenes")
    code, out, _ = run("check", ".")
    assert code == 0 and out.startswith("board.yaml: 2 scenes")
    two = tmp_path / "two"
    two.mkdir()
    (two / "a.yaml").write_text("version: 1\n")
    (two / "b.yaml").write_text("version: 1\n")
    code, _, err = run("plan", "two")
    assert code == 2 and "has no board.yaml and 2 other boards (a.yaml, b.yaml): name one" in err
    (two / "b.yaml").unlink()
    code, _, err = run("check", "two")
    assert code == 1 and "two/a.yaml" in err + _  # the one board there is the one checked


def test_help_lists_commands_in_workflow_order() -> None:
    _, out, _ = run("--help")
    listed = [line.split()[0] for line in out.split("Commands:")[1].splitlines() if line.startswith("  ")]
    assert listed[:6] == ["init", "check", "compile", "plan", "render", "status"]


def test_plan_detailed_exitcode_says_whether_anything_would_be_paid(project: Path) -> None:
    code, _, _ = run("plan", "--detailed-exitcode")
    assert code == 2
    code, _, _ = run("plan", "--detailed-exitcode", "--backend", "animatic")
    assert code == 0  # animatics are free


def test_animatic_status_and_gc_of_old_animatics(project: Path) -> None:
    code, out, _ = run("status", "--backend", "animatic", "--json")
    assert code == 1 and [s["state"] for s in json.loads(out)["scenes"]] == ["new", "new"]
    assert run("render", "--backend", "animatic")[0] == 0
    code, out, _ = run("status", "--backend", "animatic")
    assert code == 0 and "renders/animatic/meet-" in out
    project.write_text(project.read_text("utf-8").replace("@ellie meets @rex", "@rex meets @ellie"), "utf-8")
    assert run("render", "--backend", "animatic", "--scene", "meet")[0] == 0
    code, out, _ = run("gc", "--animatics", "--dry-run")
    assert code == 0 and out.splitlines()[-1] == "would delete 2 old animatic files"  # old meet: cached + placed
    code, out, _ = run("gc", "--animatics")
    assert out.splitlines()[-1] == "deleted 2 old animatic files"
    assert run("status", "--backend", "animatic")[0] == 0  # the current ones stay


def test_init_writes_a_gitignore_and_points_at_the_free_preview(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run("init", "film")
    assert code == 0 and "storyc render film/board.yaml --backend animatic" in out
    ignored = (tmp_path / "film" / ".gitignore").read_text("utf-8").splitlines()
    assert {"renders/", ".storyc/"} <= set(ignored)
    (tmp_path / "film" / "board.yaml").unlink()
    run("init", "film")
    assert (tmp_path / "film" / ".gitignore").read_text("utf-8").splitlines() == ignored  # never twice


def test_shell_completion_completes_commands() -> None:
    env = {**os.environ, "COMP_WORDS": "storyc pl", "COMP_CWORD": "1", "_STORYC_COMPLETE": "bash_complete"}
    done = subprocess.run([console_script()], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "plain,plan" in done.stdout.splitlines()


def test_shell_completion_completes_the_boards_profiles(tmp_path: Path) -> None:
    shutil.copytree(Path(__file__).parent.parent / "examples" / "elephant", tmp_path / "film")
    cases: tuple[tuple[str, str, Path, list[str]], ...] = (
        ("storyc plan --profile ", "3", tmp_path / "film", ["draft", "final"]),
        ("storyc cut -p f", "3", tmp_path / "film", ["final"]),  # ./board.yaml
        ("storyc cut -p ", "3", tmp_path, []),  # no board here: nothing to offer, no error
    )
    for words, cword, cwd, expected in cases:
        env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": cword, "_STORYC_COMPLETE": "bash_complete"}
        done = subprocess.run([console_script()], env=env, capture_output=True, text=True, timeout=60, cwd=cwd)
        assert done.returncode == 0, done.stderr
        assert [line.split(",")[1] for line in done.stdout.splitlines() if line] == expected, words


@pytest.mark.parametrize(
    "args",
    [
        "compile board.yaml --format json",
        "plan board.yaml --json",
        "status board.yaml --json",
        "render board.yaml --backend animatic --json",
        "pull board.yaml --json",
        "sheet board.yaml --json",
        "cut board.yaml --backend animatic --json",
        "gc board.yaml --json",
        "lock sync board.yaml --json",
    ],
)
def test_json_commands_write_json_on_stdout_for_an_invalid_board(project: Path, args: str) -> None:
    """A script reading stdout always gets a document: the located diagnostics, like `check --format json`."""
    project.write_text(project.read_text("utf-8").replace("duration: 8", "duration: 99"), "utf-8")
    code, out, err = run(*args.split())
    assert code == 1
    payload = json.loads(out)
    assert payload["ok"] is False
    (diagnostic,) = payload["diagnostics"]
    assert diagnostic["path"] == "board.yaml" and diagnostic["severity"] == "error"
    assert diagnostic["line"] is not None and "duration" in diagnostic["message"]
    assert "error:" in err  # people still read it on stderr


def test_json_failures_that_are_not_about_the_board_are_json_too(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORYC_STORE", "none")
    code, out, _ = run("push", "board.yaml", "--json")
    assert code == 1
    payload = json.loads(out)
    assert payload["ok"] is False and "team store" in payload["diagnostics"][0]["message"]
    code, out, _ = run("plan", "board.yaml", "--scene", "nope", "--json")  # a usage error: exit 2, still JSON
    assert code == 2 and "no scene 'nope'" in json.loads(out)["diagnostics"][0]["message"]
    code, out, _ = run("plan", "board.yaml", "--scene", "nope")
    assert code == 2 and out == ""  # text output is unchanged: the message is on stderr


def test_help_names_every_exit_status_storyc_uses() -> None:
    import re

    import storyc.commands

    _, out, _ = run("--help")
    statuses = " ".join(out.split("Exit status:")[1].split())
    named = {int(n) for n in re.findall(r"(?:^|, )(\d+) ", statuses)}
    used = {value for name, value in vars(storyc.commands).items() if name.startswith("EXIT_")}
    assert used == {0, 1, 2, 3, 130} and named == used, statuses
