"""The lock file: deterministic text, exact round-trips, clear errors, one writer at a time."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storyc.lock import lockfile as lockmod
from storyc.lock.lockfile import Lock, LockError, Render, Upload, Video, loads, read

KEY = "sha256:" + "4be1" * 16
OTHER = "sha256:" + "09c7" * 16


def sample() -> Lock:
    return Lock(
        scenes={"play": OTHER, "meet": KEY},
        renders={
            KEY: Render(
                scene="meet",
                endpoint="fal-ai/kling-video/o3/4k/reference-to-video",
                state="done",
                seconds=8,
                cost_usd=Decimal("3.36"),
                request_id="764cabcf-b745-4b3e-ae38-1200304cf45b",
                video=Video(
                    url="https://v3b.fal.media/files/b/x/out.mp4",
                    bytes=18468404,
                    sha256="sha256:" + "2f0e" * 16,
                    path="renders/meet-4be14be14be1.mp4",
                ),
            ),
            OTHER: Render(
                scene="play",
                endpoint="fal-ai/kling-video/o3/4k/reference-to-video",
                state="failed",
                seconds=5,
                cost_usd=Decimal("2.10"),
                request_id="r2",
                error='prompt: "too long": yes # really',
            ),
        },
        uploads={
            "sha256:" + "77aa" * 16: Upload("https://v3b.fal.media/files/a", datetime(2026, 11, 25, 10, tzinfo=UTC))
        },
    )


def test_dump_is_sorted_deterministic_and_matches_the_documented_shape() -> None:
    text = lockmod.dumps(sample())
    assert text == lockmod.dumps(lockmod.loads(text))
    lines = text.splitlines()
    assert lines[0].startswith("# storyc lock file")
    assert lines[1] == "version: 1"
    assert lines.index("renders:") < lines.index("scenes:") < lines.index("uploads:")
    assert f"  meet: {KEY}" in lines and lines.index(f"  meet: {KEY}") < lines.index(f"  play: {OTHER}")
    assert "    state: done" in lines
    assert "    cost_usd: 3.36" in lines and "    cost_usd: 2.10" in lines
    assert "      path: renders/meet-4be14be14be1.mp4" in lines
    assert '    uploaded: "2026-11-25T10:00:00Z"' in lines


def test_fast_reader_and_real_yaml_parser_agree() -> None:
    from ruamel.yaml import YAML

    text = lockmod.dumps(sample())
    fast = lockmod._fast_parse(text)
    assert fast is not None
    slow = YAML(typ="safe", pure=True).load(text)
    assert lockmod._from_data(fast, "x") == lockmod._from_data(slow, "x") == sample()


def test_hand_edited_lock_falls_back_to_yaml() -> None:
    text = lockmod.dumps(sample()).replace("  meet: " + KEY, "  meet: '" + KEY + "'  # edited")
    assert lockmod.loads(text) == sample()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 2\n", "unsupported lock version 2"),
        ("scenes: {}\n", "unsupported lock version (missing)"),
        ("version: 1\nrenders:\n  k:\n    state: maybe\n", "renders.k.state: expected one of intent, unknown"),
        ("version: 1\nrenders: [1]\n", "renders: expected a mapping"),
        ("version: 1\n<<<<<<< HEAD\nscenes: {}\n=======\n", "board.lock:2:1: error: unresolved git merge conflict"),
        ("version: 1\nuploads:\n  k:\n    url: u\n    uploaded: soon\n", "uploads.k.uploaded: expected a UTC time"),
    ],
)
def test_bad_lock_files_give_a_located_message(text: str, message: str) -> None:
    with pytest.raises(LockError, match=r"^board\.lock:\d+:\d+: error: ") as info:
        lockmod.loads(text, "board.lock")
    assert message in str(info.value)


def test_bad_entries_are_located_at_their_line() -> None:
    text = lockmod.dumps(sample()).replace("    state: failed", "    state: maybe")
    line = text.splitlines().index("    state: maybe") + 1
    with pytest.raises(LockError, match=rf"^board\.lock:{line}:5: error: renders\.{OTHER}\.state: expected one of"):
        lockmod.loads(text, "board.lock")


def test_store_writes_through_atomically_and_skips_no_op_writes(tmp_path: Path) -> None:
    board = tmp_path / "board.yaml"
    board.write_text("", "utf-8")
    with lockmod.open_store(board) as store:
        store.set_scenes({"meet": KEY})
        written = (tmp_path / "board.lock").read_bytes()
        mtime = (tmp_path / "board.lock").stat().st_mtime_ns
        store.set_scenes({"meet": KEY})
        assert (tmp_path / "board.lock").stat().st_mtime_ns == mtime
    assert lockmod.read(tmp_path / "board.lock").scenes == {"meet": KEY}
    assert written.endswith(b"\n")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_second_writer_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    board = tmp_path / "board.yaml"
    with (
        lockmod.open_store(board),
        pytest.raises(LockError, match="in use by another storyc command"),
        lockmod.open_store(board),
    ):
        pytest.fail("a second writer got the lock")


def test_missing_lock_reads_as_empty(tmp_path: Path) -> None:
    assert lockmod.read(tmp_path / "none.lock") == Lock()


texts = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(scene=texts, error=texts, url=texts)
def test_any_strings_round_trip(scene: str, error: str, url: str) -> None:
    render = Render(scene, "e/p", "failed", 3, Decimal("1.26"), "id", Video(url), error)
    lock = Lock(scenes={scene: KEY}, renders={KEY: render})
    text = lockmod.dumps(lock)
    assert lockmod.loads(text) == lock
    assert lockmod._fast_parse(text) is not None  # what we write, we read without the slow path
    from ruamel.yaml import YAML

    assert lockmod._from_data(YAML(typ="safe", pure=True).load(text), "x") == lock  # and it is real YAML
    assert lockmod.loads(text.replace("\n", "\r\n")) == lock


def test_written_locks_satisfy_the_published_lock_schema() -> None:
    import jsonschema
    from ruamel.yaml import YAML

    from storyc.resources import schemas_dir

    schema = json.loads((schemas_dir() / "lock.schema.json").read_text("utf-8"))
    data = YAML(typ="safe", pure=True).load(lockmod.dumps(sample()))
    jsonschema.Draft202012Validator(schema).validate(data)
    data["renders"][KEY]["state"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(data)


@pytest.mark.parametrize(
    "text",
    ["a:", "a:b", "-x", "@a", ".5", "y", "NaN", ".inf", "0x1f", "1_000", "+1", "sha256:ab:", "2026-11-25T10:00:00Z"],
)
def test_strings_yaml_would_misread_are_quoted(text: str) -> None:
    from ruamel.yaml import YAML

    written = lockmod.dumps(Lock(scenes={text: text}))
    assert YAML(typ="safe", pure=True).load(written)["scenes"] == {text: text}
    assert lockmod._fast_parse(written) is not None


def test_a_yaml_error_without_conflict_markers_does_not_mention_merges() -> None:
    with pytest.raises(LockError) as caught:
        loads("version: 1\nscenes: [unclosed\n", "board.lock")
    assert "not valid YAML" in str(caught.value) and "merge" not in str(caught.value)


def test_an_alias_bomb_lock_is_refused_at_once() -> None:
    import time

    lines = ["version: 1", "a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(9):  # each level repeats the one before ten times: 10**10 strings once expanded
        name, before = chr(98 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [{', '.join([f'*{before}'] * 10)}]")
    started = time.monotonic()
    with pytest.raises(LockError, match=r"board.lock:2:4: error: anchors and aliases are not allowed"):
        loads("\n".join(lines) + "\n", "board.lock")
    assert time.monotonic() - started < 1


def test_deep_nesting_in_a_lock_is_refused() -> None:
    with pytest.raises(LockError, match="nested deeper than a lock file can be"):
        loads("version: 1\nscenes: " + "[" * 5000 + "]" * 5000 + "\n", "board.lock")


def test_a_fifo_as_the_lock_is_refused_without_hanging(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "board.lock"
    os.mkfifo(fifo)
    with pytest.raises(LockError, match="not a regular file"):
        read(fifo)


def test_temporaries_left_by_a_killed_run_are_removed_when_the_lock_is_next_held(tmp_path: Path) -> None:
    board = tmp_path / "board.yaml"
    board.write_text("version: 1\n", "utf-8")
    renders = tmp_path / "renders"
    renders.mkdir()
    stale = [tmp_path / ".board.lock.k2j3.tmp", renders / ".meet-0123456789ab.mp4.x9y8.tmp"]
    keep = [renders / "meet-0123456789ab.mp4", tmp_path / ".other.tmp"]
    for path in (*stale, *keep):
        path.write_bytes(b"partial")
    with lockmod.open_store(board):
        pass
    assert [p.exists() for p in stale] == [False, False]
    assert all(p.exists() for p in keep)


def still_entry() -> Render:
    """A still's entry: its candidates by number, no seconds; and a scene made from its pick."""
    images = tuple(
        Video(f"https://fal.media/files/c{n}.png", 1000 + n, "sha256:" + f"{n}" * 64, f"renders/stills/open-{n}.png")
        for n in (1, 2, 3)
    )
    return Render("", "fal-ai/nano-banana-2/edit", "done", 0, Decimal("0.24"), "req-still", still="open", images=images)


