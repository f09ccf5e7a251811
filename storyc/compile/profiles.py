"""Fidelity profiles: which named set of request settings a compile uses.

A board may declare `profiles:` (say `draft` on O3 standard, `final` in 4K), each
overriding `target:`; a scene's own settings still win.  One compile is one
profile: the endpoint is part of every request, so each profile's scenes have
keys of their own, and the lock keeps drafts and finals side by side.

A board without `profiles:` has one unnamed profile (`None`): `target` as written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storyc.compile.source import JsonPath
from storyc.diagnostics import StorycError, did_you_mean

# The settings a profile (or `target`) may give; a scene may override each of them.
SETTINGS = ("endpoint", "aspect_ratio", "generate_audio", "shot_type", "duration", "still_endpoint", "still_resolution")


class UnknownProfile(StorycError):
    """`--profile NAME` names no profile of the board (a command-line mistake: exit status 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Profile:
    name: str | None  # None: the board declares no profiles
    settings: dict[str, Any]  # `target` with the profile's settings over it
    where: dict[str, JsonPath]  # each setting's YAML node, to point a diagnostic at it


def declared(data: Any) -> list[str]:
    """The board's profile names, in the order written (none for a board without `profiles:`)."""
    profiles = data.get("profiles") if isinstance(data, dict) else None
    return [str(name) for name in profiles] if isinstance(profiles, dict) else []


def default_name(data: Any) -> str | None:
    """The profile used without `--profile`: `default_profile` when it names one, else the first declared."""
    names = declared(data)
    chosen = data.get("default_profile") if isinstance(data, dict) else None
    if isinstance(chosen, str) and chosen in names:
        return chosen
    return names[0] if names else None


def selected_name(data: Any, requested: str | None, board: str) -> str | None:
    """The profile a compile uses; raises UnknownProfile for a name the board does not declare."""
    names = declared(data)
    if requested is None:
        return default_name(data)
    if requested not in names:
        if not names:
            raise UnknownProfile(f"--profile {requested}: {board} declares no profiles (add a `profiles:` table)")
        raise UnknownProfile(
            f"--profile: no profile '{requested}' in {board}{did_you_mean(requested, names)}; "
            f"profiles: {', '.join(names)}"
        )
    return requested


def resolve(data: dict[str, Any], name: str | None, usable: set[JsonPath]) -> Profile:
    """`target` with profile `name`'s settings over it; `usable` says which tables passed the schema."""
    settings: dict[str, Any] = {}
    where: dict[str, JsonPath] = {}
    layers: list[tuple[Any, JsonPath]] = [(data.get("target"), ("target",))]
    if name is not None:
        layers.append(((data.get("profiles") or {}).get(name), ("profiles", name)))
    for table, path in layers:
        if path not in usable or not isinstance(table, dict):
            continue
        for key in SETTINGS:
            if key in table:
                settings[key] = table[key]
                where[key] = (*path, key)
    return Profile(name, settings, where)


def label(name: str | None) -> str:
    """How a profile is named in messages: "profile 'draft'", or '' for a board without profiles."""
    return f"profile '{name}'" if name is not None else ""
