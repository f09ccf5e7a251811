"""A saved plan: `storyc plan --out PLAN.json`, then `storyc render --plan PLAN.json` pays exactly that.

Like `terraform plan -out` / `terraform apply PLAN`: the price a person (or a
CI job) reviewed is bound to what is paid.  The file records the board's
digest and the keys the plan would pay for.  Rendering it:

- refuses when the board changed since (its text, templates, assets or
  profile: every content key goes into the digest, and keys carry the bytes
  of every asset and the rendered prompt text);
- refuses when the lock changed so that something the plan did not include
  would now be paid (an entry forgotten by `gc`, a failed render);
- skips, never pays, a step the plan included that was done in the meantime
  (by this clone, or by a teammate through the team store).

So what is paid is a subset of what was reviewed, never more.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storyc.diagnostics import StorycError

if TYPE_CHECKING:
    from storyc.compile.compiler import CompiledBoard
    from storyc.render.plan import Plan

FORMAT = "storyc-plan/1"


@dataclass(frozen=True)
class SavedPlan:
    path: Path  # the file it was read from, named in every refusal
    storyboard: str
    profile: str | None
    board_digest: str
    scenes: tuple[str, ...]  # the scenes the plan was made for, in board order
    pay: dict[str, Decimal]  # key -> price: the renders the plan pays for
    resend_unknown: bool

    @property
    def cost(self) -> Decimal:
        return sum(self.pay.values(), Decimal("0"))


def board_digest(compiled: CompiledBoard) -> str:
    """One hash of every step's name and content key (and the profile): any change to the board shows.

    Stills count too: one nothing uses changes no scene's key, yet it is paid for.
    """
    lines = [f"profile {compiled.profile or ''}", *(f"{job.scene} {job.key}" for job in compiled.jobs)]
    lines += [f"still {still.still} {still.key}" for still in compiled.stills]
    return "sha256:" + hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def to_json(compiled: CompiledBoard, the_plan: Plan, *, resend_unknown: bool) -> dict[str, Any]:
    paid = [item for item in the_plan.items if item.price > 0]
    return {
        "format": FORMAT,
        "storyboard": compiled.storyboard,
        "profile": compiled.profile,
        "board_digest": board_digest(compiled),
        "resend_unknown": resend_unknown,
        "scenes": [item.scene for item in the_plan.items],
        "pay": [{"scene": i.scene, "key": i.job.key, "cost_usd": str(i.price)} for i in paid],
        "cost_usd": str(the_plan.cost),
    }


def write(path: Path, compiled: CompiledBoard, the_plan: Plan, *, resend_unknown: bool) -> None:
    from storyc.fsutil import atomic_write_bytes

    text = json.dumps(to_json(compiled, the_plan, resend_unknown=resend_unknown), indent=2, ensure_ascii=False)
    atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def read(path: Path) -> SavedPlan:
    """The saved plan at `path`; StorycError (`PATH: ...`) when it is missing or not a plan storyc wrote."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise StorycError(f"{path}: cannot read the plan ({exc.strerror or exc})") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StorycError(f"{path}: not a plan written by `storyc plan --out` (not JSON: {exc})") from exc
    try:
        return _parse(path, data)
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise StorycError(f"{path}: not a plan written by `storyc plan --out` ({_field(exc)})") from exc


def _parse(path: Path, data: Any) -> SavedPlan:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"format is not {FORMAT!r}")
    pay = {str(entry["key"]): _money(entry["cost_usd"]) for entry in data["pay"]}
    profile = data["profile"]
    return SavedPlan(
        path=path,
        storyboard=str(data["storyboard"]),
        profile=None if profile is None else str(profile),
        board_digest=str(data["board_digest"]),
        scenes=tuple(str(s) for s in data["scenes"]),
        pay=pay,
        resend_unknown=bool(data["resend_unknown"]),
    )


def _money(value: Any) -> Decimal:
    amount = Decimal(str(value))
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"cost_usd {value!r} is not an amount")
    return amount


def _field(exc: Exception) -> str:
    return f"missing {exc}" if isinstance(exc, KeyError) else str(exc)


def check_unchanged(saved: SavedPlan, compiled: CompiledBoard) -> None:
    """Refuse a plan made for another version of the board (or another profile)."""
    if board_digest(compiled) != saved.board_digest:
        path = saved.path
        raise StorycError(
            f"{path}: {compiled.storyboard} changed since this plan was made (its scenes, templates, assets or "
            f"profile); nothing was sent. Review the new price: `storyc plan {compiled.storyboard} --out {path}`"
        )


def surplus(saved: SavedPlan, current: Plan) -> list[str]:
    """What rendering now would pay for that the saved plan did not: the scenes, with their price."""
    return [
        f"{item.scene} (${item.price})" for item in current.items if item.price > 0 and item.job.key not in saved.pay
    ]


def done_since(saved: SavedPlan, current: Plan) -> list[str]:
    """Scenes the saved plan would have paid for that no longer cost anything (done in the meantime)."""
    return [item.scene for item in current.items if item.job.key in saved.pay and item.price == 0]
