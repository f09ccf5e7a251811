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
