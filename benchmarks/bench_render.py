"""Render benchmark against the fake fal server (tests/fakefal), with the real fal_client.

1. Throughput: 12 scenes, `--concurrency 6`, fal-side concurrency 6, 2 s jobs.
   The ideal is 4 s (two waves of six); storyc's default polling (1 s, backing
   off to 10 s, reset when a job starts running) is what is measured.
2. Politeness: status requests per job, per second of the job's life
   (from its submit to storyc seeing it complete).
3. No-op re-render of a fully cached 1,000-scene board: HTTP requests made
   (should be 0) and wall time beside `storyc --version` (start-up).

    python benchmarks/bench_render.py
"""

from __future__ import annotations

import json
import os
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
LAUNCH = FAL_LAUNCH


def board(n: int, *, remote_only: bool = True) -> str:
    lines = [
        "version: 1",
        "title: bench",
        "target:",
        "  endpoint: fal-ai/kling-video/o3/4k/reference-to-video",
        "styles:",
        "  noir: https://example.org/noir.jpg",
        "scenes:",
    ]
    for i in range(n):
        lines += [
            f"  - id: s{i:04d}",
            f'    prompt: "Shot {i} of the city at night, styled like @noir."',
            "    duration: 3",
        ]
    return "\n".join(lines) + "\n"


def run_storyc(fake: FakeFal, cwd: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {**os.environ, "FAL_KEY": fake.key, "FAKE_FAL_URL": fake.url}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", LAUNCH, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    return time.perf_counter() - start, done


def throughput(tmp: Path) -> None:
    project = tmp / "twelve"
    project.mkdir()
    (project / "board.yaml").write_text(board(12), "utf-8")
    with FakeFal(job_seconds=2.0, concurrency=6) as fake:
        _, warm = run_storyc(fake, project, "check", "board.yaml")  # compile cache and imports warm
        assert warm.returncode == 0, warm.stdout + warm.stderr
        wall, done = run_storyc(fake, project, "render", "board.yaml", "--yes", "--concurrency", "6", "--json")
        assert done.returncode == 0, done.stderr
        first_submit = min(r.time for r in fake.records("submit"))
        last_download = max(r.time for r in fake.records("download"))
        polls = [len(fake.status_calls(j.request_id)) for j in fake.jobs]
        lives = [max(r.time for r in fake.status_calls(j.request_id)) - j.submitted_at for j in fake.jobs]
    span = last_download - first_submit
    print("12 scenes, 2 s jobs, --concurrency 6, fal concurrency 6 (ideal 4.0 s):")
    print(f"  first submit -> last download: {span:.2f} s ({span / 4.0:.2f}x ideal)")
    print(f"  whole command incl. start-up:  {wall:.2f} s")
    rates = [p / life for p, life in zip(polls, lives, strict=True)]
    print(f"  status requests per job: {min(polls)}-{max(polls)}; per second of job life: max {max(rates):.2f}")


def _startup() -> float:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([STORYC, "--version"], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return min(times)


def cached_noop(tmp: Path, n: int = 1000) -> None:
    project = tmp / "thousand"
    project.mkdir()
    (project / "board.yaml").write_text(board(n), "utf-8")
    with FakeFal(job_seconds=0.01, concurrency=None, video_mode="stub") as fake:
        _, first = run_storyc(fake, project, "render", "board.yaml", "--yes", "--concurrency", "16", "--json")
        assert first.returncode == 0, first.stderr[-2000:]
        assert all(s["state"] == "done" for s in json.loads(first.stdout)["scenes"])
        fake.reset_counters()
        times = []
        for _ in range(3):
            start = time.perf_counter()
            done = subprocess.run(
                [STORYC, "render", "board.yaml", "--json"], cwd=project, capture_output=True, text=True, check=True
            )
            times.append(time.perf_counter() - start)
        assert all(s["state"] == "cached" for s in json.loads(done.stdout)["scenes"])
        requests = len(fake.requests)
    startup = _startup()
    best = min(times)
    print(f"no-op re-render of a fully cached {n:,}-scene board:")
    print(f"  HTTP requests: {requests}")
    print(f"  wall: {best:.2f} s (best of 3); `storyc --version`: {startup:.2f} s; difference {best - startup:.2f} s")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="storyc-bench-render-") as tmp:
        throughput(Path(tmp))
        cached_noop(Path(tmp))


if __name__ == "__main__":
    main()
