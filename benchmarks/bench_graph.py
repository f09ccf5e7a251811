"""Graph benchmark: a board of stills and continuations rendered on the fake fal, and the plan of a large graph.

1. A chain: 12 stills (each the end frame of its scene) and 12 scenes, each
   starting from the last frame of the one before (the first from a still),
   on the fake fal (tests/fakefal, real fal_client) with 2 s jobs and room for
   every job at once. The critical path is the first still, then the 12 scenes
   one after the other: 13 jobs of 2 s, 26 s. Wall time is compared with it
   (goal: at most 1.25x); what is over it is polling, frame extraction,
   uploads and storyc's own work between steps.
2. `storyc plan` of a 1,000-step graph (500 stills, 500 scenes each starting
   from its still, every tenth instead continuing the scene before and
   ending on its still) against the
   plan of a flat 1,000-scene board, whole processes in turn, pair by pair
   (goal: at most 1.2x).

    python benchmarks/bench_graph.py            # both
    python benchmarks/bench_graph.py --plan     # the plan comparison only
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakefal import FakeFal  # noqa: E402 (after the path above)
from helpers import FAL_LAUNCH  # noqa: E402

STORYC = str(Path(sysconfig.get_path("scripts")) / "storyc")
JOB_SECONDS = 2.0
CHAIN = 12


def chain_board(n: int = CHAIN) -> str:
    lines = ["version: 1", "title: chain", "target:", "  endpoint: fal-ai/kling-video/o3/4k/reference-to-video"]
    lines += ["  aspect_ratio: '16:9'", "stills:"]
    for i in range(n):
        lines += [f"  k{i:02d}:", f'    prompt: "keyframe {i}: a red fox at the edge of a birch wood"']
    lines.append("scenes:")
    for i in range(n):
        start = "{still: k00}" if i == 0 else f"{{last_frame_of: s{i - 1:02d}}}"
        lines += [
            f"  - id: s{i:02d}",
            f'    prompt: "The fox walks on, beat {i}."',
            "    duration: 3",
            f"    start_frame: {start}",
            f"    end_frame: {{still: k{i:02d}}}",
        ]
    return "\n".join(lines) + "\n"


def graph_board(n_steps: int = 1000) -> str:
    half = n_steps // 2
    lines = ["version: 1", "title: graph", "target:", "  endpoint: fal-ai/kling-video/o3/4k/reference-to-video"]
    lines += ["styles:", "  noir: https://example.org/noir.jpg", "stills:"]
    for i in range(half):
        lines += [f"  k{i:04d}:", f'    prompt: "keyframe {i} of the city at night"']
    lines.append("scenes:")
    for i in range(half):
        continues = i % 10 == 9  # every tenth scene continues the one before, and ends on its still
        start = f"{{last_frame_of: s{i - 1:04d}}}" if continues else f"{{still: k{i:04d}}}"
        lines += [
            f"  - id: s{i:04d}",
            f'    prompt: "Shot {i} of the city at night, styled like @noir."',
            "    duration: 3",
            f"    start_frame: {start}",
        ]
        if continues:
            lines.append(f"    end_frame: {{still: k{i:04d}}}")
    return "\n".join(lines) + "\n"


def flat_board(n: int = 1000) -> str:
    lines = ["version: 1", "title: flat", "target:", "  endpoint: fal-ai/kling-video/o3/4k/reference-to-video"]
    lines += ["styles:", "  noir: https://example.org/noir.jpg", "scenes:"]
    for i in range(n):
        lines += [f"  - id: s{i:04d}", f'    prompt: "Shot {i} of the city at night, styled like @noir."']
        lines.append("    duration: 3")
    return "\n".join(lines) + "\n"


def storyc(cwd: Path, env: dict[str, str], *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    """storyc as a whole process: through the fake fal's launcher when one is running, else the console script."""
    command = [sys.executable, "-c", FAL_LAUNCH] if "FAKE_FAL_URL" in env else [STORYC]
    start = time.perf_counter()
    done = subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, done


def chain(tmp: Path) -> None:
    project = tmp / "chain"
    project.mkdir()
    (project / ".git").mkdir()
    (project / "board.yaml").write_text(chain_board())
    with FakeFal(job_seconds=JOB_SECONDS, concurrency=None) as fake:
        env = {**os.environ, "FAL_KEY": fake.key, "FAKE_FAL_URL": fake.url, "STORYC_STORE": "none"}
        wall, done = storyc(project, env, "render", "board.yaml", "--yes", "--concurrency", "16", "--json")
        jobs = fake.accepted_count()
    if done.returncode != 0:
        raise SystemExit(f"render failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    critical = (CHAIN + 1) * JOB_SECONDS
    print(f"chain of {CHAIN} scenes + {CHAIN} stills, {JOB_SECONDS:.0f} s jobs: {jobs} jobs accepted")
    print(f"  wall {wall:.1f} s against a critical path of {critical:.0f} s: {wall / critical:.2f}x (goal <= 1.25x)")


def plan_pair(tmp: Path, runs: int = 5) -> None:
    walls: dict[str, list[float]] = {"graph": [], "flat": []}
    folders = {}
    for name, text in (("graph", graph_board()), ("flat", flat_board())):
        folder = tmp / name
        folder.mkdir()
        (folder / ".git").mkdir()
        (folder / "board.yaml").write_text(text)
        folders[name] = folder
    env = {k: v for k, v in os.environ.items() if k != "FAKE_FAL_URL"} | {"STORYC_STORE": "none"}
    for name, folder in folders.items():  # warm: the compile cache, the file cache
        _, done = storyc(folder, env, "plan", "board.yaml", "--json")
        if done.returncode != 0:
            raise SystemExit(f"plan of the {name} board failed:\n{done.stderr[-3000:]}")
        steps = len(json.loads(done.stdout).get("scenes", [])) + len(json.loads(done.stdout).get("stills", []))
        print(f"{name}: {steps} steps in the plan")
    for _ in range(runs):
        for name, folder in folders.items():
            wall, _ = storyc(folder, env, "plan", "board.yaml", "--json", "--no-store")
            walls[name].append(wall)
    ratios = [g / f for g, f in zip(walls["graph"], walls["flat"], strict=True)]
    print(f"plan, compiled board cached, whole processes, {runs} pairs (median, min-max):")
    for name, values in walls.items():
        print(f"  {name:<6} {statistics.median(values):.3f} s ({min(values):.3f}-{max(values):.3f})")
    print(f"  ratio  {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) (goal <= 1.2x)")


def main(argv: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if "--plan" not in argv:
            chain(Path(tmp))
        plan_pair(Path(tmp))


if __name__ == "__main__":
    main(sys.argv[1:])
