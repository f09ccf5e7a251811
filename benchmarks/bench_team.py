"""Team benchmark: N clones rendering one 12-scene board at once, sharing one team store.

Each clone is its own folder and its own `storyc render` process; all talk to one fake fal
server (2 s jobs, fal concurrency 12) through the real fal_client, and to one team store (a
local directory, or S3 served by moto with `--s3`).  For N = 1, 2, 4, 8 it prints:

- fal submissions (jobs the fake accepted): 12 means the team paid once per request;
- wall time of the slowest clone, against one clone alone;
- store requests per scene (all clones together), from each render's --json.

    python benchmarks/bench_team.py [--s3]
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakefal import FakeFal  # noqa: E402 (after the path above)
from helpers import FAL_LAUNCH  # noqa: E402
from s3server import new_bucket, serve_moto  # noqa: E402

LAUNCH = FAL_LAUNCH
SCENES = 12


def board(n: int) -> str:
    lines = [
        "version: 1",
        "title: team bench",
        "target:",
        "  endpoint: fal-ai/kling-video/o3/4k/reference-to-video",
        "styles:",
        "  noir: https://example.org/noir.jpg",
        "scenes:",
    ]
    for i in range(n):
        lines += [f"  - id: s{i:02d}", f'    prompt: "Shot {i} of the city at night, @noir."', "    duration: 3"]
    return "\n".join(lines) + "\n"


def run_clones(tmp: Path, n_clones: int, store: str, env: dict[str, str]) -> tuple[int, float, int]:
    clones = []
    for i in range(n_clones):
        folder = tmp / f"n{n_clones}-clone{i}"
        folder.mkdir()
        (folder / "board.yaml").write_text(board(SCENES), "utf-8")
        clones.append(folder)
    with FakeFal(job_seconds=2.0, concurrency=SCENES) as fake:
        base = {**os.environ, **env, "FAL_KEY": fake.key, "FAKE_FAL_URL": fake.url, "STORYC_STORE": store}
        for folder in clones:  # warm the compile cache, so the clones race on rendering, not compiling
            warm = [sys.executable, "-c", LAUNCH, "check", "board.yaml"]
            subprocess.run(warm, cwd=folder, env=base, check=True, capture_output=True)
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", LAUNCH, "render", "board.yaml", "--yes", "-j", str(SCENES), "--json"],
                cwd=folder,
                env=base,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for folder in clones
        ]
        outputs = [p.communicate() for p in procs]
        wall = time.perf_counter() - start
        for proc, (_, err) in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, err[-2000:]
        store_requests = sum(json.loads(out)["store"]["requests"] for out, _ in outputs)
        return fake.accepted_count(), wall, store_requests


def s3_env(endpoint: str) -> dict[str, str]:
    from s3server import ACCESS_KEY, SECRET

    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
    }


def main() -> None:
    use_s3 = "--s3" in sys.argv
    with tempfile.TemporaryDirectory(prefix="storyc-bench-team-") as tmp_name:
        tmp = Path(tmp_name)
        print(f"{SCENES} scenes, 2 s jobs, fal concurrency {SCENES}, store: {'S3 (moto)' if use_s3 else 'a directory'}")
        print(f"{'clones':>6} {'fal jobs':>9} {'wall s':>8} {'vs 1 clone':>11} {'store req/scene':>16}")
        alone = None
        with contextlib.ExitStack() as stack:
            endpoint = stack.enter_context(serve_moto()) if use_s3 else ""
            for n in (1, 2, 4, 8):
                if use_s3:
                    store, env = f"s3://{new_bucket(endpoint)}/bench", s3_env(endpoint)
                else:
                    folder = tmp / f"store-{n}"
                    folder.mkdir()
                    store, env = folder.as_uri(), {}
                jobs, wall, requests = run_clones(tmp, n, store, env)
                alone = alone or wall
                print(f"{n:>6} {jobs:>9} {wall:>8.2f} {wall / alone:>10.2f}x {requests / SCENES:>16.1f}")


if __name__ == "__main__":
    main()
