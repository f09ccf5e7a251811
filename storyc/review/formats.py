"""The three renderings of a `storyc.review.changes.Review`: text (terminals), markdown (pull requests), json (CI).

Prompt diffs use git's word-diff notation in text (`[-old-]{+new+}`) and
strike-through / bold in markdown, where every `@name` is a code span (so a
pull request comment never notifies a GitHub user called `ellie`) and every
other character that markdown would read is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from storyc.compile.compiler import VIDEO_INPUT_CAVEAT, price_text
from storyc.review.changes import (
    STATUS_ORDER,
    STILL_STATUS_ORDER,
    AssetChange,
    Chunk,
    PromptChange,
    Review,
    SceneChange,
    SettingChange,
    Side,
    StillChange,
)

FORMATS = ("text", "markdown", "json")


def render(review: Review, fmt: str) -> str:
    if fmt == "json":
        from storyc.jsontext import dumps_indented  # writes the Decimal amounts exactly

        return dumps_indented(review_json(review)) + "\n"
    if fmt == "markdown":
        return render_markdown(review)
    return render_text(review)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _money(value: Decimal) -> str:
    return f"${value:.2f}"


def _scene_price(scene: SceneChange) -> str:
    """'$2.10', or as an estimate '$4.20, video input: fal may price it differently'."""
    if scene.price_certain:
        return _money(scene.cost_usd)
    return f"{_money(scene.cost_usd)}, {VIDEO_INPUT_CAVEAT}"


def _tally(review: Review) -> str:
    counts = [f"{review.count(s)} {s}" for s in STATUS_ORDER if review.count(s)]
    scenes = ", ".join(counts) or "no scenes"
    if not review.stills:
        return scenes
    stills = [f"{n} {status}" for status in STILL_STATUS_ORDER if (n := _still_count(review, status))]
    return f"{scenes}; stills: {', '.join(stills)}"


def _still_count(review: Review, status: str) -> int:
    return sum(1 for s in review.stills if s.status == status)


def _cost_sentence(review: Review) -> str:
    todo = [s for s in review.scenes if s.to_render]
    stills = [s for s in review.stills if s.to_render]
    done = sum(1 for s in review.scenes if s.rendered)
    stills_done = sum(1 for s in review.stills if s.rendered)
    already = f"; {_plural(done, 'scene')} already rendered (in the lock)" if done else ""
    if stills_done:
        already += f"; {_plural(stills_done, 'still')} already made (in the lock)"
    if not todo and not stills:
        return f"nothing new to render{already}"
    cost = review.cost_usd or Decimal("0.00")
    price = price_text(cost, review.uncertain_usd or Decimal("0.00"))
    seconds = sum(s.seconds for s in todo)
    if not stills:
        return f"to render: {price} for {_plural(len(todo), 'scene')} ({seconds} s){already}"
    images = sum(s.images for s in stills)
    kinds = [f"{_plural(len(stills), 'still')} ({_plural(images, 'image')}, {_money(review.stills_usd)})"]
    if todo:
        kinds.append(f"{_plural(len(todo), 'scene')} ({seconds} s, {_money(review.scenes_usd)})")
    return f"to render: {price} for {' and '.join(kinds)}{already}"


def _missing_note(review: Review) -> str | None:
    if not review.base.exists:
        return f"{review.storyboard} is not at {review.base.label}: every scene is added"
    if not review.head.exists:
        return f"{review.storyboard} is not at {review.head.label}: every scene is removed"
    return None


def _failed_sides(review: Review) -> Iterator[tuple[str, Side]]:
    for name, side in (("base", review.base), ("head", review.head)):
        if not side.ok:
            yield name, side


# --- text -------------------------------------------------------------------------------


def render_text(review: Review) -> str:
    lines = [f"{review.storyboard}: {review.base.label} -> {review.head.label}"]
    note = _missing_note(review)
    if note:
        lines.append(note)
    if not review.ok:
        return "\n".join([*lines, *_problems_text(review)]) + "\n"
    width = max((len(s) for s in [*(c.scene for c in review.scenes), *(c.still for c in review.stills)]), default=5)
    for still in review.stills:
        lines += _still_text(still, width)
    for scene in review.scenes:
        lines += _scene_text(scene, width)
    lines.append(f"{_tally(review)}; {_cost_sentence(review)}")
    lines += _profile_costs(review)
    return "\n".join(lines) + "\n"


def _profile_costs(review: Review) -> list[str]:
    """'in profile draft: $1.51; final: $7.56': the same change priced in each profile of the board."""
    if not review.profile_costs:
        return []
    parts = []
    for name, cost, uncertain in review.profile_costs:
        price = "does not compile" if cost is None else price_text(cost, uncertain or Decimal("0.00"))
        parts.append(f"{name}: {price}")
    shown = f" (shown: {review.profile})" if review.profile is not None else ""
    return [f"to render in each profile{shown}: " + "; ".join(parts)]


def _problems_text(review: Review) -> Iterator[str]:
    from storyc.diagnostics import summary_line

    for name, side in _failed_sides(review):
        assert side.result is not None
        yield f"{name} {side.label}: {review.storyboard} does not compile:"
        for d in side.result.diagnostics:
            yield f"  {d.format()}"
        yield f"  {summary_line(side.result.diagnostics, 1)}"
    yield "cannot compare scene by scene until both revisions compile"


def _scene_note(scene: SceneChange) -> str:
    if scene.status == "renamed":
        return f"was {scene.renamed_from}; same request"
    if scene.status in ("added", "changed"):
        return "already rendered (in the lock)" if scene.rendered else _scene_price(scene)
    return ""


def _scene_text(scene: SceneChange, width: int) -> list[str]:
    note = _scene_note(scene)
    head = f"  {scene.status:<9}  {scene.scene:<{width}}  {scene.seconds:>3} s" + (f"  {note}" if note else "")
    lines = [head.rstrip()]
    if scene.status == "changed":
        lines += [f"      {line}" for line in _details_text(scene)]
    elif scene.status == "added":
        lines += [f"      {line}" for prompt in scene.prompts for line in _prompt_text(prompt, plain=True)]
    return lines


def _still_note(still: StillChange) -> str:
    if still.status == "picked":
        return "another candidate picked: not made again"
    if still.status in ("added", "changed"):
        return "already made (in the lock)" if still.rendered else _still_price(still)
    return ""


def _still_price(still: StillChange) -> str:
    head = still.head or still.base
    assert head is not None
    price = f"{still.images} x {head.resolution}  {_money(still.cost_usd)}"
    return price if still.price_certain else f"{price}, estimated"


def _still_text(still: StillChange, width: int) -> list[str]:
    note = _still_note(still)
    lines = [(f"  {still.status:<9}  {still.still:<{width}}  still" + (f"  {note}" if note else "")).rstrip()]
    for s in still.settings:
        lines.append(f"      {s.name}: {s.old} -> {s.new}")
    for prompt in still.prompts:
        lines += [f"      {line}" for line in _prompt_text(prompt, plain=still.status == "added")]
    lines += [f"      re-made: {reason}" for reason in still.upstream]
    if still.downstream:
        lines.append(f"      re-renders: {', '.join(still.downstream)}")
    return lines


def _details_text(scene: SceneChange) -> Iterator[str]:
    if scene.fields or not scene.upstream:  # a scene changed only through its upstreams says that instead
        yield f"fields: {', '.join(scene.fields)}"
    for reason in scene.upstream:
        yield f"re-rendered: {reason}"
    for s in scene.settings:
        yield f"{s.name}: {s.old} -> {s.new}"
    for prompt in scene.prompts:
        yield from _prompt_text(prompt)
    for asset in scene.assets:
        yield _asset_text(asset, str, str, "->")
    if scene.refs_added or scene.refs_dropped:
        yield _refs_sentence(scene, lambda name: f"@{name}")


def _diff_lines(chunks: tuple[Chunk, ...]) -> list[list[Chunk]]:
    """The diff cut into lines (a chunk across a line break is cut in two)."""
    lines: list[list[Chunk]] = [[]]
    for op, text in chunks:
        for k, part in enumerate(text.split("\n")):
            if k:
                lines.append([])
            if part:
                lines[-1].append((op, part))
    return lines


def shown_lines(prompt: PromptChange) -> list[list[Chunk] | None]:
    """The lines of a long prompt that changed; None stands for unchanged lines left out."""
    lines = _diff_lines(prompt.chunks)
    changed = [any(op != "=" for op, _ in line) for line in lines]
    if len(lines) == 1 or not any(changed):
        return list(lines)
    shown: list[list[Chunk] | None] = []
    for line, is_changed in zip(lines, changed, strict=True):
        if is_changed:
            shown.append(line)
        elif any(t.strip() for _, t in line) and (not shown or shown[-1] is not None):
            shown.append(None)
    return shown


def _prompt_text(prompt: PromptChange, *, plain: bool = False) -> Iterator[str]:
    """The prompt's diff (`plain`: the text of an added scene, without marks)."""
    lines = [
        "..." if line is None else "".join(t if plain else _text_chunk(op, t) for op, t in line)
        for line in shown_lines(prompt)
    ]
    if len(lines) == 1:
        yield f"{prompt.label}: {lines[0]}"
        return
    yield f"{prompt.label}:"
    for line in lines:
        yield f"  {line}".rstrip()


