"""The endpoint registry: one JSON file per fal endpoint in `schemas/endpoints/`.

An endpoint file has a `kind`: `video` (the default, so the Kling files need no
such field) for the scenes' endpoints, priced per second; `image` for the
stills' endpoints, priced per image (`ImageEndpoint`).  `registry()` holds the
video endpoints a scene may use, `image_registry()` the image endpoints a still
may use; both come from the one folder through `catalog()`.

A video file gives the endpoint's id, price per second, limits (durations,
shots, references, prompt lengths), asset limits (image and video files, as
Kling documents them) and input JSON Schema, so supporting another endpoint
of the family is one new file, not new code: every limit storyc checks is
read from these files.  The board schema's own bounds (a duration of 3 to 15
s, 1 to 6 shots, 1 to 3 reference images) are the loosest of the registered
endpoints' (a test holds them to it); storyc checks each scene against its
own endpoint's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, cached_property
from typing import Any, Literal

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
class Refusal:
    """A request over an endpoint's reference limit: `total` references where it takes `limit`."""

    total: int
    limit: int
    with_video: bool  # the limit is the one for requests with a video element

    def __str__(self) -> str:
        return f"{self.total} references{' with a video' if self.with_video else ''}; at most {self.limit}"


def reference_refusal(limits: Limits, total: int, with_video: bool) -> Refusal | None:
    """Whether an endpoint refuses a request with `total` references (characters + styles).

    The one statement of the reference-count rules: the compiler reports a refusal as an error at
    the scene, `plan --compare` as the reason a tier refuses the request.
    """
    if total > limits.max_references:
        return Refusal(total, limits.max_references, False)
    if with_video and limits.video_reference_limit_is_error and total > limits.video_reference_limit:
        return Refusal(total, limits.video_reference_limit, True)
    return None


@dataclass(frozen=True)
class AssetLimits:
    """What a local reference file may be; a file can serve scenes of several endpoints."""

    image_formats: tuple[str, ...]
    image_max_bytes: int
    image_min_side: int
    image_max_aspect: float
    video_max_bytes: int

    def tightest(self, other: AssetLimits) -> AssetLimits:
        return AssetLimits(
            image_formats=tuple(f for f in self.image_formats if f in other.image_formats),
            image_max_bytes=min(self.image_max_bytes, other.image_max_bytes),
            image_min_side=max(self.image_min_side, other.image_min_side),
            image_max_aspect=min(self.image_max_aspect, other.image_max_aspect),
            video_max_bytes=min(self.video_max_bytes, other.video_max_bytes),
        )


@dataclass(frozen=True)
class _Endpoint:
    """What every endpoint file has: an id, an input JSON Schema, and its own bytes."""

    id: str
    title: str
    input_schema: dict[str, Any]
    source_bytes: bytes  # the file's bytes: part of the compile cache key

    @cached_property
    def validator(self) -> Any:
        from jsonschema import Draft202012Validator

        return Draft202012Validator(self.input_schema)

    @cached_property
    def _surely_valid(self) -> Callable[[Any], bool]:
        from storyc.compile.schemacheck import checker

        return checker(self.input_schema) or (lambda arguments: False)

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
            valid = self._surely_valid(arguments)  # jsonschema only to explain a bad request
            verdict = self._verdicts[shape] = [] if valid else list(self.validator.iter_errors(arguments))
        return verdict


@dataclass(frozen=True)
class Endpoint(_Endpoint):
    """A video endpoint (Kling): one scene's request, priced per second."""

    price_per_second: Decimal  # without generated audio
    price_per_second_with_audio: Decimal  # the same for a flat price (4K)
    limits: Limits
    assets: AssetLimits
    kind: Literal["video"] = "video"

    def cost(self, seconds: int, *, audio: bool = False) -> Decimal:
        """The exact price: 7 s at $0.084 is $0.588 (text shows cents, JSON every digit; fal bills the product)."""
        rate = self.price_per_second_with_audio if audio else self.price_per_second
        return rate * seconds

    @property
    def family(self) -> str:
        """`fal-ai/kling-video/o3/4k/reference-to-video` -> `fal-ai/kling-video/o3/*/reference-to-video`:
        the endpoints that take the same request at another fidelity (and price)."""
        parts = self.id.split("/")
        return "/".join([*parts[:-2], "*", parts[-1]]) if len(parts) >= 3 else self.id


@dataclass(frozen=True)
class ImageLimits:
    num_images_min: int
    num_images_max: int
    aspect_ratios: tuple[str, ...]
    resolutions: tuple[str, ...]
    default_resolution: str


