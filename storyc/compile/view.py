"""What people see of a compiled scene: its shots with references by name, the
references' first assets, its frames, and where each request field was written.

The animatic cards, the storyboard sheet, `storyc diff`'s prompts and the
ledger's error locations all read this; none of it is sent.  It is cached with
the compiled jobs (`storyc.compile.cache`), so it has a JSON form, read back strictly:
anything unexpected is a `TypeError`/`ValueError` (a cache miss).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast, get_args

from storyc.compile.model import RefKind

Segment = tuple[str, str | None]  # (text, reference name or None), as in storyc.compile.references
_KINDS = frozenset(get_args(RefKind))


@dataclass(frozen=True, slots=True)
class RefView:
    """A reference a scene uses, shown by its first asset."""

    kind: RefKind
    asset: str  # a URL as written, or a local path relative to the board (normalized)
    description: str | None = None


@dataclass(frozen=True, slots=True)
class ShotView:
    """A shot (or a single-prompt scene's one prompt) and how long it lasts."""

    seconds: int
    segments: tuple[Segment, ...]  # the compiled prompt with references by name

    @property
    def text(self) -> str:
        """The compiled prompt with references as `@name`."""
        return "".join(text for text, _ in self.segments)

    @property
    def names(self) -> tuple[str, ...]:
        """The reference names the shot mentions, each once, in order."""
        return tuple(dict.fromkeys(name for _, name in self.segments if name))


@dataclass(frozen=True, slots=True)
class SceneView:
    """A compiled scene as people see it.  Its mappings are plain dicts, read-only by type."""

    aspect_ratio: str  # as in the request
    shots: tuple[ShotView, ...]
    refs: Mapping[str, RefView] = field(default_factory=dict)  # name -> reference, in request order
    start_frame: str | None = None  # local path relative to the board, or a URL
    end_frame: str | None = None
    # request field ("prompt", "multi_prompt.0", "start_image_url", ...; "scene" for the scene
    # itself) -> (line, col) in the YAML, so a service's error can point at a line
    locations: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "aspect_ratio": self.aspect_ratio,
            "shots": [{"seconds": s.seconds, "segments": [list(seg) for seg in s.segments]} for s in self.shots],
            "refs": {
                name: {"kind": r.kind, "asset": r.asset, "description": r.description} for name, r in self.refs.items()
            },
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "locations": {name: list(at) for name, at in self.locations.items()},
        }

    @classmethod
    def from_json(cls, data: Any) -> SceneView:
        return cls(
            aspect_ratio=_str(data["aspect_ratio"]),
            shots=tuple(map(_shot, _list(data["shots"]))),
            refs={
                _str(name): RefView(_kind(r["kind"]), _str(r["asset"]), _opt_str(r["description"]))
                for name, r in _dict(data["refs"]).items()
            },
            start_frame=_opt_str(data["start_frame"]),
            end_frame=_opt_str(data["end_frame"]),
            locations={_str(name): (_int(line), _int(col)) for name, (line, col) in _dict(data["locations"]).items()},
        )


def _shot(data: Any) -> ShotView:
    segments = tuple((_str(text), _opt_str(name)) for text, name in map(_list, data["segments"]))
    return ShotView(_int(data["seconds"]), segments)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, not {value!r}")
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _int(value: Any) -> int:
    if type(value) is not int:  # not a bool either
        raise TypeError(f"expected a whole number, not {value!r}")
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, not {value!r}")
    return value


def _dict(value: Any) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, not {value!r}")
    return value


def _kind(value: Any) -> RefKind:
    if value not in _KINDS:
        raise ValueError(f"unknown reference kind {value!r}")
    return cast("RefKind", value)
