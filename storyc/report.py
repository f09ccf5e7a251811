"""Reporters: the one place where results become text for people or JSON for programs.

Commands compute values (diagnostics, a plan, a render summary, statuses...)
and hand them to an `Output`, which prints them in the format asked for
(`--format text|json`).  In JSON, a scene's state is always the field
`state`, whatever the command.

Colour follows one policy: styled text only on a terminal (click strips it
elsewhere), and never when `NO_COLOR` is set (https://no-color.org).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import click

from storyc.diagnostics import printable

if TYPE_CHECKING:
    from storyc.compile.compiler import CompiledBoard, Job, StillJob
    from storyc.diagnostics import Diagnostic
    from storyc.render.inventory import SceneStatus
    from storyc.render.plan import Comparison, Plan
    from storyc.render.run import RenderSummary, SceneState

Format = Literal["text", "json", "github"]

STATE_COLORS = {
    "done": "green",
    "cached": "green",
    "store": "green",
    "resume": "cyan",
    "submitted": "cyan",
    "render": "yellow",
    "stale": "yellow",
    "new": "yellow",
}


VIDEO_INPUT_CAVEAT = "video input: fal may price it differently"  # as in compile.compiler (not imported at start-up)


def price_text(amount: Decimal, uncertain: Decimal) -> str:
    from storyc.compile.compiler import price_text as text

    return text(amount, uncertain)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class Output:
    def __init__(self, fmt: str = "text") -> None:
        self.fmt: Format = "json" if fmt == "json" else "github" if fmt == "github" else "text"
        self.color: bool | None = False if os.environ.get("NO_COLOR") else None  # None: click decides (a tty)
        # What a failed JSON command still owes stdout: whether it wrote its document, and what it told stderr.
        self.wrote_data = False
        self._shown: list[Diagnostic] = []
        self._said: list[str] = []
        self._sources: dict[str, list[str] | None] = {}  # the lines of each file a diagnostic quotes

    @property
    def json(self) -> bool:
        return self.fmt == "json"

    # --- primitives -------------------------------------------------------------------------

    def echo(self, text: str = "", *, err: bool = False, nl: bool = True) -> None:
        if err and self.json and text:
            self._said.append(click.unstyle(text))
        elif self.json:
            self.wrote_data = True  # stdout has its document (`data`, or a format's own text, as diff's)
        click.echo(text, err=err, nl=nl, color=self.color)

    def text(self, text: str = "", *, err: bool = False) -> None:
        """A line for people: on stdout in text format, on stderr when stdout carries JSON."""
        self.echo(text, err=err or self.json)

    def data(self, payload: Any) -> None:
        from storyc.jsontext import dumps_indented  # json.dumps(indent=2, ensure_ascii=False), faster

        self.echo(dumps_indented(payload))

    def failed(self, diagnostics: Sequence[Diagnostic] = ()) -> None:
        """With --format json, a command that ends in failure before writing its JSON still writes one.

        `{"ok": false, "diagnostics": [...], "messages": [...]}`, the diagnostics as `check` gives
        them: stdout is valid JSON whatever happens, so a script can always parse it.
        """
        if not self.json or self.wrote_data:
            return
        shown = list(dict.fromkeys([*self._shown, *diagnostics]))
        located = {self.diagnostic_line(d) for d in shown} | {d.format() for d in shown}
        messages = [m for m in self._said if m not in located and click.unstyle(m) not in located]
        self.data({"ok": False, "diagnostics": [d.to_json() for d in shown], "messages": messages})

    @staticmethod
    def style(text: str, fg: str | None = None, *, bold: bool = False) -> str:
        return click.style(text, fg=fg, bold=bold)

    # --- diagnostics ------------------------------------------------------------------------

    def diagnostics(self, diagnostics: Iterable[Diagnostic], *, err: bool) -> None:
        """Each diagnostic for people: its line, the source line it is about with the fault underlined,
        and how to fix it; one line each in JSON (on stderr, beside the document) and for GitHub."""
        for d in diagnostics:
            self._shown.append(d)
            if self.fmt == "github":
                self.echo(github_annotation(d), err=err)
            elif self.json:
                self.echo(self.diagnostic_line(d), err=err)
            else:
                for line in self.diagnostic_block(d):
                    self.echo(line, err=err)

    def diagnostic_block(self, d: Diagnostic) -> list[str]:
        """rustc's form: `PATH:LINE:COL: error: MESSAGE`, then the source line with a caret under the
        fault labelled with the rule's code, then `= help:` lines; a blank line after."""
        from storyc.diagnostics import RULES

        title = f"{d.code} {RULES[d.code].title}" if d.code in RULES else d.code
        source = self._source_line(d)
        if source is None and not d.help and not title:
            return [self.diagnostic_line(d)]
        number = str(d.loc.line) if d.loc is not None and source is not None else ""
        gutter = " " * len(number) + " |"
        bar = self.style(gutter, "blue", bold=True)
        lines = [self.diagnostic_line(d)]
        if source is not None and d.loc is not None:
            padding, marks = underline(source, d.loc.col, d.width)
            colour = "red" if d.severity == "error" else "yellow"
            lines += [
                bar,
                f"{self.style(number + ' |', 'blue', bold=True)} {printable(source)}",
                f"{bar} {padding}{self.style('^' * marks + (' ' + title if title else ''), colour, bold=True)}",
            ]
        elif title:
            lines.append(f"{self.style(' ' * len(number) + ' =', 'blue', bold=True)} {title}")
        lines += [f"{self.style(' ' * len(number) + ' =', 'blue', bold=True)} help: {h}" for h in d.help]
        return [*lines, ""]

    def _source_line(self, d: Diagnostic) -> str | None:
        """The line a diagnostic is located at, read from its file (None: no location, or unreadable)."""
        if d.loc is None:
            return None
        if d.path not in self._sources:
            self._sources[d.path] = _read_lines(d.path)
        lines = self._sources[d.path]
        return lines[d.loc.line - 1] if lines is not None and 0 < d.loc.line <= len(lines) else None

    def diagnostic_line(self, d: Diagnostic) -> str:
        label = f"{d.severity}:"
        head, _, tail = d.format().partition(f" {label} ")
        colored = self.style(label, "red" if d.severity == "error" else "yellow", bold=True)
        return f"{head} {colored} {tail}"

    # --- compile ----------------------------------------------------------------------------

    def job(self, job: Job) -> None:
        from storyc.compile.compiler import money  # text shows cents; JSON every digit

        self.echo(self.style(f"{job.scene}  {job.seconds} s  {money(job.cost_usd)}  {job.key[:19]}", bold=True))
        if not job.price_certain:
            self.echo(f"  price     {job.price_text}")
        self.echo(f"  endpoint  {job.endpoint}")
        for position, name in job.references.items():
            self.echo(f"  {position:<10} @{name}")
        args = job.arguments
        from storyc.compile.compiler import REQUEST_SETTINGS

        settings = ", ".join(f"{k}={args[k]}" for k in REQUEST_SETTINGS if k in args)
        self.echo(f"  settings  {settings}")
        for key in ("start_image_url", "end_image_url"):
            if key in args:
                self.echo(f"  {key.removesuffix('_url').replace('_image', ' frame'):<9} {args[key]}")
        if "prompt" in args:
            self._block("prompt", args["prompt"])
        for i, shot in enumerate(args.get("multi_prompt", []), 1):
            self._block(f"shot {i} ({shot['duration']} s)", shot["prompt"])
        self.echo()

    def still(self, still: StillJob) -> None:
        """A still's request, as `job` shows a scene's."""
        head = f"{still.still}  {still.variants} x {still.resolution}  ${still.cost_usd}  {still.key[:19]}"
        self.echo(self.style(head, bold=True))
        if not still.price_certain:
            self.echo(f"  price     {'; '.join(still.price_notes)}")
        self.echo(f"  endpoint  {still.endpoint}")
        args = still.arguments
        for (words, name), image in zip(still.references.items(), args.get("image_urls", []), strict=True):
            self.echo(f"  {words:<10} @{name}  {image}")
        settings = f"num_images={args['num_images']}, aspect_ratio={args['aspect_ratio']}, pick={still.pick}"
        self.echo(f"  settings  {settings}")
        self._block("prompt", args["prompt"])
        self.echo()

    def _block(self, label: str, text: str) -> None:
        self.echo(f"  {label}:")
        for line in text.splitlines() or [""]:
            self.echo(f"    {line}")

    # --- plan and render --------------------------------------------------------------------

    def plan(self, plan: Plan, *, err: bool, profile: str | None = None) -> None:
        """The plan, a step a line, then its totals; `profile`: the board's profile it is for, said with it."""
        paid = plan.backend != "animatic"
        width = max((len(i.scene) for i in plan.items), default=5)
        for item in plan.items:
            state = self.style(f"{item.action:<7}", STATE_COLORS.get(item.action, "red"))
            price = f"  ${item.price:>7.2f}" if paid else ""
            note = item.shown_note
            if paid and item.price and item.caveat:
                note += f"; {item.caveat}"
            seconds = " " * 5 if item.is_still else f"{item.seconds:>3} s"
            self.echo(f"  {item.scene:<{width}}  {state} {seconds}{price}  {note}", err=err)
        for item in plan.items:
            if item.needed_by is not None and item.action != "cached":
                self.echo(f"  also: {item.scene} (needed by {item.needed_by})", err=err)
        named = f" (profile {profile})" if profile is not None else ""
        if plan.is_graph:
            self._graph_totals(plan, err=err, paid=paid)
            line = f"{plan.backend}{named}: {plural(len(plan.to_render), 'step')} to render"
        else:
            n_render, seconds_total = len(plan.to_render), sum(i.seconds for i in plan.to_render)
            line = f"{plan.backend}{named}: {plural(n_render, 'scene')} to render ({seconds_total} s)"
        if paid:
            line += f", {price_text(plan.cost, plan.uncertain)}; {plan.count('cached')} cached, "
            line += f"{plan.count('resume')} to resume at no new cost"
            if plan.count("store"):
                line += f"; {plan.count('store')} from the team store"
            if plan.count("unknown"):
                line += f"; {plan.count('unknown')} unknown (fal may have them; see above)"
        else:
            line += f", free; {plan.count('cached')} up to date"
        self.echo(self.style(line, bold=True), err=err)

    def _graph_totals(self, plan: Plan, *, err: bool, paid: bool) -> None:
        """A graph's totals by kind: stills (how many, $), video (scenes, seconds, $)."""
        stills = [i for i in plan.stills if i.action == "render"]
        scenes = [i for i in plan.scenes if i.action == "render"]
        seconds = sum(i.seconds for i in scenes)
        still_cost = sum((i.price for i in stills), Decimal("0.00"))
        video_cost = sum((i.price for i in scenes), Decimal("0.00"))
        still_line = f"  stills: {len(stills)} to render"
        video_line = f"  video: {plural(len(scenes), 'scene')} to render ({seconds} s)"
        if paid:
            still_line += f", ${still_cost:.2f}"
            video_line += f", ${video_cost:.2f}"
        self.echo(still_line, err=err)
        self.echo(video_line, err=err)

    def summary(self, compiled: CompiledBoard, summary: RenderSummary, notes: Sequence[str]) -> None:
        """The end of a render, on stderr (stdout is the JSON when asked for)."""
        for result in summary.results:
            if result.error:
                line, col = result.location or (0, 0)
                where = f"{compiled.storyboard}:{line}:{col}" if result.location else compiled.storyboard
                severity = "error" if result.state in ("failed", "lost", "unknown", "skipped") else "warning"
                self.echo(f"{where}: {severity}: {_step_words(result.scene)}: {result.error}", err=True)
            for note in result.notes:
                self.echo(f"{compiled.storyboard}: note: {_step_words(result.scene)}: {note}", err=True)
        for note in notes:
            self.echo(f"storyc: {note}", err=True)
        states: tuple[SceneState, ...] = (
            "done",
            "cached",
            "submitted",
            "unknown",
            "failed",
            "lost",
            "skipped",
            "interrupted",
        )
        tally = ", ".join(f"{summary.count(s)} {s}" for s in states if summary.count(s))
        tally += f"; spent ${summary.spent:.2f}" if summary.backend != "animatic" else "; free (animatic)"
        if summary.interrupted:
            tally += (
                " — interrupted: submitted renders stay in the lock; run render again to pick them up"
                if summary.backend != "animatic"
                else " — interrupted: run render again to finish"
            )
        self.echo(self.style(tally, bold=True), err=True)

    # --- status -----------------------------------------------------------------------------

    def statuses(self, statuses: Sequence[SceneStatus]) -> None:
        if self.json:
            stills = [s.to_json() for s in statuses if s.scene.startswith("still ")]
            scenes = [s.to_json() for s in statuses if not s.scene.startswith("still ")]
            self.data({"stills": stills, "scenes": scenes} if stills else {"scenes": scenes})
            return
        width = max((len(s.scene) for s in statuses), default=5)
        for s in statuses:
            state = self.style(f"{s.status:<9}", STATE_COLORS.get(s.status, "red"))
            self.echo(f"  {s.scene:<{width}}  {state} {s.detail}")

    # --- tiers --------------------------------------------------------------------------------

    def comparison(self, comparison: Comparison) -> None:
        """`plan --compare`: a scene per row, a profile or tier per column, totals last."""
        if self.json:
            self.data(comparison.to_json())
            return
        from storyc.compile.endpoints import tier_name

        label = tier_name if comparison.kind == "tiers" else str
        names = ["animatic", *(label(c) for c in comparison.columns)]
        width = max([len("total"), *(len(job.scene) for job, _ in comparison.rows)])
        width = max(width, len(plural(len(comparison.stills), "still"))) if comparison.stills else width
        cell = max([10, *(len(n) for n in names)])
        self.echo(f"  {'scene':<{width}}  {'s':>3}  " + "  ".join(f"{n:>{cell}}" for n in names))
        for job, row in comparison.rows:
            cells = ["free"] + [_cell(p.price, p.note) for p in row]
            self.echo(f"  {job.scene:<{width}}  {job.seconds:>3}  " + "  ".join(f"{c:>{cell}}" for c in cells))

        def total_line(name: str, total: Callable[[str], Decimal | None]) -> str:
            totals = ["free"] + [_cell(total(c), "") for c in comparison.columns]
            return f"  {name:<{width}}  {'':>3}  " + "  ".join(f"{c:>{cell}}" for c in totals)

        if comparison.stills:  # a board with stills: the scenes and the stills apart, then the whole graph
            self.echo(total_line("scenes", comparison.scenes_total))
            self.echo(total_line(plural(len(comparison.stills), "still"), comparison.stills_total))
        self.echo(self.style(total_line("total", comparison.total), bold=True))
        notes = {f"{job.scene} on {label(p.column)}: {p.note}" for job, row in comparison.rows for p in row}
        notes |= {f"still {s.still} on {label(p.column)}: {p.note}" for s, row in comparison.stills for p in row}
        for note in sorted(n for n in notes if not n.endswith(": ") and not n.endswith(": done")):
            self.echo(f"  refused: {note}")
        each = "tier" if comparison.kind == "tiers" else "profile"
        self.echo(f"  (what each {each} would cost now: renders the lock already has count $0.00)")