def _text_chunk(op: str, text: str) -> str:
    if op == "-":
        return f"[-{text}-]"
    if op == "+":
        return f"{{+{text}+}}"
    return text


def _asset_text(
    asset: AssetChange, show_role: Callable[[str], str], show_path: Callable[[str], str], arrow: str
) -> str:
    role = show_role(asset.role)
    old, new = show_path(asset.old or ""), show_path(asset.new or "")
    if asset.kind == "repainted":
        return f"repainted {old} ({role})"
    if asset.kind == "moved":
        return f"moved {old} {arrow} {new}, same bytes ({role})"
    if asset.kind == "replaced":
        return f"replaced {old} {arrow} {new} ({role})"
    if asset.kind == "added":
        return f"added {new} ({role})"
    return f"removed {old} ({role})"


def _refs_sentence(scene: SceneChange, show: Callable[[str], str]) -> str:
    parts = []
    if scene.refs_added:
        parts.append("added " + ", ".join(show(n) for n in scene.refs_added))
    if scene.refs_dropped:
        parts.append("dropped " + ", ".join(show(n) for n in scene.refs_dropped))
    return "references: " + "; ".join(parts)


# --- markdown ----------------------------------------------------------------------------

_MENTION = re.compile(r"(?<![A-Za-z0-9])@[A-Za-z0-9_]+")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~!&])")
_MD_LINE_START = re.compile(r"^(\s*)([-+=>]|\d+[.)])", re.MULTILINE)


