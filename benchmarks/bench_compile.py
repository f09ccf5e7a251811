"""Compile benchmark: start-up, check and compile times, cached re-runs, peak memory.

Generates boards of N scenes (50 characters, 20 styles, 3 shots each, some
local assets) and times the installed `storyc` against a bare ruamel.yaml
round-trip load of the same file, which is the floor: parsing is unavoidable,
everything storyc adds must be small beside it.

    python benchmarks/bench_compile.py            # 100, 1,000 and 10,000 scenes
    python benchmarks/bench_compile.py 1000       # just one size
    python benchmarks/bench_compile.py --whole 9  # the 1,000-scene board, whole processes, 9 runs each

--whole times `storyc compile board.yaml --json --no-cache` and
`python -c "from ruamel.yaml import YAML; YAML().load(open('board.yaml'))"` as
whole processes (start-up and imports included), in turn, on a 1,000-scene
board whose 50 characters are all local PNGs (so every asset check runs),
and prints min/median of each and of the pairwise ratio; then the same two
in-process (imports excluded: compile + JSON text against the load alone).
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


def best_of(n: int, fn) -> float:  # type: ignore[no-untyped-def]
    return min(fn() for _ in range(n))


def ruamel_floor(path: Path) -> float:
    code = (
        "import time,sys\nt=time.perf_counter()\nfrom ruamel.yaml import YAML\n"
        "YAML(typ='rt').load(open(sys.argv[1]).read())\nprint(time.perf_counter()-t)"
    )
    samples = [float(subprocess.check_output([sys.executable, "-c", code, str(path)])) for _ in range(3)]
    return min(samples)


def python_startup() -> float:
    return best_of(5, lambda: run_timed([sys.executable, "-c", "pass"], Path.cwd())[0])


def measure(n: int, startup: float) -> str:
    """One row of the table for a generated board of `n` scenes."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / ".git").mkdir()
        make_assets(root)
        board = root / "board.yaml"
        board.write_text(board_text(n))
        lines = board.read_text().count("\n")
        floor = ruamel_floor(board)
        repeats = 3 if n <= 1000 else 1
        check_args = [STORYC, "check", "--no-cache", "board.yaml"]
        compile_args = [STORYC, "compile", "--no-cache", "--json", "board.yaml"]
        check = best_of(repeats, lambda: run_timed(check_args, root)[0])
        compile_s, peak = run_timed(compile_args, root)
        for _ in range(repeats - 1):
            compile_s = min(compile_s, run_timed(compile_args, root)[0])
        cached_args = [STORYC, "compile", "--json", "board.yaml"]
        run_timed(cached_args, root)  # fill the cache
        cached = statistics.median(run_timed(cached_args, root)[0] for _ in range(3))
    # the floor is timed in-process; compare like with like by taking start-up out of storyc's time
    ratio = (compile_s - startup) / floor
    return (
        f"{n:>7} {lines:>7} {floor:>9.2f}s {check:>7.2f}s {compile_s:>7.2f}s {ratio:>5.2f}x "
        f"{cached:>7.2f}s {peak / 1024:>4.0f}MB"
    )


def whole_board(root: Path, n_scenes: int = 1000) -> Path:
    """The 1,000-scene board of the speed target: every character a local PNG pair."""
    from PIL import Image

    (root / ".git").mkdir()
    refs = root / "refs"
    refs.mkdir()
    for i in range(N_CHARACTERS):
        Image.new("RGB", (400, 320), (i * 5, 100, 200 - i * 3)).save(refs / f"c{i}.png")
        Image.new("RGB", (400, 320), (i * 5, 120, 190 - i * 3)).save(refs / f"c{i}-side.png")
    board = root / "board.yaml"
    board.write_text(board_text(n_scenes, all_local=True))
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


def main(sizes: list[int]) -> None:
    print(f"python {sys.version.split()[0]} on {os.cpu_count()} cores")
    startup = best_of(7, lambda: run_timed([STORYC, "--version"], Path.cwd())[0])
    print(f"storyc --version: {startup * 1000:.0f} ms (bare python -c pass: {python_startup() * 1000:.0f} ms)")
    print()
    print(
        f"{'scenes':>7} {'lines':>7} {'ruamel rt':>10} {'check':>8} {'compile':>8}"
        f" {'ratio':>6} {'cached':>8} {'peak':>6}"
    )
    for n in sizes:
        print(measure(n, startup))
    print()
    print("ratio = (compile - start-up) / bare ruamel.yaml round-trip load of the same file (target <= 1.3x)")
    print("cached = repeated `storyc compile --json` of the unchanged board (compile cache in .storyc/)")
    print("peak = the largest child RSS seen so far (ru_maxrss is a running maximum)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--whole"]:
        whole(int(sys.argv[2]) if len(sys.argv) > 2 else 9)
    else:
        main([int(a) for a in sys.argv[1:]] or [100, 1000, 10000])
