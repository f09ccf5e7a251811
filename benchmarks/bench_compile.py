"""Compile benchmark: start-up, check and compile times, cached re-runs, peak memory.

Generates boards of N scenes (50 characters, 20 styles, 3 shots each, some
local assets) and times the installed `storyc` against a bare ruamel.yaml
round-trip load of the same file, which is the floor: parsing is unavoidable,
everything storyc adds must be small beside it.

    python benchmarks/bench_compile.py            # 100, 1,000 and 10,000 scenes
    python benchmarks/bench_compile.py 1000       # just one size
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


def board_text(n_scenes: int) -> str:
    out = ["version: 1", "title: benchmark", "target:", "  endpoint: fal-ai/kling-video/o3/4k/reference-to-video"]
    out.append("characters:")
    for i in range(N_CHARACTERS):
        # the first 10 characters use local files, the rest URLs
        front = f"refs/c{i}.png" if i < 10 else f"https://example.org/c{i}.png"
        side = f"refs/c{(i + 1) % 10}.png" if i < 10 else f"https://example.org/c{i}-side.png"
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
    main([int(a) for a in sys.argv[1:]] or [100, 1000, 10000])
