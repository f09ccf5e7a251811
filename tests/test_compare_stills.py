"""`storyc plan --compare` prices stills in every profile too (a profile may set `still_resolution` or
`still_endpoint`), with a stills line and totals per kind; across video tiers a still costs the same.

examples/keyframes through the real CLI: profile draft makes stills at 0.5K, final at 2K.
"""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import EXAMPLES

from storyc.cli import cli


@pytest.fixture
def board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "film"
    shutil.copytree(EXAMPLES / "keyframes", folder, ignore=shutil.ignore_patterns("renders", ".storyc", "*.html"))
    monkeypatch.chdir(folder)
    return folder / "board.yaml"


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    return result.stdout


def compiled_stills(profile: str | None = None) -> dict[str, Decimal]:
    """Each still's price as that profile's own compile says (None: a board without profiles)."""
    chosen = ("--profile", profile) if profile else ()
    data = json.loads(run("compile", "board.yaml", *chosen, "--json"), parse_float=Decimal)
    return {s["still"]: s["cost_usd"] for s in data["stills"]}


def test_compare_prices_each_still_in_each_profile_with_totals_per_kind(board: Path) -> None:
    draft, final = compiled_stills("draft"), compiled_stills("final")
    assert draft == {"ellie-sheet": Decimal("0.06"), "meet-open": Decimal("0.18")}  # 0.5K
    assert final == {"ellie-sheet": Decimal("0.12"), "meet-open": Decimal("0.36")}  # 2K
    data = json.loads(run("plan", "board.yaml", "--compare", "--json"), parse_float=Decimal)
    prices = {s["still"]: (s["images"], s["prices"]) for s in data["stills"]}
    assert prices == {
        "ellie-sheet": (1, {"animatic": 0, "draft": Decimal("0.06"), "final": Decimal("0.12")}),
        "meet-open": (3, {"animatic": 0, "draft": Decimal("0.18"), "final": Decimal("0.36")}),
    }
    assert data["totals_by_kind"] == {
        "scenes": {"animatic": 0, "draft": Decimal("0.84"), "final": Decimal("4.2")},
        "stills": {"animatic": 0, "draft": Decimal("0.24"), "final": Decimal("0.48")},
    }
    assert data["totals"] == {"animatic": 0, "draft": Decimal("1.08"), "final": Decimal("4.68")}  # the whole graph
    lines = [line.rstrip() for line in run("plan", "board.yaml", "--compare").splitlines()]
    assert lines[3:6] == [
        "  scenes               free       $0.84       $4.20",
        "  2 stills             free       $0.24       $0.48",
        "  total                free       $1.08       $4.68",
    ]


def test_a_profile_changing_still_endpoint_or_resolution_is_priced_as_it_compiles(board: Path) -> None:
    text = board.read_text("utf-8").replace(
        "  final:\n    still_resolution: 2K\n",
        "  final:\n    still_resolution: 4K\n    still_endpoint: fal-ai/nano-banana-2\n",
    )
    board.write_text(text, "utf-8")
    final = compiled_stills("final")
    data = json.loads(run("plan", "board.yaml", "--compare", "--json"), parse_float=Decimal)
    assert {s["still"]: s["prices"]["final"] for s in data["stills"]} == final
    assert data["totals_by_kind"]["stills"]["final"] == sum(final.values())
    assert sum(final.values()) > Decimal("0.48")  # 4K costs more than 2K


def test_across_video_tiers_a_still_costs_the_same(board: Path) -> None:
    text = board.read_text("utf-8")
    start, end = text.index("profiles:"), text.index("vars:")
    board.write_text(text[:start] + text[end:], "utf-8")  # no profiles: the columns are the video tiers
    data = json.loads(run("plan", "board.yaml", "--compare", "--json"), parse_float=Decimal)
    tiers = data["tiers"][1:]
    assert len(tiers) >= 2
    for still in data["stills"]:
        assert len({still["prices"][tier] for tier in tiers}) == 1, still
    stills = sum(compiled_stills().values())
    assert all(data["totals_by_kind"]["stills"][tier] == stills for tier in tiers)
    for tier in tiers:
        assert data["totals"][tier] == data["totals_by_kind"]["scenes"][tier] + stills
