"""`storyc diff`: a board at two git revisions, in temporary repositories with real commits.

Golden outputs are in tests/cases/diff/; regenerate after an intended change with
    STORYC_UPDATE_GOLDENS=1 pytest tests/test_diff.py
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import commit_all, copy_example_file, git_init

from storyc.cli import cli
from storyc.lock.lockfile import Lock, Render, dumps
from storyc.review.changes import review, word_diff
from storyc.review.formats import code, md

GOLDEN = Path(__file__).resolve().parent / "cases" / "diff"

IMAGES = {
    "refs/ellie-front.png": "elephant/refs/ellie-front.png",
    "refs/ellie-side.png": "elephant/refs/ellie-side.png",
    "refs/rex-front.png": "ad-spot/refs/bottle-front.png",
    "refs/rex-side.png": "ad-spot/refs/bottle-side.png",
    "refs/ball-front.png": "elephant/refs/open.png",
    "refs/ball-side.png": "elephant/refs/close.png",
    "refs/dawn.jpg": "elephant/refs/dawn-palette.jpg",
    "refs/dusk.jpg": "multishot/refs/sunset.jpg",
}

BOARD = """\
version: 1
title: Diff test
target:
  endpoint: fal-ai/kling-video/o3/4k/reference-to-video
characters:
  ellie:
    frontal: refs/ellie-front.png
    references: [refs/ellie-side.png]
  rex:
    frontal: refs/rex-front.png
    references: [refs/rex-side.png]
  ball:
    frontal: refs/ball-front.png
    references: [refs/ball-side.png]
styles:
  dawn: refs/dawn.jpg
  noir:
    image: https://example.org/noir.jpg
