"""Stage 4, resolve: `@name` -> `@ElementN` / `@ImageN`, per scene.

Per scene, characters are numbered `@Element1, @Element2, ...` and styles
`@Image1, ...` in order of first mention in the scene's final text (shots in
order), then the scene's `with:` names.  `@@` is a literal `@`; an `@` right
after a letter or digit (an e-mail address) is not a reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from storyc.compile import profiles
from storyc.compile.endpoints import Endpoint, reference_refusal
from storyc.compile.model import Character, Reference, Scene, Still, Storyboard, Style
from storyc.compile.names import lookalike_problem
from storyc.compile.source import JsonPath, display_path, locate_in_text
from storyc.compile.templates import RenderedScene, RenderedText
from storyc.compile.validate import DEFAULT_TEMPLATE, RESERVED_NAME
from storyc.diagnostics import (
    LOOKALIKE_REFERENCE,
    TOO_MANY_REFERENCES,
    UNKNOWN_REFERENCE,
    UNUSED,
    VIDEO_REFERENCES,
    Diagnostics,
    closest,
    did_you_mean,
)

_TOKEN = re.compile(r"@@|@([A-Za-z][A-Za-z0-9_]*)")
# An '@' and a word in any script: '@еllie' (Cyrillic 'е') is no reference, but reads as one.
_WORD = re.compile(r"@@|@(\w+)")

Segment = tuple[str, str | None]  # (text, reference name or None)


@dataclass(frozen=True, slots=True)
class Token:
    start: int
    end: int
    name: str | None  # None: an escaped '@@'


def tokens(text: str) -> tuple[Token, ...]:
    """The `@name` and `@@` tokens of a text; a text is read many times (checks, order, rewrite): once here."""
    return _tokens(text)


@lru_cache(maxsize=16384)
def _tokens(text: str) -> tuple[Token, ...]:
    found: list[Token] = []
    for match in _TOKEN.finditer(text):
        if match.group(0) == "@@":
            found.append(Token(match.start(), match.end(), None))
        elif match.start() > 0 and text[match.start() - 1].isalnum():
            continue  # an e-mail address, not a reference
        else:
            found.append(Token(match.start(), match.end(), match.group(1)))
    return tuple(found)


def mentions(text: str) -> list[str]:
    return [t.name for t in tokens(text) if t.name is not None]


@dataclass(frozen=True)
class ResolvedText:
    text: str  # what is sent: positional references, '@@' unescaped
    segments: tuple[Segment, ...]  # the same text with references by name, for people


@dataclass(frozen=True)
class ResolvedScene:
    rendered: RenderedScene
    prompt: ResolvedText | None
    shots: tuple[ResolvedText, ...]
    elements: tuple[Character, ...]
    images: tuple[Style, ...]

    @property
    def references(self) -> dict[str, str]:
        table = {f"@Element{i}": c.name for i, c in enumerate(self.elements, 1)}
        table.update({f"@Image{i}": s.name for i, s in enumerate(self.images, 1)})
        return table

    @property
    def positions(self) -> dict[str, str]:
        """name -> positional reference."""
        return {name: pos for pos, name in self.references.items()}


class Resolver:
    def __init__(self, board: Storyboard, diags: Diagnostics) -> None:
        self.board = board
        self.doc = board.doc
        self.diags = diags
        self.used: set[str] = set()

    def scene(self, rendered: RenderedScene, endpoint: Endpoint) -> ResolvedScene | None:
        scene = rendered.scene
        errors_before = self.diags.error_count
        reported: set[str] = set()
        for field in rendered.fields:
            self._check_field(field, reported)
        if any(name in self.board.broken_names for t in rendered.fields for name in mentions(t.text)):
            return None  # its declaration's errors are reported already
        if scene.has_errors:  # never sent; but every problem at once: its reference count too
            known = self._known(rendered)
            elements = tuple(r for r in known if isinstance(r, Character))
            self._check_counts(rendered, elements, tuple(r for r in known if isinstance(r, Style)), endpoint)
            return None
        texts = [rendered.prompt] if rendered.prompt is not None else list(rendered.shots)
        order: list[Reference] = []
        for text in texts:
            for name in mentions(text.text):
                self._collect(scene, name, text.origin, order, reported)
        for name, _node in scene.with_names:
            ref = self.board.reference(name)
            if ref is not None:
                self.used.add(name)
                if ref not in order:
                    order.append(ref)
        if self.diags.error_count > errors_before:
            return None
        elements = tuple(r for r in order if isinstance(r, Character))
        images = tuple(r for r in order if isinstance(r, Style))
        if not self._check_counts(rendered, elements, images, endpoint):
            return None
        positions = {c.name: f"@Element{i}" for i, c in enumerate(elements, 1)}
        positions.update({s.name: f"@Image{i}" for i, s in enumerate(images, 1)})
        resolved = [_rewrite(t.text, positions) for t in texts]
        if rendered.prompt is not None:
            return ResolvedScene(rendered, resolved[0], (), elements, images)
        return ResolvedScene(rendered, None, tuple(resolved), elements, images)

    def still(self, still: Still, rendered: RenderedText) -> list[Reference] | None:
        """The references a still's prompt names, in order of first mention, then its `with:` names;
        None after reporting an unknown one."""
        errors_before = self.diags.error_count
        self._check_field(rendered, set())
        names = mentions(rendered.text)
        if any(name in self.board.broken_names for name in names):
            return None  # its declaration's errors are reported already
        order: list[Reference] = []
        for name in names:
            ref = self.board.reference(name)
            if ref is not None and ref not in order:
                order.append(ref)
        for name, node in still.with_names:
            ref = self.board.reference(name)
            if ref is None:
                if name not in self.board.broken_names:
                    message = f"still '{still.name}': 'with' names unknown reference '{name}'"
                    self.diags.error(
                        UNKNOWN_REFERENCE, self.doc.loc(node), message + did_you_mean(name, self.board.names)
                    )
                continue
            self.used.add(name)
            if ref not in order:
                order.append(ref)
        return None if self.diags.error_count > errors_before else order

    def _known(self, rendered: RenderedScene) -> list[Reference]:
        """The declared references a scene's texts and `with:` name, in order of first mention."""
        order: list[Reference] = []
        names = [n for t in rendered.fields for n in mentions(t.text)] + [n for n, _ in rendered.scene.with_names]
        for name in names:
            ref = self.board.reference(name)
            if ref is not None and ref not in order:
                order.append(ref)
        return order

    def _check_field(self, field: RenderedText, reported: set[str]) -> None:
        if not field.text.isascii():
            self._check_lookalikes(field)
        seen: dict[str, int] = {}
        for token in tokens(field.text):
            name = token.name
            if name is None:
                continue
            occurrence = seen.get(name, 0)
            seen[name] = occurrence + 1
            if self.board.reference(name) is not None or name in self.board.broken_names:
                self.used.add(name)
                continue
            reported.add(name)
            loc = self.doc.locate_in_scalar(field.origin, f"@{name}", occurrence)
            self.diags.error(
                UNKNOWN_REFERENCE,
                loc,
                _unknown_message(name, self.board.names),
                help=_write_instead(name, self.board.names),
                width=len(name) + 1,
            )

    def _check_lookalikes(self, field: RenderedText) -> None:
        """Warn about '@еllie' (a Cyrillic 'е'): it is sent as text, though it reads as a reference."""
        seen: dict[str, int] = {}
        for match in _WORD.finditer(field.text):
            word = match.group(1)
            if word is None or (match.start() > 0 and field.text[match.start() - 1].isalnum()):
                continue
            occurrence = seen.get(word, 0)
            seen[word] = occurrence + 1
            prefix = _TOKEN.match(field.text, match.start())
            if prefix is not None and self.board.reference(prefix.group(1) or "") is not None:
                continue  # '@ellieが': the reference works, and the text goes on in another script
            problem = lookalike_problem(word, self.board.names)
            if problem is not None:
                self.diags.warning(
                    LOOKALIKE_REFERENCE, self.doc.locate_in_scalar(field.origin, f"@{word}", occurrence), problem
                )

    def _collect(self, scene: Scene, name: str, origin: JsonPath, order: list[Reference], reported: set[str]) -> None:
        ref = self.board.reference(name)
        if ref is None:
            if name not in reported and name not in self.board.broken_names:  # not in the scene's own texts
                reported.add(name)
                self._unknown_from_template(scene, name, origin)
            return
        self.used.add(name)
        if ref not in order:
            order.append(ref)

    def _unknown_from_template(self, scene: Scene, name: str, origin: JsonPath) -> None:
        """Report an unknown name that a template wrote: where it is written in the template, if it is."""
        message = _unknown_message(name, self.board.names)
        for used in (scene.template or DEFAULT_TEMPLATE, scene.shot_template):
            template = self.board.templates.get(used or "")
            if template is None:
                continue
            if template.file is None:
                loc = self.doc.find_in_scalar(template.path, f"@{name}")
                if loc is not None:
                    self.diags.error(UNKNOWN_REFERENCE, loc, message)
                    return
            else:
                loc = locate_in_text(template.source, f"@{name}")
                if loc is not None:
                    self.diags.error_in(UNKNOWN_REFERENCE, display_path(template.file), loc, message)
                    return
        self.diags.error(UNKNOWN_REFERENCE, self.doc.loc(origin), message)  # made up by template code: blame the scene

    def _check_counts(
        self,
        rendered: RenderedScene,
        elements: tuple[Character, ...],
        images: tuple[Style, ...],
        endpoint: Endpoint,
    ) -> bool:
        scene = rendered.scene
        loc = self.doc.loc((*scene.path, "id"))
        limits = endpoint.limits
        # The same scene may be refused in several profiles (one diagnostic, naming them: the words must
        # not differ by profile), or be fine in one and refused in another: the profile goes with it.
        on = "its endpoint" if scene.profile is not None else endpoint.id
        renders_on = (f"{profiles.label(scene.profile)} renders on {endpoint.id}",) if scene.profile else ()
        total = len(elements) + len(images)
        names = ", ".join([*(c.name for c in elements), *(s.name for s in images)])
        videos = [c.name for c in elements if c.video is not None]
        refusal = reference_refusal(limits, total, bool(videos))
        if refusal is not None and not refusal.with_video:
            self.diags.error(
                TOO_MANY_REFERENCES,
                loc,
                f"scene '{scene.id}' uses {total} references ({names}); "
                f"{on} accepts at most {limits.max_references} (characters + styles)",
                profile=scene.profile,
                help=renders_on,
            )
            return False
        if len(videos) > limits.max_video_elements:
            # fal's type text says "only one element with a video", but fal's own page for the
            # endpoint sends two video elements in its multi-shot example: warn, and send it.
            self.diags.warning(
                VIDEO_REFERENCES,
                loc,
                f"scene '{scene.id}' uses {len(videos)} video characters ({', '.join(videos)}); "
                f"fal's type text says \"only one element with a video\", though the {endpoint.id} page's "
                f'"Multi-shot with references" example sends two: fal may refuse the request',
            )
        if videos and total > limits.video_reference_limit:
            message = (
                f"scene '{scene.id}' uses {total} references with a video character ({names}); "
                f"fal documents at most {limits.video_reference_limit} when a video is involved"
            )
            if refusal is not None:
                self.diags.error(VIDEO_REFERENCES, loc, message, profile=scene.profile, help=renders_on)
                return False
            self.diags.warning(
                VIDEO_REFERENCES,
                loc,
                message + f" (the {endpoint.id} page states {limits.max_references})",
                profile=scene.profile,
            )
        return True

    def warn_unused(self) -> None:
        for name in self.board.names:
            if name not in self.used:
                ref = self.board.reference(name)
                assert ref is not None
                self.diags.warning(
                    UNUSED, self.doc.key_loc(ref.path), f"{ref.kind} '{name}' is declared but no scene uses it"
                )