def code(text: str) -> str:
    """`text` as a markdown code span, whatever backticks it holds."""
    runs = [len(r) for r in re.findall(r"`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md(text: str) -> str:
    """User text for markdown: special characters escaped, `@name`s as code spans."""
    out: list[str] = []
    last = 0
    for match in _MENTION.finditer(text):
        out.append(_escape(text[last : match.start()]))
        out.append(code(match.group(0)))
        last = match.end()
    out.append(_escape(text[last:]))
    return _MD_LINE_START.sub(_escape_line_start, "".join(out))


def _escape_line_start(match: re.Match[str]) -> str:
    """`- x`, `> x`, `1. x` at the start of a line would make a list or a quote: escape the mark."""
    mark = match.group(2)
    return match.group(1) + mark[:-1] + "\\" + mark[-1]


def _escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def _side_md(side: Side) -> str:
    return "working tree" if side.rev is None else code(side.label)


def render_markdown(review: Review) -> str:
    lines = [
        f"### storyc diff: {code(review.storyboard)}",
        "",
        f"{_side_md(review.base)} → {_side_md(review.head)}: {_tally(review)}",
    ]
    note = _missing_note(review)
    if note:
        lines += ["", md(note)]
    if not review.ok:
        lines += _problems_md(review)
        return "\n".join(lines) + "\n"
    lines += ["", f"**{_cost_sentence(review).capitalize()}**"]
    for line in _profile_costs(review):
        lines += ["", md(line)]
    listed_stills = [s for s in review.stills if s.status != "unchanged"]
    if listed_stills:
        lines += ["", *_stills_table_md(listed_stills)]
    listed = [s for s in review.scenes if s.status != "unchanged"]
    if listed:
        lines += ["", *_table_md(listed)]
    unchanged = [s for s in review.scenes if s.status == "unchanged"]
    if unchanged:
        names = ", ".join(code(s.scene) for s in unchanged)
        lines += [
            "",
            f"<details><summary>{_plural(len(unchanged), 'unchanged scene')}</summary>",
            "",
            names,
            "",
            "</details>",
        ]
    for still in review.stills:
        if still.status in ("changed", "added", "picked"):
            lines += ["", *_still_details_md(still)]
    for scene in review.scenes:
        if scene.status in ("changed", "added"):
            lines += ["", *_details_md(scene)]
    return "\n".join(lines) + "\n"


def _problems_md(review: Review) -> list[str]:
    from storyc.diagnostics import summary_line

    lines: list[str] = []
    for name, side in _failed_sides(review):
        assert side.result is not None
        lines += ["", f"**{name} {_side_md(side)}: {code(review.storyboard)} does not compile**", "", "```text"]
        lines += [d.format() for d in side.result.diagnostics]
        lines += [summary_line(side.result.diagnostics, 1), "```"]
    lines += ["", "Cannot compare scene by scene until both revisions compile."]
    return lines


def _table_md(scenes: list[SceneChange]) -> list[str]:
    rows = ["| scene | status | length | to render | what changed |", "|---|---|---:|---:|---|"]
    for s in scenes:
        status = f"renamed from {code(s.renamed_from or '')}" if s.status == "renamed" else s.status
        cost = ""
        if s.status in ("added", "changed"):
            cost = "rendered" if s.rendered else _scene_price(s)
        what = ", ".join(map(code, s.fields)) if s.status == "changed" else ""
        what = what or "; ".join(md(reason) for reason in s.upstream)
        what = "same request" if s.status == "renamed" else what
        rows.append(f"| {code(s.scene)} | {status} | {s.seconds} s | {cost} | {what} |")
    return rows


def _stills_table_md(stills: list[StillChange]) -> list[str]:
    rows = ["| still | status | to render | re-renders |", "|---|---|---:|---|"]
    for s in stills:
        note = _still_note(s).replace("  ", " · ")
        rows.append(f"| {code(s.still)} | {s.status} | {md(note)} | {', '.join(md(d) for d in s.downstream)} |")
    return rows


def _still_details_md(still: StillChange) -> Iterator[str]:
    yield f"#### still {code(still.still)} ({still.status})"
    yield ""
    yield from _settings_and_prompts_md(still.settings, still.prompts, plain=still.status == "added")
    for reason in still.upstream:
        yield f"- re-made: {md(reason)}"
    if still.downstream:
        yield f"- re-renders: {', '.join(md(d) for d in still.downstream)}"


def _details_md(scene: SceneChange) -> Iterator[str]:
    yield f"#### {code(scene.scene)} ({scene.status})"
    yield ""
    plain = scene.status == "added"
    if not plain and (scene.fields or not scene.upstream):
        yield f"- fields: {', '.join(code(f) for f in scene.fields)}"
    for reason in scene.upstream:
        yield f"- re-rendered: {md(reason)}"
    yield from _settings_and_prompts_md(scene.settings, scene.prompts, plain=plain)
    for asset in scene.assets:
        yield "- " + _asset_text(asset, md, code, "→")
    if scene.refs_added or scene.refs_dropped:
        yield "- " + _refs_sentence(scene, lambda name: code(f"@{name}"))


def _settings_and_prompts_md(
    settings: Sequence[SettingChange], prompts: Sequence[PromptChange], *, plain: bool
) -> Iterator[str]:
    """Changed settings as `name: old → new`, then each prompt's diff (`plain`: an added step's text)."""
    for s in settings:
        yield f"- {code(s.name)}: {md(s.old)} → {md(s.new)}"
    for prompt in prompts:
        yield f"- {prompt.label}:"
        for line in shown_lines(prompt):
            text = "…" if line is None else "".join(md(t) if plain else _md_chunk(op, t) for op, t in line)
            yield f"  > {text}".rstrip()


def _md_chunk(op: str, piece: str) -> str:
    """One piece of a line of the diff: removed words struck through, added ones in bold."""
    core = piece.strip()
    if op == "=" or not core:
        return md(piece)
    mark = "~~" if op == "-" else "**"
    lead = piece[: len(piece) - len(piece.lstrip())]
    trail = piece[len(piece.rstrip()) :]
    return f"{lead}{mark}{md(core)}{mark}{trail}"


# --- json --------------------------------------------------------------------------------


def review_json(review: Review) -> dict[str, Any]:
    cost = review.cost_usd
    uncertain = review.uncertain_usd
    return {
        "storyboard": review.storyboard,
        "base": _side_json(review.base),
        "head": _side_json(review.head),
        "ok": review.ok,
        "scenes": [_scene_json(s, graph=review.has_graph) for s in review.scenes],
        "cost_usd": cost,  # Decimals (or None): storyc.jsontext writes amounts exactly
        "uncertain_usd": uncertain,
        **({"profile": review.profile} if review.profile is not None else {}),
        **(_graph_json(review) if review.has_graph else {}),
        **(
            {
                "profiles": {
                    name: {
                        "cost_usd": c,
                        "uncertain_usd": u,
                    }
                    for name, c, u in review.profile_costs
                }
            }
            if review.profile_costs
            else {}
        ),
    }


def _side_json(side: Side) -> dict[str, Any]:
    diagnostics = side.result.diagnostics if side.result is not None else []
    return {
        "rev": side.rev,
        "commit": side.commit,
        "exists": side.exists,
        "ok": side.ok,
        "diagnostics": [d.to_json() for d in diagnostics],
    }


def _graph_json(review: Review) -> dict[str, Any]:
    """A board with stills: each still, and the cost by kind (`cost_usd` is their sum)."""
    return {
        "stills": [_still_json(s) for s in review.stills],
        "scenes_usd": review.scenes_usd,
        "stills_usd": review.stills_usd,
    }


def _edits_json(settings: Sequence[SettingChange], prompts: Sequence[PromptChange]) -> dict[str, Any]:
    return {
        "settings": [{"name": s.name, "old": s.old, "new": s.new} for s in settings],
        "prompts": [{"label": p.label, "diff": [list(c) for c in p.chunks]} for p in prompts],
    }


def _still_json(still: StillChange) -> dict[str, Any]:
    return {
        "still": still.still,
        "status": still.status,
        "cost_usd": still.cost_usd,
        "price_certain": still.price_certain,
        "images": still.images,
        "rendered": still.rendered,
        "key": still.head.key if still.head is not None else None,
        "base_key": still.base.key if still.base is not None else None,
        **_edits_json(still.settings, still.prompts),
        "upstream": list(still.upstream),
        "re_renders": list(still.downstream),
    }


def _scene_json(scene: SceneChange, *, graph: bool = False) -> dict[str, Any]:
    upstream = {"upstream": list(scene.upstream)} if graph else {}  # why its key changed through the graph
    return {
        "scene": scene.scene,
        "status": scene.status,
        "fields": list(scene.fields),
        "cost_usd": scene.cost_usd,
        "price_certain": scene.price_certain,
        "seconds": scene.seconds,
        "rendered": scene.rendered,
        "renamed_from": scene.renamed_from,
        "key": scene.head.key if scene.head is not None else None,
        "base_key": scene.base.key if scene.base is not None else None,
        **_edits_json(scene.settings, scene.prompts),
        "assets": [{"role": a.role, "change": a.kind, "old": a.old, "new": a.new} for a in scene.assets],
        "references": {"added": list(scene.refs_added), "dropped": list(scene.refs_dropped)},
        **upstream,
    }