def test_a_still_entry_and_made_from_round_trip_fast_and_satisfy_the_schema() -> None:
    import jsonschema
    from ruamel.yaml import YAML

    from storyc.resources import schemas_dir

    still_key = "sha256:" + "e" * 64
    made = replace(sample().renders[KEY], made_from={f"still:{still_key}#2": "sha256:" + "2" * 64})
    lock = Lock(renders={KEY: made, still_key: still_entry()})
    text = lockmod.dumps(lock)
    assert lockmod._fast_parse(text) is not None and lockmod.loads(text) == lock
    assert lockmod._from_data(YAML(typ="safe", pure=True).load(text), "x") == lock
    schema = json.loads((schemas_dir() / "lock.schema.json").read_text("utf-8"))
    data = YAML(typ="safe", pure=True).load(text)
    jsonschema.Draft202012Validator(schema).validate(data)
    data["renders"][still_key]["seconds"] = 3  # a still has no seconds: a scene's entry and a still's are apart
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(data)


def test_a_still_whose_candidates_are_not_numbered_from_one_is_a_located_error() -> None:
    text = lockmod.dumps(Lock(renders={KEY: still_entry()})).replace('"2":', '"7":')
    with pytest.raises(LockError, match=r"board.lock:\d+:\d+: error: renders\.sha256:\w+\.images: expected candidates"):
        loads(text, "board.lock")


