"""`storyc diff` on a board with stills: a changed still is named, every step it re-renders through the graph
is listed with why, and the cascade's cost (stills + scenes) is in the totals; a changed pick re-renders only
what uses the still.  examples/keyframes in a real git repository, through the real CLI.

The graph there: ellie-sheet (1 image) -> meet-open (3 images, pick 2; @ellie's frontal is ellie-sheet)
-> meet (starts on meet-open's pick) -> play (starts on meet's last frame); in profile draft a still
costs $0.06 an image and a scene $0.42.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import EXAMPLES, commit_all, git_init
from test_diff import edit

from storyc.cli import cli


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = git_init(tmp_path / "film")
    shutil.copytree(
        EXAMPLES / "keyframes", root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("renders", "*.html")
    )
    commit_all(root, "base")
    monkeypatch.chdir(root)
    return root


def diff(*args: str) -> str:
    result = CliRunner().invoke(cli, ["diff", "board.yaml", "--profile", "draft", *args], catch_exceptions=False)
    assert (result.exit_code, result.stderr) == (0, "")
    return result.stdout


def lines_of(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


def test_a_changed_still_names_every_step_it_re_renders_and_what_the_cascade_costs(repo: Path) -> None:
    edit(repo, "first light", "at dusk")
    assert lines_of(diff())[1:] == [
        "  unchanged  ellie-sheet  still",
        "  changed    meet-open    still  3 x 0.5K  $0.18, estimated",
        "      prompt: @ellie at the edge of a sunlit savanna clearing, [-first light,-]{+at dusk,+} in the palette"
        " of @dawn",
        "      re-renders: scene meet, scene play",
        "  changed    meet           5 s  $0.42",
        "      re-rendered: uses still meet-open, changed",  # not an empty `fields:` line
        "  changed    play           5 s  $0.42",
        "      re-rendered: uses last frame of meet, re-rendered",
        "2 changed; stills: 1 changed, 1 unchanged; to render: $1.02 for 1 still (3 images, $0.18)"
        " and 2 scenes (10 s, $0.84)",
    ]
    data = json.loads(diff("--format", "json"))
    assert (data["cost_usd"], data["stills_usd"], data["scenes_usd"]) == (1.02, 0.18, 0.84)
    still = {s["still"]: s for s in data["stills"]}["meet-open"]
    assert (still["status"], still["cost_usd"], still["re_renders"]) == ("changed", 0.18, ["scene meet", "scene play"])
    assert ["-", "first light,"] in still["prompts"][0]["diff"] and ["+", "at dusk,"] in still["prompts"][0]["diff"]
    scenes = {s["scene"]: s for s in data["scenes"]}
    assert scenes["meet"]["fields"] == [] and scenes["meet"]["upstream"] == ["uses still meet-open, changed"]
    assert scenes["play"]["upstream"] == ["uses last frame of meet, re-rendered"]
    markdown = diff("--format", "markdown")
    assert "**To render: $1.02 for 1 still (3 images, $0.18) and 2 scenes (10 s, $0.84)**" in markdown
    assert "| `meet-open` | changed | 3 x 0.5K · $0.18, estimated | scene meet, scene play |" in markdown
    assert "| `meet` | changed | 5 s | $0.42 | uses still meet-open, changed |" in markdown
    assert "~~first light,~~**at dusk,**" in markdown
    assert "- fields:" not in markdown


def test_a_change_upstream_of_a_still_flows_through_it_transitively(repo: Path) -> None:
    edit(repo, "wearing a red scarf, standing", "wearing a blue scarf, standing")
    out = lines_of(diff())
    assert "  changed    ellie-sheet  still  1 x 0.5K  $0.06, estimated" in out
    assert "      re-renders: still meet-open, scene meet, scene play" in out
    assert "      re-made: uses still ellie-sheet, changed" in out  # meet-open: made again from the new sheet
    # meet uses ellie-sheet (@ellie's frontal) and meet-open: both changed
    assert "      re-rendered: uses still ellie-sheet, changed" in out
    assert "      re-rendered: uses still meet-open, changed" in out
    assert out[-1].endswith("to render: $1.08 for 2 stills (4 images, $0.24) and 2 scenes (10 s, $0.84)")


def test_a_changed_pick_re_renders_only_what_uses_the_still(repo: Path) -> None:
    edit(repo, "pick: 2 ", "pick: 3 ")
    out = lines_of(diff())
    assert out[1:4] == [
        "  unchanged  ellie-sheet  still",
        "  picked     meet-open    still  another candidate picked: not made again",
        "      pick: 2 -> 3",
    ]
    assert "      re-renders: scene meet, scene play" in out
    assert "      re-rendered: uses still meet-open, candidate 3 instead of 2" in out
    assert out[-1] == "2 changed; stills: 1 picked, 1 unchanged; to render: $0.84 for 2 scenes (10 s)"
    data = json.loads(diff("--format", "json"))
    still = {s["still"]: s for s in data["stills"]}["meet-open"]
    assert still["key"] == still["base_key"] and still["cost_usd"] == 0  # pick is not in the still's key
    assert (data["stills_usd"], data["scenes_usd"], data["cost_usd"]) == (0, 0.84, 0.84)
    assert {s["scene"]: s["fields"] for s in data["scenes"]} == {"meet": [], "play": []}


def test_an_unchanged_board_with_stills_costs_nothing(repo: Path) -> None:
    out = lines_of(diff())
    assert out[-1] == "2 unchanged; stills: 2 unchanged; nothing new to render"


def test_a_frame_taken_from_another_step_is_named_as_people_say_it(repo: Path) -> None:
    edit(repo, "start_frame: {last_frame_of: meet}", "start_frame: {still: meet-open}")
    out = lines_of(diff())
    at = out.index("  changed    play           5 s  $0.42")
    assert out[at + 1 : at + 3] == [
        "      fields: start_image_url",
        "      replaced last frame of meet -> still meet-open (start frame)",
    ]