def _step_words(label: str) -> str:
    """`scene 'meet'`, or `still 'meet-open'` for a still's label (`still meet-open`)."""
    if label.startswith("still "):
        return f"still '{label.removeprefix('still ')}'"
    return f"scene '{label}'"


_MAX_QUOTED_FILE = 4 * 1024 * 1024  # a storyboard's own limit (compile.source.MAX_BOARD_BYTES)


def _read_lines(path: str) -> list[str] | None:
    from pathlib import Path

    from storyc.files import read_regular

    try:
        text = read_regular(Path(path), _MAX_QUOTED_FILE).decode("utf-8", "replace")
    except OSError:  # gone, unreadable, too large, not a regular file: the diagnostic's line says enough
        return None
    return [line.removesuffix("\r") for line in text.split("\n")]


def underline(line: str, col: int, width: int = 0) -> tuple[str, int]:
    """What goes under `line` to mark the fault at 1-based `col`: the padding before it (tabs kept, so
    the marks line up) and how many marks; `width` 0: the token there (a quoted or plain value, a key,
    an `@name`)."""
    start = min(col - 1, len(line))
    width = width or token_width(line, start)
    padding = "".join("\t" if c == "\t" else " " * _columns(c) for c in line[:start])
    return padding, max(1, sum(_columns(c) for c in line[start : start + width]))