@dataclass(frozen=True)
class ImageEndpoint(_Endpoint):
    """An image endpoint (a still's): priced per image, times its resolution's multiplier.

    `image_reference` is how the endpoint's prompt names its input images ("image {n}":
    the first is "image 1"); None for an endpoint that takes no input images.
    """

    price_per_image: Decimal
    resolution_multipliers: dict[str, Decimal]
    limits: ImageLimits
    image_reference: str | None
    # the same model the other way round (taking input images, or not): a still whose endpoint is a
    # default (target or profile) and whose prompt names references or none is made on the one that fits
    pair: str | None
    price_note: str | None  # why the per-image price is only an estimate (None: read from fal's page)
    variants_note: str  # what is not known of how fal bills several images in one request
    output: Literal["images"] = "images"  # what a request gives: `{"images": [{"url", ...}], ...}`
    kind: Literal["image"] = "image"

    @property
    def takes_images(self) -> bool:
        return self.image_reference is not None

    def image_name(self, position: int) -> str:
        """How the prompt names input image `position` (1-based): "image 2"."""
        assert self.image_reference is not None
        return self.image_reference.replace("{n}", str(position))

    def cost(self, resolution: str, images: int) -> Decimal:
        """The price of `images` images at `resolution` in one request (each billed as one image)."""
        return self.price_per_image * self.resolution_multipliers[resolution] * images  # exact, as for video


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


def _price(value: Any, which: str) -> Decimal:
    """A flat price (`0.42`) or one per audio setting (`{"audio_off": 0.084, "audio_on": 0.112}`)."""
    return Decimal(str(value[which] if isinstance(value, dict) else value))


def tier_name(endpoint_id: str) -> str:
    """`fal-ai/kling-video/o3/pro/reference-to-video` -> `pro`: how people name a tier."""
    parts = endpoint_id.split("/")
    return parts[-2] if len(parts) >= 2 else endpoint_id


def tiers(endpoint_id: str) -> list[Endpoint]:
    """Every registered endpoint of `endpoint_id`'s family, cheapest first (the same request, other fidelity)."""
    wanted = registry()[endpoint_id].family
    return sorted((e for e in registry().values() if e.family == wanted), key=lambda e: (e.price_per_second, e.id))


def _parse(raw: bytes) -> Endpoint | ImageEndpoint:
    data = json.loads(raw)
    if data.get("kind", "video") == "image":
        return _parse_image(data, raw)
    return Endpoint(
        id=data["id"],
        title=data.get("title", data["id"]),
        price_per_second=_price(data["price_usd_per_second"], "audio_off"),
        price_per_second_with_audio=_price(data["price_usd_per_second"], "audio_on"),
        limits=Limits(**data["limits"]),
        assets=AssetLimits(**{**data["assets"], "image_formats": tuple(data["assets"]["image_formats"])}),
        input_schema=data["input"],
        source_bytes=raw,
    )


def _parse_image(data: dict[str, Any], raw: bytes) -> ImageEndpoint:
    if data["output"] != "images":
        raise ValueError(f"{data['id']}: an image endpoint gives images, not {data['output']!r}")
    limits = data["limits"]
    return ImageEndpoint(
        id=data["id"],
        title=data.get("title", data["id"]),
        input_schema=data["input"],
        source_bytes=raw,
        price_per_image=Decimal(str(data["price_usd_per_image"])),
        resolution_multipliers={k: Decimal(str(v)) for k, v in data["resolution_multipliers"].items()},
        limits=ImageLimits(
            num_images_min=limits["num_images_min"],
            num_images_max=limits["num_images_max"],
            aspect_ratios=tuple(limits["aspect_ratios"]),
            resolutions=tuple(limits["resolutions"]),
            default_resolution=limits["default_resolution"],
        ),
        image_reference=data["image_reference"] if data.get("takes_images") else None,
        pair=data.get("pair"),
        price_note=data.get("price_note"),
        variants_note=data["variants_note"],
    )


def _load() -> list[Endpoint | ImageEndpoint]:
    return [_parse(p.read_bytes()) for p in sorted((schemas_dir() / "endpoints").glob("*.json"))]


@cache
def registry() -> dict[str, Endpoint]:
    """The video endpoints: what a scene may be rendered on."""
    return {e.id: e for e in _load() if isinstance(e, Endpoint)}


@cache
def image_registry() -> dict[str, ImageEndpoint]:
    """The image endpoints: what a still may be made on."""
    return {e.id: e for e in _load() if isinstance(e, ImageEndpoint)}


def catalog() -> dict[str, Endpoint | ImageEndpoint]:
    """Every endpoint file, video and image, by id."""
    return {**registry(), **image_registry()}


def clear_caches() -> None:
    """Forget the loaded files (tests that swap the endpoints folder)."""
    for loaded in (registry, image_registry, asset_limits):
        loaded.cache_clear()


def get(endpoint_id: str) -> Endpoint | None:
    return registry().get(endpoint_id)


def get_image(endpoint_id: str) -> ImageEndpoint | None:
    return image_registry().get(endpoint_id)


@cache
def asset_limits() -> AssetLimits:
    """The tightest asset limits of every registered endpoint: what any scene may send."""
    from functools import reduce

    return reduce(AssetLimits.tightest, (e.assets for e in registry().values()))


DEFAULT_ENDPOINT = "fal-ai/kling-video/o3/4k/reference-to-video"
# A still's endpoint when neither it nor the target names one: the edit endpoint when its prompt
# names reference images, the text-to-image one when it names none.
DEFAULT_STILL_ENDPOINT = "fal-ai/nano-banana-2/edit"
DEFAULT_TEXT_STILL_ENDPOINT = "fal-ai/nano-banana-2"
