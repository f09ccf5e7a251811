"""Compile benchmark: whole processes against the floor, a bare ruamel.yaml load of the same file.

Generates boards of N scenes (50 characters, 20 styles, 3 shots each) in two
kinds: `plain` (prompts without templates) and `templated` (every shot's prompt
inserts `{{ vars.place }}`, as real boards do, so every scene has distinct
template text), and times, as whole processes in turn (start-up and imports
included), `storyc compile BOARD --json --no-cache`, `storyc check BOARD
--no-cache`, a cached `storyc check BOARD`, and
`python -c "from ruamel.yaml import YAML; YAML().load(open(BOARD))"`. Each
storyc figure is divided by the ruamel run next to it, pair by pair, so a
machine whose speed drifts still gives a fair ratio; CPU time (user +
system) is steadier than wall time on a busy machine.

    python benchmarks/bench_compile.py                  # 100, 1,000 and 10,000 scenes, 5 pairs each
    python benchmarks/bench_compile.py 1000 --runs 9    # one size
    python benchmarks/bench_compile.py --whole 9        # the 1,000-scene board with local PNGs, in and out of process
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

STORYC = str(Path(sysconfig.get_path("scripts")) / "storyc")
N_CHARACTERS, N_STYLES, SHOTS = 50, 20, 3


def make_assets(root: Path) -> None:
    from PIL import Image

    refs = root / "refs"
    refs.mkdir(parents=True)
    for i in range(10):
        Image.new("RGB", (400, 320), (i * 20, 100, 200 - i * 10)).save(refs / f"c{i}.png")


def board_text(n_scenes: int, *, all_local: bool = False) -> str:
    out = ["version: 1", "title: benchmark", "target:", "  endpoint: fal-ai/kling-video/o3/4k/reference-to-video"]
    out.append("characters:")
    for i in range(N_CHARACTERS):
        # the first 10 characters use local files, the rest URLs (all_local: each its own two PNGs)
        front = f"refs/c{i}.png" if i < 10 else f"https://example.org/c{i}.png"
        side = f"refs/c{(i + 1) % 10}.png" if i < 10 else f"https://example.org/c{i}-side.png"
        if all_local:
            front, side = f"refs/c{i}.png", f"refs/c{i}-side.png"
        out += [
            f"  c{i}:",
            f"    description: character number {i}",
            f"    frontal: {front}",
            f"    references: [{side}]",
        ]
    out.append("styles:")
    out += [f"  s{i}: https://example.org/s{i}.jpg" for i in range(N_STYLES)]
    out.append("scenes:")
    for i in range(n_scenes):
        out += [f"  - id: scene-{i}", "    shots:"]
        # each scene: two characters and one style (within the 7-reference limit)
        c1, c2, s = i % N_CHARACTERS, (i + 7) % N_CHARACTERS, i % N_STYLES
        for j in range(SHOTS):
            out += [
                f'      - prompt: "@c{c1} walks toward @c{c2} across the hall, in the light of @s{s}; beat {j}."',
                "        duration: 3",
            ]
    return "\n".join(out) + "\n"


def run_timed(args: list[str], cwd: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(peak, before)


def whole_board(root: Path, n_scenes: int = 1000, *, templated: bool = True) -> Path:
    """The 1,000-scene board of the speed target: every character a local PNG pair."""
    from PIL import Image

    (root / ".git").mkdir()
    refs = root / "refs"
    refs.mkdir()
    for i in range(N_CHARACTERS):
        Image.new("RGB", (400, 320), (i * 5, 100, 200 - i * 3)).save(refs / f"c{i}.png")
        Image.new("RGB", (400, 320), (i * 5, 120, 190 - i * 3)).save(refs / f"c{i}-side.png")
    board = root / "board.yaml"
    text = templated_text(n_scenes, all_local=True) if templated else board_text(n_scenes, all_local=True)
    board.write_text(text)
    return board


def run_cpu(args: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one child process: CPU time barely moves on a busy machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = run_timed(args, cwd)[0]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


IN_PROCESS = """
import json, sys, time
from pathlib import Path
from ruamel.yaml import YAML
from storyc.compile.pipeline import compile_file
path = Path("board.yaml")
from storyc.report import Output
t, c = time.perf_counter(), time.process_time()
YAML().load(open(path))
load, load_cpu = time.perf_counter() - t, time.process_time() - c
t, c = time.perf_counter(), time.process_time()
result = compile_file(path, "board.yaml", use_cache=False)
assert result.board is not None, result.diagnostics
sys.stdout = open("/dev/null", "w")
Output("json").data(result.board.to_json([j.scene for j in result.board.jobs]))
sys.stdout = sys.__stdout__
print(time.perf_counter() - t, load, time.process_time() - c, load_cpu)
"""


def whole(runs: int) -> None:
    """Whole-process and in-process ratios on the 1,000-scene board."""
    floor_args = [sys.executable, "-c", "from ruamel.yaml import YAML; YAML().load(open('board.yaml'))"]
    compile_args = [STORYC, "compile", "board.yaml", "--json", "--no-cache"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        whole_board(root)
        run_timed(compile_args, root)  # warm the file cache
        run_timed(floor_args, root)
        pairs = [(run_cpu(compile_args, root), run_cpu(floor_args, root)) for _ in range(runs)]
        inside = []
        for _ in range(runs):
            out = subprocess.check_output([sys.executable, "-c", IN_PROCESS], cwd=root, text=True).split()
            inside.append([float(x) for x in out])
    print(f"python {sys.version.split()[0]} on {os.cpu_count()} cores, {runs} runs each, in turn")

    def row(name: str, values: list[float], unit: str = "s") -> str:
        low, mid, high = min(values), statistics.median(values), max(values)
        return f"{name:<40} min {low:6.3f}{unit}  median {mid:6.3f}{unit}  max {high:6.3f}{unit}"

    for i, how in enumerate(("wall", "cpu")):
        a = [p[0][i] for p in pairs]
        b = [p[1][i] for p in pairs]
        print(row(f"storyc compile --json, process {how}", a))
        print(row(f"ruamel.yaml load, process {how}", b))
        print(row(f"ratio, whole process {how}", [x / y for x, y in zip(a, b, strict=True)], "x"))
    for i, how in enumerate(("wall", "cpu")):
        a = [r[2 * i] for r in inside]
        b = [r[2 * i + 1] for r in inside]
        print(row(f"storyc compile + JSON, in-process {how}", a))
        print(row(f"ruamel.yaml load, in-process {how}", b))
        print(row(f"ratio, in-process {how}", [x / y for x, y in zip(a, b, strict=True)], "x"))
    print("ratios are taken pair by pair (each storyc run against the ruamel run next to it)")


def templated_text(n_scenes: int, *, all_local: bool = False) -> str:
    """The same board with a template in every shot's prompt, as real boards have."""
    text = board_text(n_scenes, all_local=all_local)
    text = text.replace("title: benchmark\n", "title: benchmark\nvars:\n  place: the old hall\n", 1)
    return text.replace("across the hall, in the light", "across {{ vars.place }}, in the light")