# --- absurd numbers are located errors, never Infinity or NaN in an output ----------------------------

ABSURD = [
    ("cost_usd: 2.10", "cost_usd: 1e999999", "cost_usd"),
    ("cost_usd: 2.10", "cost_usd: -2.10", "cost_usd"),
    ("cost_usd: 2.10", "cost_usd: .inf", "cost_usd"),
    ("cost_usd: 2.10", "cost_usd: -.inf", "cost_usd"),
    ("cost_usd: 2.10", "cost_usd: .nan", "cost_usd"),
    ("cost_usd: 2.10", "cost_usd: NaN", "cost_usd"),
    ("cost_usd: 2.10", "cost_usd: Infinity", "cost_usd"),
    ("cost_usd: 2.10", "cost_usd: 0." + "1" * 5000, "cost_usd"),
    ("seconds: 5", "seconds: 99999999999999999999", "seconds"),
    ("seconds: 5", "seconds: .inf", "seconds"),
    ("bytes: 100", f"bytes: {2**64}", "video.bytes"),
    ("bytes: 100", "bytes: 1e999999", "video.bytes"),
]


@pytest.mark.parametrize(("good", "bad", "field"), ABSURD, ids=[a[1][:24] for a in ABSURD])
@pytest.mark.parametrize("command", [["status"], ["gc", "--dry-run"]])
def test_an_absurd_number_in_the_lock_is_a_located_error_in_every_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str], good: str, bad: str, field: str
) -> None:
    from click.testing import CliRunner
    from helpers import BASIC_BOARD, BASIC_IMAGES, make_project

    from storyc.cli import cli

    board = make_project(tmp_path / "film", BASIC_BOARD, BASIC_IMAGES)
    monkeypatch.chdir(board.parent)
    entry = Render(
        "old", "e/p", "done", 5, Decimal("2.10"), "req-1", Video("https://v/1.mp4", 100, KEY, "renders/a.mp4")
    )
    text = lockmod.dumps(Lock(renders={KEY: entry}))
    assert good in text
    lockmod.lock_path(board).write_text(text.replace(good, bad), "utf-8")
    line = text.splitlines().index(next(x for x in text.splitlines() if x.strip() == good)) + 1
    for output in ([], ["--json"]):
        result = CliRunner().invoke(cli, [*command, *output])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert f"board.lock:{line}:" in result.stderr and f"error: renders.{KEY}.{field}:" in result.stderr
        if output:  # JSON: a failure document (the message quotes the bad text) with no non-finite number in it
            payload = json.loads(result.stdout, parse_constant=lambda word: pytest.fail(f"JSON holds {word}"))
            assert payload["ok"] is False
        else:
            assert not any(word in result.stdout for word in ("Infinity", "NaN", "inf"))


def test_a_sound_lock_still_reads_with_its_largest_values() -> None:
    entry = Render(
        "s", "e/p", "done", lockmod.MAX_SECONDS, lockmod.MAX_COST_USD, "r", Video("u", lockmod.MAX_VIDEO_BYTES)
    )
    lock = Lock(renders={KEY: entry})
    assert lockmod.loads(lockmod.dumps(lock)) == lock
