"""Animatic benchmark: render a 10-scene, 30-shot board (3 shots x 3 s per scene) at preview size.

Each shot has a realistic prompt (about 250 to 500 characters) and 2 or 3
references with small generated thumbnails: PNG and JPEG images, one video
reference (its first frame is extracted once, then cached) and one remote URL
(a placeholder chip). Prints wall time per scene and in total, and output sizes.

    python benchmarks/bench_animatic.py                 # 16:9, sequential
    python benchmarks/bench_animatic.py --aspect 9:16
    python benchmarks/bench_animatic.py --jobs 2        # two scenes at a time
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

from storyc.media.animatic import AnimaticScene, CardRef, CardShot, render_scene
from storyc.media.video import ffmpeg_exe, probe

N_SCENES, SHOTS, SECONDS = 10, 3, 3
ACTIONS = [
    "enters from the left of frame, trunk raised, and pauses to look around the clearing",
    "rolls slowly across the dry grass, kicking up a thin trail of golden dust",
    "turns toward the camera with a curious expression, ears fanning gently in the breeze",
    "walks forward until the two of them meet in the centre of the frame",
]
CAMERA = [
    "Slow push-in at eye level, shallow depth of field, 35 mm lens, gentle handheld sway.",
    "Static wide shot from a low angle; the horizon sits on the lower third.",
    "Tracking shot moving right to left at walking pace, subject kept centre frame.",
]
LOOK = (
    "Warm dawn light, long soft shadows, fine dust particles catching the sun, "
    "natural colour grade, no text, no watermark."
)


def make_refs(root: Path) -> dict[str, CardRef]:
    from PIL import Image

    Image.new("RGB", (400, 500), (200, 80, 60)).save(root / "ellie.png")
    Image.new("RGB", (480, 320), (70, 140, 90)).save(root / "rex.jpg")
    Image.new("RGB", (640, 360), (60, 90, 200)).save(root / "dawn.png")
    subprocess.run(
        [
            ffmpeg_exe(),
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=480x360:rate=24:duration=1",
            "-pix_fmt",
            "yuv420p",
            str(root / "ball.mp4"),
        ],
        check=True,
    )
    return {
        "ellie": CardRef("ellie", "character", root / "ellie.png"),
        "rex": CardRef("rex", "character", root / "rex.jpg"),
        "ball": CardRef("ball", "character", root / "ball.mp4"),
        "dawn": CardRef("dawn", "style", root / "dawn.png"),
        "noir": CardRef("noir", "style", None),  # a remote URL: no local thumbnail
    }


def make_shot(scene: int, number: int, refs: dict[str, CardRef]) -> CardShot:
    names = list(refs)
    a, b = names[(scene + number) % 3], names[(scene + number + 1) % 3]
    style = "dawn" if scene % 2 else "noir"
    segments: list[tuple[str, str | None]] = [
        ("", a),
        (f" {ACTIONS[(scene + number) % 4]}, while ", None),
        ("", b),
        (f" {ACTIONS[(scene + number + 1) % 4]}. {CAMERA[number % 3]} Styled like ", None),
        ("", style),
        (f". {LOOK * (1 + scene % 2)}", None),
    ]
    used = tuple(refs[n] for n in dict.fromkeys([a, b, style]))
    return CardShot(number=number, seconds=SECONDS, segments=tuple(segments), refs=used)


def make_scenes(refs: dict[str, CardRef], aspect: Literal["16:9", "9:16", "1:1"]) -> list[AnimaticScene]:
    return [
        AnimaticScene(
            scene_id=f"scene-{i:02d}",
            title="The elephant and the ball",
            aspect_ratio=aspect,
            shots=tuple(make_shot(i, n, refs) for n in range(1, SHOTS + 1)),
        )
        for i in range(N_SCENES)
    ]


def prompt_text(shot: CardShot) -> str:
    return "".join(text if ref is None else f"@{ref}" for text, ref in shot.segments)


def render_one(scene: AnimaticScene, out_dir: Path) -> tuple[str, float, Path]:
    out = out_dir / f"{scene.scene_id}.mp4"
    t0 = time.perf_counter()
    render_scene(scene, out, size="preview", fps=24)
    return scene.scene_id, time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--aspect", default="16:9", choices=["16:9", "9:16", "1:1"])
    parser.add_argument("--jobs", type=int, default=1, help="scenes rendered at the same time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-animatic-") as tmp:
        root = Path(tmp)
        scenes = make_scenes(make_refs(root), args.aspect)
        prompt_chars = [len(prompt_text(s)) for sc in scenes for s in sc.shots]
        print(
            f"{len(scenes)} scenes x {SHOTS} shots x {SECONDS}s, {args.aspect} preview, jobs={args.jobs}, "
            f"{os.cpu_count()} CPUs, prompts {min(prompt_chars)}-{max(prompt_chars)} chars"
        )
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(lambda sc: render_one(sc, root), scenes))
        total = time.perf_counter() - t0
        size_total = 0
        for scene_id, seconds, out in results:
            info = probe(out)
            size_total += out.stat().st_size
            print(
                f"  {scene_id}: {seconds:6.3f} s  {out.stat().st_size / 1024:7.1f} KiB  "
                f"{info.width}x{info.height} {info.seconds:.3f} s {info.frames} frames"
            )
        video_seconds = N_SCENES * SHOTS * SECONDS
        print(
            f"total wall time {total:.2f} s for {video_seconds} s of video "
            f"({total / len(scenes):.3f} s per scene), {size_total / 1024:.0f} KiB written"
        )


def cli_board(root: Path) -> Path:
    """The same shape of board as YAML, for timing `storyc render --backend animatic` end to end."""
    from PIL import Image

    (root / ".git").mkdir()
    refs = root / "refs"
    refs.mkdir()
    for i, colour in enumerate(["grey", "tan", "teal", "gold"]):
        Image.new("RGB", (640, 480), colour).save(refs / f"r{i}.png")
    lines = ["version: 1", "title: bench", "target:", "  endpoint: fal-ai/kling-video/o3/4k/reference-to-video"]
    lines += ["characters:"] + [
        f"  c{i}:\n    frontal: refs/r{i}.png\n    references: [refs/r{i}.png]" for i in range(3)
    ]
    lines += ["styles:", "  dawn: refs/r3.png", "scenes:"]
    for n in range(N_SCENES):
        lines += [f"  - id: scene{n:02d}", "    shots:"]
        for k in range(SHOTS):
            action = ACTIONS[(n + k) % len(ACTIONS)]
            lines.append(f'      - prompt: "@c{k % 3} {action}, in the light of @dawn."\n        duration: {SECONDS}')
    board = root / "board.yaml"
    board.write_text("\n".join(lines) + "\n", "utf-8")
    return board


def time_cli() -> None:
    import sys
    import sysconfig

    storyc = str(Path(sysconfig.get_path("scripts")) / "storyc")
    with tempfile.TemporaryDirectory(prefix="bench-animatic-cli-") as tmp:
        board = cli_board(Path(tmp))
        t0 = time.perf_counter()
        done = subprocess.run([storyc, "render", str(board), "--backend", "animatic"], capture_output=True, text=True)
        total = time.perf_counter() - t0
        if done.returncode != 0:
            sys.exit(done.stderr)
        t1 = time.perf_counter()
        subprocess.run([storyc, "render", str(board), "--backend", "animatic"], capture_output=True, check=True)
        again = time.perf_counter() - t1
    what = "storyc render --backend animatic (CLI, default concurrency 4, compile included)"
    print(f"{what}: {total:.2f} s; cached re-run {again:.2f} s")


if __name__ == "__main__":
    main()
    time_cli()
