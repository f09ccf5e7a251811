"""`storyc render --backend animatic` and `storyc cut`: real MP4s, probed with imageio-ffmpeg's ffmpeg."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from storyc.cli import cli
from storyc.media.video import probe

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "elephant"


@pytest.fixture
def elephant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The elephant example (a video element, start and end frames, 16:9 and 9:16 scenes), copied."""
    project = tmp_path / "elephant"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("renders", ".storyc"))
    (project / ".git").mkdir()
    monkeypatch.chdir(project)
    return project / "board.yaml"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def render_json(*extra: str) -> dict[str, dict[str, object]]:
    code, out, err = run("render", "board.yaml", "--backend", "animatic", "--json", *extra)
    assert code == 0, err
    return {s["scene"]: s for s in json.loads(out)["scenes"]}


def test_each_scene_lasts_its_seconds_at_its_aspect_ratio(elephant: Path) -> None:
    scenes = render_json()
    assert {s: v["state"] for s, v in scenes.items()} == {"meet": "done", "play": "done"}
    meet = probe(elephant.parent / str(scenes["meet"]["path"]))
    play = probe(elephant.parent / str(scenes["play"]["path"]))
    assert abs(meet.seconds - 8) <= 1 / 24 and abs(play.seconds - 10) <= 1 / 24
    assert (meet.width, meet.height) == (1280, 720)  # 16:9
    assert (play.width, play.height) == (720, 1280)  # 9:16 override
    assert str(scenes["meet"]["path"]).startswith("renders/animatic/meet-")
    assert not (elephant.parent / "board.lock").exists()  # animatics never enter the lock


def test_a_changed_prompt_redraws_only_that_scene(elephant: Path) -> None:
    first = render_json()
    elephant.write_text(elephant.read_text("utf-8").replace("camera: slow push-in", "camera: slow pull-out"), "utf-8")
    second = render_json()
    assert {s: v["state"] for s, v in second.items()} == {"meet": "done", "play": "cached"}
    assert second["meet"]["path"] != first["meet"]["path"]
    assert second["play"]["path"] == first["play"]["path"]


def test_4k_size(elephant: Path) -> None:
    scenes = render_json("--scene", "meet", "--size", "4k")
    info = probe(elephant.parent / str(scenes["meet"]["path"]))
    assert (info.width, info.height) == (3840, 2160)


def test_cut_joins_in_board_order_and_writes_an_otio_timeline(elephant: Path) -> None:
    import opentimelineio as otio

    code, _, err = run("cut", "board.yaml", "--backend", "animatic")
    assert code == 1
    assert "2 of 2 scenes have no animatic render yet: meet, play; run `storyc render --backend animatic` first" in err
    scenes = render_json()
    timeline = ("--otio-path", "edit/film.otio")
    code, out, err = run("cut", "board.yaml", "--backend", "animatic", "-o", "film.mp4", *timeline)
    assert code == 0, err
    assert "film.mp4: 2 scenes, 18.00 s" in out
    film = probe(elephant.parent / "film.mp4")
    assert abs(film.seconds - 18) <= 2 / 24
    timeline = otio.adapters.read_from_file(str(elephant.parent / "edit" / "film.otio"))
    clips = list(timeline.find_clips())
    assert [c.name for c in clips] == ["meet", "play"]
    assert [c.duration().to_seconds() for c in clips] == [8.0, 10.0]
    # OTIO's convention (url_utils.url_from_filepath): a relative target_url, posix, no scheme, taken
    # from the .otio file's folder, so the folder can be moved or sent as a whole
    assert clips[0].media_reference.target_url == "../" + str(scenes["meet"]["path"])
    assert clips[0].metadata["storyc"]["prompt"].startswith("Scene: a sunlit savanna clearing at dawn")
    assert clips[1].metadata["storyc"]["references"]["@Element1"] == "@ellie"


def test_cut_of_fal_renders_refuses_when_none_exist(elephant: Path) -> None:
    code, _, err = run("cut", "board.yaml")
    assert code == 1
    assert "have no fal render yet: meet, play; run `storyc render` (or `storyc pull`) first" in err


def test_cut_after_only_animatics_were_rendered_names_the_animatic_backend(elephant: Path) -> None:
    render_json()
    code, _, err = run("cut", "board.yaml")
    assert code == 1
    assert "have no fal render yet: meet, play; run `storyc render` (or `storyc pull`) first" in err
    assert "first, or cut the animatics: `storyc cut --backend animatic`" in err
    assert not (elephant.parent / "renders" / "cut.mp4").exists()


