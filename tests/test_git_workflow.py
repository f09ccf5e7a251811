"""What teams keeping boards in git rely on: `check --locked`, the pre-commit hook manifest, the schema alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import BASIC_BOARD, BASIC_IMAGES, make_project

from storyc.cli import cli
from storyc.compile.pipeline import compile_file
from storyc.lock.lockfile import Lock, dumps, lock_path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_check_locked_fails_until_the_lock_records_the_boards_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    board = make_project(tmp_path, BASIC_BOARD, BASIC_IMAGES)
    monkeypatch.chdir(tmp_path)
    code, _, err = run("check", "--locked", "board.yaml")
    assert code == 1
    assert "board.lock: out of date with board.yaml (new: meet, play)" in err
    compiled = compile_file(board, use_cache=False).board
    assert compiled is not None
    lock_path(board).write_text(dumps(Lock(scenes={j.scene: j.key for j in compiled.jobs})), "utf-8")
    assert run("check", "--locked", "board.yaml")[0] == 0
    board.write_text(board.read_text("utf-8").replace("@ellie follows @rex.", "@ellie chases @rex."), "utf-8")
    code, _, err = run("check", "--locked", "board.yaml")
    assert code == 1
    assert "(changed: play)" in err
    assert run("check", "board.yaml")[0] == 0  # without --locked the lock is not a concern


def test_pre_commit_manifest_runs_storyc_commands() -> None:
    from ruamel.yaml import YAML

    hooks = {h["id"]: h for h in YAML(typ="safe").load((ROOT / ".pre-commit-hooks.yaml").read_text("utf-8"))}
    assert hooks["storyc-check"]["entry"] == "storyc check"
    assert hooks["storyc-lock"]["entry"] == "storyc check --locked"
    assert all(h["language"] == "python" for h in hooks.values())


@pytest.mark.parametrize("board", sorted((ROOT / "examples").glob("*/board.yaml")), ids=lambda p: p.parent.name)
def test_every_example_validates_against_the_shipped_schema_alone(board: Path) -> None:
    """An editor sees what jsonschema sees: the modeline's schema, a plain YAML load, nothing of storyc's."""
    import jsonschema
    from ruamel.yaml import YAML

    first = board.read_text("utf-8").splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema=")
    schema_path = (board.parent / first.split("$schema=", 1)[1]).resolve()
    assert schema_path == ROOT / "schemas" / "storyboard.schema.json"
    schema = json.loads(schema_path.read_text("utf-8"))
    jsonschema.Draft202012Validator(schema).validate(YAML(typ="safe").load(board.read_text("utf-8")))


def test_init_writes_the_schema_its_modeline_names(tmp_path: Path) -> None:
    """`storyc init` boards open in an editor with completion: the modeline's schema is written beside them."""
    import jsonschema
    from ruamel.yaml import YAML

    assert run("init", str(tmp_path / "film"))[0] == 0
    board = tmp_path / "film" / "board.yaml"
    first = board.read_text("utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=storyboard.schema.json"
    schema_path = board.parent / first.split("$schema=", 1)[1]
    assert schema_path.read_bytes() == (ROOT / "schemas" / "storyboard.schema.json").read_bytes()
    schema = json.loads(schema_path.read_text("utf-8"))
    jsonschema.Draft202012Validator(schema).validate(YAML(typ="safe").load(board.read_text("utf-8")))


def test_every_key_of_the_schema_has_a_description_and_examples() -> None:
    """What an editor shows on hover and offers on completion, for every key (directly or through its $ref)."""
    schema = json.loads((ROOT / "schemas" / "storyboard.schema.json").read_text("utf-8"))

    def resolved(node: dict[str, object]) -> dict[str, object]:
        ref = node.get("$ref")
        target = schema["$defs"][str(ref).rsplit("/", 1)[1]] if ref else {}
        return {**target, **node}

    missing: list[str] = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.get("properties", {}).items():
                missing.extend(
                    f"{where}/{key}: {need}" for need in ("description", "examples") if need not in resolved(value)
                )
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(schema, "")
    assert missing == []
