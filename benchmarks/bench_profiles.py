"""Profiles benchmark: what checking and planning every profile of a board costs.

`storyc check` compiles a board once per profile it declares (each tier has its own
limits), and `plan --compare` prices every profile.  This prints, for the same
1,000-scene board (bench_compile's) without profiles and with three (draft on O3
standard, review on pro, final in 4K), the wall time of whole `storyc` processes:
`check` and `plan --compare` from scratch (`--no-cache` where the command has it,
else an emptied compile cache) and with the compile cache warm.

    python benchmarks/bench_profiles.py          # 1,000 scenes, best of 3
    python benchmarks/bench_profiles.py 5000 5   # 5,000 scenes, best of 5
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_compile import STORYC, best_of, board_text, make_assets, run_timed

PROFILES = """profiles:
  draft:
    endpoint: fal-ai/kling-video/o3/standard/reference-to-video
  review:
    endpoint: fal-ai/kling-video/o3/pro/reference-to-video
  final: {}
"""


def with_profiles(text: str) -> str:
    return text.replace("characters:\n", PROFILES + "characters:\n", 1)


def timings(project: Path, runs: int) -> dict[str, float]:
    cache = project / ".storyc"

    def cold(*args: str) -> float:
        shutil.rmtree(cache, ignore_errors=True)
        return run_timed([STORYC, *args], project)[0]

    def warm(*args: str) -> float:
        run_timed([STORYC, *args], project)  # fills the compile cache for every profile
        return run_timed([STORYC, *args], project)[0]

    return {
        "check, cold": best_of(runs, lambda: cold("check", "board.yaml")),
        "check, cached": best_of(runs, lambda: warm("check", "board.yaml")),
        "plan --compare, cold": best_of(runs, lambda: cold("plan", "board.yaml", "--compare")),
        "plan --compare, cached": best_of(runs, lambda: warm("plan", "board.yaml", "--compare")),
    }


def main(n_scenes: int, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="storyc-bench-profiles-") as tmp:
        rows = {}
        for label, text in (("no profiles", board_text(n_scenes)), ("3 profiles", with_profiles(board_text(n_scenes)))):
            project = Path(tmp) / label.replace(" ", "-")
            project.mkdir()
            (project / ".git").mkdir()
            make_assets(project)
            (project / "board.yaml").write_text(text, "utf-8")
            rows[label] = timings(project, runs)
    print(f"{n_scenes:,}-scene board, whole processes, best of {runs} (seconds):")
    print(f"  {'':<24}{'no profiles':>12}{'3 profiles':>12}{'ratio':>8}")
    for what in rows["no profiles"]:
        plain, profiled = rows["no profiles"][what], rows["3 profiles"][what]
        print(f"  {what:<24}{plain:>12.2f}{profiled:>12.2f}{profiled / plain:>7.2f}x")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(args[0] if args else 1000, args[1] if len(args) > 1 else 3)