def test_ctrl_c_while_drawing_exits_130_without_a_traceback_or_a_partial_file(elephant: Path) -> None:
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "storyc", "render", "board.yaml", "--backend", "animatic", "--size", "4k"],
        cwd=elephant.parent,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "drawing" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "unexpected error" not in err
    leftovers = [p.name for p in (elephant.parent / ".storyc" / "animatic").glob("*") if not p.name.endswith(".mp4")]
    assert leftovers == []  # temporary files are removed
    for video in (elephant.parent / ".storyc" / "animatic").glob("*.mp4"):
        assert probe(video).seconds > 0  # whatever was finished is whole


def test_an_unwritable_renders_folder_fails_the_scene_with_its_path_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner
    from helpers import BASIC_BOARD, BASIC_IMAGES, make_project

    from storyc.cli import cli

    board = make_project(tmp_path / "film", BASIC_BOARD, BASIC_IMAGES)
    (board.parent / "renders").mkdir()
    (board.parent / "renders" / "animatic").write_text("a file where the folder should be")
    monkeypatch.chdir(board.parent)
    result = CliRunner().invoke(cli, ["render", "--backend", "animatic", "--scene", "meet"], catch_exceptions=False)
    assert result.exit_code == 1
    assert "error: scene 'meet': could not write the animatic (" in result.stderr
    assert "renders/animatic" in result.stderr and "Traceback" not in result.stderr


def test_a_renamed_scene_is_redrawn_with_its_new_id_and_an_unchanged_board_is_not(
    elephant: Path, tmp_path: Path
) -> None:
    from PIL import Image, ImageChops, ImageStat

    from storyc.compile.pipeline import compile_file
    from storyc.media.animatic import draw_card
    from storyc.media.video import first_frame
    from storyc.render.backends.animatic import AnimaticBackend

    before = render_json()
    assert {s: v["state"] for s, v in render_json().items()} == {"meet": "cached", "play": "cached"}
    elephant.write_text(elephant.read_text("utf-8").replace("- id: play", "- id: romp"), "utf-8")
    after = render_json()
    assert {s: v["state"] for s, v in after.items()} == {"meet": "cached", "romp": "done"}
    assert after["meet"]["path"] == before["meet"]["path"]

    compiled = compile_file(elephant, "board.yaml", use_cache=False).board
    assert compiled is not None
    backend = AnimaticBackend(elephant.parent, compiled.title)
    romp = backend.scene(next(j for j in compiled.jobs if j.scene == "romp"))
    first_frame(elephant.parent / str(after["romp"]["path"]), tmp_path / "romp.png")
    with Image.open(tmp_path / "romp.png") as image:
        shown = image.convert("RGB")

    def distance(card: Image.Image) -> float:
        return sum(ImageStat.Stat(ImageChops.difference(shown, card)).mean)

    new_card = draw_card(romp, romp.shots[0])
    old_card = draw_card(dataclasses.replace(romp, scene_id="play"), romp.shots[0])
    assert distance(new_card) < distance(old_card)


def test_otio_without_a_path_is_written_beside_the_cut_and_travels_with_the_folder(
    elephant: Path, tmp_path: Path
) -> None:
    import opentimelineio as otio
    from opentimelineio.url_utils import filepath_from_url

    render_json()
    code, out, err = run("cut", "board.yaml", "--backend", "animatic", "--otio", "--json")
    assert code == 0, err
    written = elephant.parent / "renders" / "animatic" / "cut.otio"
    assert json.loads(out)["otio"] == str(written) and written.is_file()
    code, out, err = run("cut", "board.yaml", "--backend", "animatic", "-o", "film.mp4", "--otio")
    assert code == 0, err
    assert (elephant.parent / "film.otio").is_file()
    code, _, err = run("cut", "board.yaml", "--backend", "animatic", "-o", "film.otio", "--otio")
    assert code == 1 and "the timeline and the cut would be the same file" in err
    assert (elephant.parent / "film.otio").read_text("utf-8").startswith("{")  # the timeline written before

    moved = shutil.move(elephant.parent, tmp_path / "on-the-editors-machine")
    timeline = otio.adapters.read_from_file(str(Path(moved) / "renders" / "animatic" / "cut.otio"))
    for clip in timeline.find_clips():
        url = clip.media_reference.target_url
        assert not url.startswith(("/", "file:")), url
        media = Path(moved) / "renders" / "animatic" / filepath_from_url(url)
        assert probe(media).seconds == clip.duration().to_seconds()