def _columns(char: str) -> int:
    """How many terminal columns a character of a source line takes as printed: 2 for a wide one (CJK,
    most emoji), 0 for a combining mark, the length of its escape for a control character."""
    import unicodedata

    if unicodedata.combining(char):
        return 0
    if unicodedata.east_asian_width(char) in ("W", "F"):
        return 2
    return len(printable(char))


def token_width(line: str, start: int) -> int:
    """How long the YAML token starting at `line[start]` is: a quoted scalar to its closing quote, an
    `@name`, a key to its colon, a plain value to the end of its line (or its flow collection's ',')."""
    rest = line[start:]
    if not rest:
        return 1
    if rest[0] in "\"'":
        return _quoted_width(rest)
    if rest[0] in "{[|>":
        return 1
    named = re.match(r"@\w+", rest)
    if named:
        return named.end()
    in_flow = line[:start].count("{") + line[:start].count("[") > line[:start].count("}") + line[:start].count("]")
    stop = re.search(r":(?=\s|$)| #" + (r"|[,\]}]" if in_flow else ""), rest)
    return len(rest[: stop.start() if stop else len(rest)].rstrip()) or 1


def _quoted_width(rest: str) -> int:
    quote, i = rest[0], 1
    while i < len(rest):
        if quote == '"' and rest[i] == "\\":
            i += 2
            continue
        if rest[i] == quote:
            if quote == "'" and rest[i + 1 : i + 2] == "'":  # '' is a quote inside single quotes
                i += 2
                continue
            return i + 1
        i += 1
    return len(rest)


def github_annotation(d: Diagnostic) -> str:
    """A GitHub Actions workflow command: `::error file=PATH,line=L,col=C,title=SC012::MESSAGE`."""
    properties = {"file": d.path}
    if d.loc is not None:
        properties |= {"line": str(d.loc.line), "col": str(d.loc.col)}
    if d.code:
        properties["title"] = d.code
    fields = ",".join(f"{k}={_escape_property(v)}" for k, v in properties.items())
    message = "\n".join([d.text, *(f"help: {h}" for h in d.help)])
    return f"::{d.severity} {fields}::{_escape_data(message)}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _cell(price: Decimal | None, note: str) -> str:
    if price is None:
        return "refused"
    return "done" if note == "done" else f"${price:.2f}"