scenes:
  - id: meet
    prompt: "@ellie meets @rex in the light of @dawn."
    duration: 5
  - id: toss
    prompt: "@ball flies across the clearing."
    duration: 3
  - id: chase
    shots:
      - prompt: "@rex runs, styled like @noir."
        duration: 3
      - prompt: "@rex chases @ellie."
        duration: 3
  - id: rest
    prompt: "@ellie sleeps under a tree at @dawn."
    duration: 4
  - id: look
    prompt: "@rex looks at the sky."
    duration: 3
  - id: finale
    prompt: "@ellie and @rex wave goodbye."
    duration: 5
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose HEAD commit holds BOARD and its images; the working directory is its root."""
    root = git_init(tmp_path / "film")
    for dest, source in IMAGES.items():
        copy_example_file(root, source, dest)
    (root / "board.yaml").write_text(BOARD, "utf-8")
    commit_all(root, "base")
    monkeypatch.chdir(root)
    return root


def edit(root: Path, old: str, new: str) -> None:
    board = root / "board.yaml"
    text = board.read_text("utf-8")
    assert old in text, old
    board.write_text(text.replace(old, new), "utf-8")


def move(root: Path, old: str, new: str) -> None:
    (root / new).parent.mkdir(parents=True, exist_ok=True)
    (root / old).rename(root / new)


def diff(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["diff", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def statuses(root: Path, **kwargs: str) -> dict[str, str]:
    return {s.scene: s.status for s in review(root / "board.yaml", **kwargs).scenes}


# --- each kind of change --------------------------------------------------------------------


def test_no_change_is_all_unchanged_and_costs_nothing(repo: Path) -> None:
    result = review(repo / "board.yaml")
    assert {s.status for s in result.scenes} == {"unchanged"}
    assert result.cost_usd == Decimal("0.00")
    code_, out, _ = diff("board.yaml")
    assert code_ == 0
    assert out.splitlines()[-1] == "6 unchanged; nothing new to render"


def test_edited_prompt_is_a_word_diff_with_names_not_positions(repo: Path) -> None:
    edit(repo, "@ellie meets @rex", "@ellie greets @rex")
    (meet,) = [s for s in review(repo / "board.yaml").scenes if s.status != "unchanged"]
    assert (meet.scene, meet.status, meet.fields) == ("meet", "changed", ("prompt",))
    (prompt,) = meet.prompts
    assert prompt.chunks == (("=", "@ellie "), ("-", "meets"), ("+", "greets"), ("=", " @rex in the light of @dawn."))
    assert meet.cost_usd == Decimal("2.10")
    _, out, _ = diff("board.yaml")
    assert "prompt: @ellie [-meets-]{+greets+} @rex in the light of @dawn." in out
    assert "@Element" not in out and "@Image" not in out


def test_repainted_asset_changes_every_scene_using_it(repo: Path) -> None:
    copy_example_file(repo, "elephant/refs/ellie-back.png", "refs/ball-front.png")  # same path, new bytes
    commit_all(repo, "repaint the ball")
    result = review(repo / "board.yaml", base="HEAD~1", head="HEAD")
    (toss,) = [s for s in result.scenes if s.status != "unchanged"]
    assert (toss.scene, toss.fields) == ("toss", ("elements",))
    (asset,) = toss.assets
    assert (asset.kind, asset.role, asset.old, asset.new) == (
        "repainted",
        "@ball frontal",
        "refs/ball-front.png",
        "refs/ball-front.png",
    )


def test_renamed_asset_keeps_the_key_and_the_scene_unchanged(repo: Path) -> None:
    move(repo, "refs/dawn.jpg", "refs/palette/dawn.jpg")
    edit(repo, "dawn: refs/dawn.jpg", "dawn: refs/palette/dawn.jpg")
    assert set(statuses(repo).values()) == {"unchanged"}


def test_added_and_removed_scenes(repo: Path) -> None:
    edit(repo, '  - id: finale\n    prompt: "@ellie and @rex wave goodbye."\n    duration: 5\n', "")
    with (repo / "board.yaml").open("a", encoding="utf-8") as f:
        f.write('  - id: encore\n    prompt: "@ball bounces once more."\n    duration: 6\n')
    result = review(repo / "board.yaml")
    assert [(s.scene, s.status) for s in result.scenes if s.status != "unchanged"] == [
        ("encore", "added"),
        ("finale", "removed"),
    ]
    assert result.cost_usd == Decimal("2.52")  # the added 6 s; a removed scene costs nothing


def test_renamed_scene_id_is_a_rename_not_remove_and_add(repo: Path) -> None:
    edit(repo, "id: rest", "id: nap")
    result = review(repo / "board.yaml")
    (nap,) = [s for s in result.scenes if s.status != "unchanged"]
    assert (nap.scene, nap.status, nap.renamed_from, nap.cost_usd) == ("nap", "renamed", "rest", Decimal("0.00"))
    _, out, _ = diff("board.yaml", "--format", "json")
    scene = next(s for s in json.loads(out)["scenes"] if s["scene"] == "nap")
    assert scene["status"] == "renamed" and scene["renamed_from"] == "rest"


def test_references_settings_and_shots(repo: Path) -> None:
    edit(
        repo,
        '      - prompt: "@rex chases @ellie."\n        duration: 3',
        '      - prompt: "@rex chases @ball."\n        duration: 4',
    )
    (chase,) = [s for s in review(repo / "board.yaml").scenes if s.status != "unchanged"]
    assert chase.fields == ("multi_prompt", "elements", "duration")
    assert (chase.refs_added, chase.refs_dropped) == (("ball",), ("ellie",))
    assert [(s.name, s.old, s.new) for s in chase.settings] == [("duration", "6", "7"), ("shot 2 duration", "3", "4")]
    assert [p.label for p in chase.prompts] == ["shot 2"]


def test_a_scene_done_in_the_lock_at_head_costs_nothing(repo: Path) -> None:
    edit(repo, "@ellie meets @rex", "@ellie greets @rex")
    key = next(s.head for s in review(repo / "board.yaml").scenes if s.scene == "meet")
    assert key is not None
    render = Render(scene="meet", endpoint=key.endpoint, state="done", seconds=5, cost_usd=Decimal("2.10"))
    (repo / "board.lock").write_text(dumps(Lock(renders={key.key: render})), "utf-8")
    result = review(repo / "board.yaml")
    meet = next(s for s in result.scenes if s.scene == "meet")
    assert meet.rendered and meet.cost_usd == 0 and result.cost_usd == 0
    # at a revision, the lock is read from that revision, not from the disk
    commit_all(repo, "greets, rendered")
    (repo / "board.lock").unlink()
    assert review(repo / "board.yaml", base="HEAD~1", head="HEAD").cost_usd == 0
    assert review(repo / "board.yaml", base="HEAD~1").cost_usd == Decimal("2.10")  # the working tree has no lock


def test_board_new_at_head_is_every_scene_added(repo: Path) -> None:
    (repo / "second").mkdir()
    (repo / "second" / "board.yaml").write_text(BOARD.replace("refs/", "../refs/"), "utf-8")
    result = review(repo / "second" / "board.yaml")
    assert {s.status for s in result.scenes} == {"added"} and not result.base.exists
    assert result.ok


def test_board_deleted_at_head_is_every_scene_removed(repo: Path) -> None:
    (repo / "board.yaml").unlink()
    result = review(repo / "board.yaml")
    assert {s.status for s in result.scenes} == {"removed"} and result.cost_usd == 0


# --- revisions are read from git objects, never from the working tree ----------------------


def test_base_is_read_from_git_objects_not_the_working_tree(repo: Path) -> None:
    """Files gone from the working tree still compile at base, with the bytes committed."""
    (repo / "refs" / "dawn.jpg").unlink()
    (repo / "refs" / "ball-front.png").write_bytes(b"not an image any more")
    edit(repo, "dawn: refs/dawn.jpg", "dawn: refs/dusk.jpg")
    edit(repo, "@ball flies across the clearing.", "A leaf flies across the clearing.")
    edit(repo, "  ball:\n    frontal: refs/ball-front.png\n    references: [refs/ball-side.png]\n", "")
    result = review(repo / "board.yaml")
    assert result.ok
    changed = {s.scene: s for s in result.scenes if s.status == "changed"}
    assert set(changed) == {"meet", "rest", "toss"}
    (asset,) = changed["meet"].assets
    assert (asset.kind, asset.old, asset.new) == ("replaced", "refs/dawn.jpg", "refs/dusk.jpg")


def test_template_files_come_from_the_revision(repo: Path) -> None:
    (repo / "tpl").mkdir()
    (repo / "tpl" / "shot.j2").write_text("Shot {{ loop.index }}: {{ shot.prompt }}", "utf-8")
    edit(repo, "scenes:\n", "templates:\n  numbered: tpl/shot.j2\nscenes:\n")
    edit(repo, "  - id: chase\n    shots:", "  - id: chase\n    shot_template: numbered\n    shots:")
    commit_all(repo, "numbered shots")
    (repo / "tpl" / "shot.j2").write_text("Cut {{ loop.index }}: {{ shot.prompt }}", "utf-8")
    (chase,) = [s for s in review(repo / "board.yaml").scenes if s.status != "unchanged"]
    assert [(p.label, p.chunks[:3]) for p in chase.prompts] == [
        ("shot 1", (("-", "Shot"), ("+", "Cut"), ("=", " 1: @rex runs, styled like @noir."))),
        ("shot 2", (("-", "Shot"), ("+", "Cut"), ("=", " 2: @rex chases @ellie."))),
    ]


def test_a_committed_symlink_out_of_the_repository_is_refused(repo: Path) -> None:
    (repo / "refs" / "dusk.jpg").unlink()
    (repo / "refs" / "dusk.jpg").symlink_to("/etc/passwd")
    edit(repo, "dawn: refs/dawn.jpg", "dawn: refs/dusk.jpg")
    commit_all(repo, "a symlink out")
    result = review(repo / "board.yaml", head="HEAD")
    assert not result.ok and result.cost_usd is None
    assert result.head.result is not None
    messages = [d.message for d in result.head.result.diagnostics]
    assert any("resolves outside the project root" in m for m in messages), messages


def test_symlinks_inside_the_repository_are_followed_in_the_tree(repo: Path) -> None:
    (repo / "looks").symlink_to("refs")  # a symlinked folder
    edit(repo, "dawn: refs/dawn.jpg", "dawn: looks/dawn.jpg")
    commit_all(repo, "through a symlinked folder")
    assert set(statuses(repo, base="HEAD~1", head="HEAD").values()) == {"unchanged"}


def test_an_asset_kept_in_git_lfs_is_read_from_the_clones_lfs_store(repo: Path) -> None:
    """git holds a pointer; the key still hashes the real bytes, read from .git/lfs/objects."""
    import hashlib

    real = (repo / "refs" / "ball-front.png").read_bytes()
    digest = hashlib.sha256(real).hexdigest()
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{digest}\nsize {len(real)}\n"
    (repo / "refs" / "ball-front.png").write_text(pointer, "ascii")
    commit_all(repo, "the ball image moves to Git LFS")
    (repo / "refs" / "ball-front.png").write_bytes(real)  # what git-lfs checks out
    result = review(repo / "board.yaml", base="HEAD~1", head="HEAD")
    assert not result.ok  # this clone has not fetched the object
    assert result.head.result is not None
    (problem,) = {d.message for d in result.head.result.diagnostics}
    assert (
        problem
        == "cannot read 'refs/ball-front.png': kept in Git LFS, and not fetched in this clone (run `git lfs fetch`)"
    )
    store = repo / ".git" / "lfs" / "objects" / digest[:2] / digest[2:4]
    store.mkdir(parents=True)
    (store / digest).write_bytes(real)
    result = review(repo / "board.yaml", base="HEAD~1", head="HEAD")
    assert {s.status for s in result.scenes} == {"unchanged"}  # same bytes, same keys
    assert {s.status for s in review(repo / "board.yaml", base="HEAD").scenes} == {"unchanged"}


# --- a board that does not compile ---------------------------------------------------------


def test_board_broken_at_base_reports_its_diagnostics_and_exits_1(repo: Path) -> None:
    edit(repo, "@ellie meets @rex", "@elie meets @rex")
    commit_all(repo, "a typo")
    edit(repo, "@elie meets @rex", "@ellie meets @rex")  # fixed in the working tree
    code_, out, err = diff("board.yaml")
    assert code_ == 1 and err == ""
    check_golden("broken-base.txt", normalize(out))
    code_, out, _ = diff("board.yaml", "--format", "json")
    payload = json.loads(out)
    assert code_ == 1 and payload["ok"] is False and payload["scenes"] == [] and payload["cost_usd"] is None
    assert payload["base"]["diagnostics"][0]["message"] == "unknown reference '@elie' (did you mean 'ellie'?)"
    code_, out, _ = diff("board.yaml", "--format", "markdown")
    assert code_ == 1 and "does not compile" in out


def test_board_broken_at_head_too(repo: Path) -> None:
    (repo / "board.yaml").write_text("version: 1\nscenes: [", "utf-8")
    code_, out, _ = diff("board.yaml")
    assert code_ == 1
    assert "head working tree: board.yaml does not compile:" in out
    assert "Traceback" not in out


# --- the command line --------------------------------------------------------------------


def test_bad_input_is_a_clear_message_and_exit_1(repo: Path, tmp_path: Path) -> None:
    code_, _, err = diff("board.yaml", "--base", "no-such-branch")
    assert (code_, err.strip()) == (1, f"storyc: unknown revision 'no-such-branch' in {repo}")
    code_, _, err = diff("nowhere.yaml")
    assert code_ == 1 and "no such storyboard at HEAD" in err
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "board.yaml").write_text(BOARD, "utf-8")
    code_, _, err = diff(str(outside / "board.yaml"))
    assert code_ == 1 and "is not in a git repository" in err
    assert CliRunner().invoke(cli, ["diff", "board.yaml", "--format", "yaml"]).exit_code == 2


def test_in_a_real_subprocess(repo: Path) -> None:
    edit(repo, "@ellie meets @rex", "@ellie greets @rex")
    done = subprocess.run(
        [sys.executable, "-m", "storyc", "diff", "board.yaml", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert {s["scene"]: s["status"] for s in payload["scenes"]}["meet"] == "changed"
    assert payload["cost_usd"] == 2.1


# --- golden outputs: every kind of change at once ------------------------------------------


def golden_scenario(repo: Path) -> None:
    """Head = the working tree: one change of each kind, and one changed scene already rendered."""
    edit(repo, "@ellie meets @rex", "@ellie greets @rex")  # edited prompt
    copy_example_file(repo, "elephant/refs/ellie-back.png", "refs/ball-front.png")  # repainted
    edit(  # references, duration and a shot
        repo,
        '      - prompt: "@rex chases @ellie."\n        duration: 3',
        '      - prompt: "@rex chases @ball."\n        duration: 4',
    )
    edit(repo, "id: rest", "id: nap")  # renamed scene
    move(repo, "refs/dawn.jpg", "refs/palette/dawn.jpg")  # renamed asset, same bytes
    edit(repo, "dawn: refs/dawn.jpg", "dawn: refs/palette/dawn.jpg")
    edit(repo, '  - id: finale\n    prompt: "@ellie and @rex wave goodbye."\n    duration: 5\n', "")  # removed
    edit(repo, "styles:\n", "styles:\n  dusk: refs/dusk.jpg\n")
    with (repo / "board.yaml").open("a", encoding="utf-8") as f:  # added, with markdown-looking text
        f.write(
            "  - id: walk_home\n"
            '    prompt: "@ellie walks *home* under @dusk; a_b <c> #1 | e@mail.org"\n'
            "    duration: 6\n"
        )
    toss = next(s.head for s in review(repo / "board.yaml").scenes if s.scene == "toss")
    assert toss is not None
    render = Render(scene="toss", endpoint=toss.endpoint, state="done", seconds=3, cost_usd=Decimal("1.26"))
    (repo / "board.lock").write_text(dumps(Lock(renders={toss.key: render})), "utf-8")


def normalize(text: str) -> str:
    """Commit ids out of goldens (they are deterministic here, but need not be across git versions)."""
    return re.sub(r"\b[0-9a-f]{40}\b", "<commit>", re.sub(r"\(([0-9a-f]{7})\)", "(<commit>)", text))


def check_golden(name: str, actual: str) -> None:
    golden = GOLDEN / name
    if os.environ.get("STORYC_UPDATE_GOLDENS"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual, "utf-8")
    assert actual == golden.read_text("utf-8")


@pytest.mark.parametrize(
    ("fmt", "name"), [("text", "scenario.txt"), ("markdown", "scenario.md"), ("json", "scenario.json")]
)
def test_golden_output(repo: Path, fmt: str, name: str) -> None:
    golden_scenario(repo)
    code_, out, err = diff("board.yaml", "--format", fmt)
    assert (code_, err) == (0, "")
    check_golden(name, normalize(out))


def test_golden_scenario_in_numbers(repo: Path) -> None:
    golden_scenario(repo)
    result = review(repo / "board.yaml")
    assert [(s.scene, s.status) for s in result.scenes] == [
        ("meet", "changed"),
        ("toss", "changed"),
        ("chase", "changed"),
        ("nap", "renamed"),
        ("look", "unchanged"),
        ("walk_home", "added"),
        ("finale", "removed"),
    ]
    # meet 5 s + chase 7 s + walk_home 6 s at $0.42; toss is done in the lock
    assert result.cost_usd == Decimal("7.56")
    meet = result.scenes[0]
    assert meet.fields == ("prompt",)  # the moved dawn.jpg is the same bytes: not a field change
    assert [(a.kind, a.old, a.new) for a in meet.assets] == [("moved", "refs/dawn.jpg", "refs/palette/dawn.jpg")]


# --- pieces ------------------------------------------------------------------------------


def test_word_diff_joins_neighbouring_changes() -> None:
    assert word_diff("a b c d", "a x y d") == (("=", "a "), ("-", "b c"), ("+", "x y"), ("=", " d"))
    assert word_diff("same", "same") == (("=", "same"),)
    assert word_diff("", "new words") == (("+", "new words"),)


def test_markdown_never_mentions_anyone_and_escapes_what_markdown_reads() -> None:
    assert md("@ellie meets @rex_2.") == "`@ellie` meets `@rex_2`."
    assert md("*a* _b_ [c](d) <e> #f |g| ~h~") == r"\*a\* \_b\_ \[c\](d) \<e\> \#f \|g\| \~h\~"
    assert md("- list\n1. item") == "\\- list\n1\\. item"
    assert md("e@mail.org") == "e@mail.org"  # not a mention
    assert code("a`b") == "``a`b``"


def test_gitfs_serves_a_commit_like_the_disk(repo: Path) -> None:
    from storyc.review.gitfs import GitRepo

    (repo / "refs" / "ellie-front.png").write_bytes(b"changed in the working tree")
    with GitRepo.around(repo) as git_repo:
        tree = git_repo.tree(git_repo.commit("HEAD"))
        board = repo / "board.yaml"
        assert tree.read_bytes(board) == BOARD.encode()
        front = repo / "refs" / "ellie-front.png"
        assert (
            tree.read_bytes(front)
            == (Path(__file__).parent.parent / "examples/elephant/refs/ellie-front.png").read_bytes()
        )
        assert tree.stat(front).size == 1711 and tree.stat(front).is_file
        assert not tree.stat(repo / "refs").is_file
        assert tree.head(front, 8) == b"\x89PNG\r\n\x1a\n"
        assert tree.sha256(front).startswith("sha256:3bfa9ce5")
        with pytest.raises(FileNotFoundError):
            tree.stat(repo / "missing.png")
        with pytest.raises(IsADirectoryError):
            tree.read_bytes(repo / "refs")
        assert tree.project_root(repo / "refs") == repo
        assert tree.resolve(repo / "refs" / ".." / "board.yaml") == board


def test_diff_is_in_the_help() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert "diff" in result.output


def test_the_core_imports_without_click_or_heavy_libraries() -> None:
    code_ = (
        "import sys, storyc.review.changes, storyc.review.formats, storyc.review.gitfs\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'click', 'ruamel', 'jinja2', 'jsonschema', 'PIL'}))"
    )
    done = subprocess.run([sys.executable, "-c", code_], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
