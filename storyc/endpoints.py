"""The endpoint registry: one JSON file per fal endpoint in `schemas/endpoints/`.

Each file gives the endpoint's id, price per second, limits and input JSON
Schema, so supporting another endpoint is one new file, not new code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, cached_property
from typing import Any

from storyc.resources import schemas_dir


@dataclass(frozen=True)
class Limits:
    duration_min: int
    duration_max: int
    max_references: int
    video_reference_limit: int
    video_reference_limit_is_error: bool
    max_video_elements: int
    max_prompt_chars: int
    max_shot_prompt_chars: int
    max_shots: int
    shot_duration_min: int
    shot_duration_max: int
    element_reference_images_min: int
    element_reference_images_max: int


@dataclass(frozen=True)
class Endpoint:
    id: str
    title: str
    price_per_second: Decimal
    limits: Limits
    input_schema: dict[str, Any]
    source_bytes: bytes  # the file's bytes: part of the compile cache key

    def cost(self, seconds: int) -> Decimal:
        return (self.price_per_second * seconds).quantize(Decimal("0.01"))

    @cached_property
    def validator(self) -> Any:
        from jsonschema import Draft202012Validator

        return Draft202012Validator(self.input_schema)

    @cached_property
    def _verdicts(self) -> dict[bytes, list[Any]]:
        return {}

    def input_errors(self, arguments: dict[str, Any]) -> list[Any]:
        """Errors of `arguments` against the input schema.

        The compiler checks prompt lengths itself before this, so the verdict
        only depends on the request's shape: prompts are replaced by a
        placeholder and verdicts are memoized by that shape (most scenes of a
        board share a few shapes, and schema validation is the slow part).
        """
        shape = json.dumps(_without_prompts(arguments), sort_keys=True).encode()
        verdict = self._verdicts.get(shape)
        if verdict is None:
            verdict = self._verdicts[shape] = list(self.validator.iter_errors(arguments))
        return verdict


def _without_prompts(arguments: dict[str, Any]) -> dict[str, Any]:
    shaped = dict(arguments)
    if isinstance(shaped.get("prompt"), str) and shaped["prompt"]:
        shaped["prompt"] = "p"
    if isinstance(shaped.get("multi_prompt"), list):
        shaped["multi_prompt"] = [
            {**shot, "prompt": "p"} if isinstance(shot, dict) and shot.get("prompt") else shot
            for shot in shaped["multi_prompt"]
        ]
    return shaped


def _parse(raw: bytes) -> Endpoint:
    data = json.loads(raw)
    return Endpoint(
        id=data["id"],
        title=data.get("title", data["id"]),
        price_per_second=Decimal(str(data["price_usd_per_second"])),
        limits=Limits(**data["limits"]),
        input_schema=data["input"],
        source_bytes=raw,
    )


@cache
def registry() -> dict[str, Endpoint]:
    endpoints = (_parse(p.read_bytes()) for p in sorted((schemas_dir() / "endpoints").glob("*.json")))
    return {e.id: e for e in endpoints}


def get(endpoint_id: str) -> Endpoint | None:
    return registry().get(endpoint_id)


DEFAULT_ENDPOINT = "fal-ai/kling-video/o3/4k/reference-to-video"