def _write_instead(name: str, names: list[str]) -> tuple[str, ...]:
    """`write '@rex'`: the fix, when one name is close."""
    match = closest(name, names)
    return (f"write '@{match}'",) if match and not RESERVED_NAME.fullmatch(name) else ()


def _unknown_message(name: str, names: list[str]) -> str:
    if RESERVED_NAME.fullmatch(name):
        return (
            f"'@{name}' is a positional reference: write the character's or style's name "
            "(like @ellie); storyc numbers references per scene"
        )
    suggestion = did_you_mean(name, names)
    if not suggestion and not names:
        return (
            f"unknown reference '@{name}': declare it under 'characters' or 'styles' (or write '@@' for a literal '@')"
        )
    if not suggestion:  # nothing close: say what there is
        shown = sorted(names)
        listed = ", ".join(f"@{n}" for n in shown[:12]) + (f" and {len(shown) - 12} more" if len(shown) > 12 else "")
        return f"unknown reference '@{name}'; known: {listed}"
    return f"unknown reference '@{name}'{suggestion}"


def _rewrite(text: str, positions: dict[str, str]) -> ResolvedText:
    out: list[str] = []
    segments: list[Segment] = []
    last = 0
    for token in tokens(text):
        literal = text[last : token.start]
        if token.name is None:
            out.append(literal + "@")
            segments.append((literal + "@", None))
        else:
            out.append(literal + positions[token.name])
            segments.append((literal, None))
            segments.append((f"@{token.name}", token.name))
        last = token.end
    out.append(text[last:])
    segments.append((text[last:], None))
    merged: list[Segment] = []
    for seg in segments:
        if merged and seg[1] is None and merged[-1][1] is None:
            merged[-1] = (merged[-1][0] + seg[0], None)
        elif seg[0]:
            merged.append(seg)
    return ResolvedText("".join(out), tuple(merged))


rewrite = _rewrite  # a text with `@name`s put in each reference's words (`positions`): stills use it too