def paired(commands: dict[str, list[str]], floor: list[str], cwd: Path, runs: int) -> dict[str, list[float]]:
    """CPU ratios to the floor, each command's run paired with a floor run right after it."""
    ratios: dict[str, list[float]] = {name: [] for name in commands}
    ratios["floor cpu s"] = []
    for _ in range(runs):
        for name, args in commands.items():
            _, cpu = run_cpu(args, cwd)
            _, floor_cpu = run_cpu(floor, cwd)
            ratios[name].append(cpu / floor_cpu)
            ratios["floor cpu s"].append(floor_cpu)
    return ratios


def sizes_table(sizes: list[int], runs: int) -> None:
    floor = [sys.executable, "-c", "from ruamel.yaml import YAML; YAML().load(open('board.yaml'))"]
    commands = {
        "compile": [STORYC, "compile", "board.yaml", "--json", "--no-cache"],
        "check": [STORYC, "check", "board.yaml", "--no-cache"],
        "check, cached": [STORYC, "check", "board.yaml"],
    }
    print(f"python {sys.version.split()[0]} on {os.cpu_count()} cores; CPU time ratios to a bare ruamel.yaml load,")
    print(f"whole processes in turn, {runs} pairs each: median (min-max)")
    print(f"{'board':<10} {'scenes':>7} {'ruamel cpu':>10} " + " ".join(f"{n:>20}" for n in commands) + f" {'peak':>7}")
    for n in sizes:
        for kind, text in (("plain", board_text(n)), ("templated", templated_text(n))):
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp)
                (root / ".git").mkdir()
                make_assets(root)
                (root / "board.yaml").write_text(text)
                run_timed(commands["check, cached"], root)  # fill the compile cache, warm the file cache
                ratios = paired(commands, floor, root, runs if n <= 1000 else max(1, runs // 3))
                _, peak = run_timed(commands["compile"], root)
            cells = [
                f"{statistics.median(r):.2f}x ({min(r):.2f}-{max(r):.2f})"
                for name, r in ratios.items()
                if name in commands
            ]
            floor_s = statistics.median(ratios["floor cpu s"])
            print(
                f"{kind:<10} {n:>7} {floor_s:>9.2f}s " + " ".join(f"{c:>20}" for c in cells) + f" {peak / 1024:>5.0f}MB"
            )
    print("peak = the largest child RSS seen so far (ru_maxrss is a running maximum)")


def main(argv: list[str]) -> None:
    if argv[:1] == ["--whole"]:
        whole(int(argv[1]) if len(argv) > 1 else 9)
        return
    runs = 5
    if "--runs" in argv:
        at = argv.index("--runs")
        runs = int(argv[at + 1])
        del argv[at : at + 2]
    sizes_table([int(a) for a in argv] or [100, 1000, 10000], runs)


if __name__ == "__main__":
    main(sys.argv[1:])
