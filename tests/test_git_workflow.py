"""What teams keeping boards in git rely on: `check --locked`, the pre-commit hook manifest, the schema alone."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import BASIC_BOARD, BASIC_IMAGES, make_project

from storyc.cli import cli
from storyc.compile.pipeline import compile_file
from storyc.lock.lockfile import Lock, Render, dumps, lock_path, read

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_check_locked_fails_until_the_lock_records_the_boards_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    board = make_project(tmp_path, BASIC_BOARD, BASIC_IMAGES)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run("check", "--locked", "board.yaml")
    assert code == 0, "a board never rendered has no lock: nothing to record, so it is committable"
    assert out.endswith("0 errors, 0 warnings in 1 file, locks up to date\n")
    compiled = compile_file(board, use_cache=False).board
    assert compiled is not None
    lock_path(board).write_text(dumps(Lock(scenes={"meet": compiled.jobs[0].key})), "utf-8")
    code, out, err = run("check", "--locked", "board.yaml")
    assert code == 1
    assert err.startswith("board.lock: out of date with board.yaml (new: play); `storyc lock sync board.yaml`")
    assert out.endswith("0 errors, 0 warnings in 1 file, 1 lock out of date\n")  # the summary agrees with exit 1
    lock_path(board).write_text(dumps(Lock(scenes={j.scene: j.key for j in compiled.jobs})), "utf-8")
    assert run("check", "--locked", "board.yaml")[0] == 0
    board.write_text(board.read_text("utf-8").replace("@ellie follows @rex.", "@ellie chases @rex."), "utf-8")
    code, _, err = run("check", "--locked", "board.yaml")
    assert code == 1
    assert "(changed: play)" in err
    assert run("check", "board.yaml")[0] == 0  # without --locked the lock is not a concern


def test_lock_sync_records_the_keys_and_keeps_every_render(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    board = make_project(tmp_path, BASIC_BOARD, BASIC_IMAGES)
    monkeypatch.chdir(tmp_path)
    paid = Render(
        scene="meet",
        endpoint="fal-ai/kling-video/o3/4k/reference-to-video",
        state="submitted",
        seconds=8,
        cost_usd=Decimal("3.36"),
        request_id="req-1",
    )
    lock_path(board).write_text(
        dumps(Lock(scenes={"meet": "sha256:" + "0" * 64}, renders={"sha256:" + "1" * 64: paid}))
    )
    assert run("check", "--locked", "board.yaml")[0] == 1
    code, out, _ = run("lock", "sync", "board.yaml")
    assert code == 0 and out == "board.lock: recorded the keys of 2 scenes of board.yaml\n"
    after = read(lock_path(board))
    compiled = compile_file(board, use_cache=False).board
    assert compiled is not None
    assert after.scenes == {j.scene: j.key for j in compiled.jobs}
    assert after.renders == {"sha256:" + "1" * 64: paid}  # nothing forgotten: reverting is still free
    assert run("check", "--locked", "board.yaml")[0] == 0
    assert run("lock", "sync", "board.yaml")[1].startswith("board.lock: already recorded")
    board.write_text(board.read_text("utf-8").replace("duration: 8", "duration: 99"), "utf-8")
    code, _, err = run("lock", "sync", "board.yaml")
    assert code == 1 and "error:" in err and read(lock_path(board)) == after  # a broken board records nothing


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
