"""Input validation the way a fal model runner reports it: a list of `{loc, msg, type, input}` objects.

The video endpoints' rules come from the endpoint files in `schemas/endpoints/` (the `input` JSON
Schema and `limits`), plus the checks a runner makes when it fetches the inputs: every asset field must
be an http(s) URL, URLs on the fake's own storage must exist, and what they point to must look like an
image.

The image endpoints (nano-banana-2 and its edit variant, fal-facts.md section 6) are defined here, in
the fake, and win over any endpoint file with the same id: the fake models what fal accepts, which
must not move when storyc's own data files about those endpoints change.

The fake never imports `storyc`: it is a model of fal, not of the code under test.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator

DEFAULT_SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas" / "endpoints"

PROMPT_ONE_OF_MSG = "Either 'prompt' or 'multi_prompt' must be provided, but not both."
ELEMENT_ONE_OF_MSG = (
    "An element needs either frontal_image_url and reference_image_urls (1-3 images), or a video_url, not both."
)

# pydantic-v1 style messages, as in the one real fal 422 body we have (fal-facts.md 1.7).
_TYPE_MESSAGES: dict[str, tuple[str, str]] = {
    "string": ("str type expected", "type_error.str"),
    "array": ("value is not a valid list", "type_error.list"),
    "object": ("value is not a valid dict", "type_error.dict"),
    "boolean": ("value could not be parsed to a boolean", "type_error.bool"),
    "integer": ("value is not a valid integer", "type_error.integer"),
    "number": ("value is not a valid float", "type_error.float"),
}

_IMAGE_MAGIC: tuple[tuple[int, bytes], ...] = (
    (0, b"\x89PNG\r\n\x1a\n"),
    (0, b"\xff\xd8\xff"),
    (0, b"GIF87a"),
    (0, b"GIF89a"),
    (8, b"WEBP"),
    (4, b"ftypavif"),
    (4, b"ftypavis"),  # an AVIF image sequence: fal's page takes avif
)

Detail = dict[str, Any]
EndpointKind = Literal["video", "image"]

IMAGE_EDIT_ENDPOINT = "fal-ai/nano-banana-2/edit"
IMAGE_TEXT_ENDPOINT = "fal-ai/nano-banana-2"
IMAGE_ASPECT_RATIOS = (
    *("auto", "21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16"),
    *("4:1", "1:4", "8:1", "1:8"),
)
IMAGE_OUTPUT_FORMATS = ("png", "jpeg", "webp")
IMAGE_RESOLUTIONS = ("0.5K", "1K", "2K", "4K")
MAX_IMAGES = 4


@dataclass(frozen=True)
class Endpoint:
    """One endpoint file: its id, limits and input schema (with a ready validator)."""

    id: str
    input_schema: dict[str, Any]
    limits: dict[str, Any]
    path: Path
    validator: Any = field(repr=False, compare=False)
    kind: EndpointKind = "video"

    @property
    def owner_alias(self) -> str:
        """`fal-ai/kling-video`: the part of the id the queue's request URLs use."""
        return "/".join(self.id.split("/")[:2])


def image_input_schema(*, takes_images: bool) -> dict[str, Any]:
    """nano-banana-2's input (fal-facts.md section 6): the edit endpoint requires `image_urls`, the
    text-to-image one has no such field (so sending it is an extra field, refused like any other)."""
    properties: dict[str, Any] = {
        "prompt": {"type": "string"},
        "num_images": {"type": "integer", "minimum": 1, "maximum": MAX_IMAGES, "default": 1},
        "seed": {"type": "integer"},
        "aspect_ratio": {"enum": list(IMAGE_ASPECT_RATIOS), "default": "auto"},
        "output_format": {"enum": list(IMAGE_OUTPUT_FORMATS), "default": "png"},
        "resolution": {"enum": list(IMAGE_RESOLUTIONS), "default": "1K"},
        "safety_tolerance": {"enum": ["1", "2", "3", "4", "5", "6"], "default": "4"},
        "limit_generations": {"type": "boolean"},
        "enable_web_search": {"type": "boolean"},
    }
    required = ["prompt"]
    if takes_images:
        properties["image_urls"] = {"type": "array", "items": {"type": "string"}}
        required.append("image_urls")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "required": required,
    }


def image_endpoints() -> dict[str, Endpoint]:
    """The image endpoints the fake serves, defined here rather than read from `schemas/endpoints/`."""
    endpoints: dict[str, Endpoint] = {}
    for endpoint_id, takes_images in ((IMAGE_EDIT_ENDPOINT, True), (IMAGE_TEXT_ENDPOINT, False)):
        schema = image_input_schema(takes_images=takes_images)
        Draft202012Validator.check_schema(schema)
        endpoints[endpoint_id] = Endpoint(
            id=endpoint_id,
            input_schema=schema,
            limits={},
            path=Path(__file__),
            validator=Draft202012Validator(schema),
            kind="image",
        )
    return endpoints


def load_endpoints(directory: Path | None = None) -> dict[str, Endpoint]:
    """Every `*.json` endpoint file in `directory`, keyed by its `id`, plus the fake's own image endpoints.

    A file about an image endpoint is skipped unread: the fake's definition of it is the one that counts.
    """
    directory = directory or DEFAULT_SCHEMAS_DIR
    own = image_endpoints()
    endpoints: dict[str, Endpoint] = {}
    for path in sorted(directory.glob("*.json")):
        raw = json.loads(path.read_text("utf-8"))
        if raw.get("id") in own:
            continue
        schema = raw["input"]
        Draft202012Validator.check_schema(schema)
        endpoints[raw["id"]] = Endpoint(
            id=raw["id"],
            input_schema=schema,
            limits=dict(raw.get("limits", {})),
            path=path,
            validator=Draft202012Validator(schema),
        )
    if not endpoints:
        raise FileNotFoundError(f"no endpoint files in {directory}")
    return {**endpoints, **own}


@dataclass
class FileCheck:
    """What the fake's storage says about a URL: not ours (None), missing, or its first bytes."""

    ours: bool
    exists: bool = False
    head: bytes = b""
    content_type: str = ""


@dataclass
class Verdict:
    """Validation outcome: `errors` make the job fail with 422; `warnings` only go to the job's logs."""

    errors: list[Detail] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _detail(loc: list[Any], msg: str, type_: str, value: Any, ctx: dict[str, Any] | None = None) -> Detail:
    detail: Detail = {"loc": ["body", *loc], "msg": msg, "type": type_, "input": value}
    if ctx:
        detail["ctx"] = ctx
    return detail


def _schema_errors(endpoint: Endpoint, payload: Any) -> list[Detail]:
    out: list[Detail] = []
    errors = sorted(endpoint.validator.iter_errors(payload), key=lambda e: [str(p) for p in e.absolute_path])
    for error in errors:
        loc = list(error.absolute_path)
        kind = error.validator
        value = error.instance
        if kind == "required":
            out.extend(
                _detail([*loc, name], "field required", "value_error.missing", None)
                for name in error.validator_value
                if isinstance(value, dict) and name not in value
            )
        elif kind == "additionalProperties":
            known = set(error.schema.get("properties", {}))
            out.extend(
                _detail([*loc, name], "extra fields not permitted", "value_error.extra", value[name])
                for name in value
                if name not in known
            )
        elif kind == "enum":
            permitted = ", ".join(repr(v) for v in error.validator_value)
            out.append(
                _detail(
                    loc,
                    f"value is not a valid enumeration member; permitted: {permitted}",
                    "type_error.enum",
                    value,
                    {"enum_values": list(error.validator_value)},
                )
            )
        elif kind == "type":
            expected = error.validator_value if isinstance(error.validator_value, str) else "value"
            msg, type_ = _TYPE_MESSAGES.get(expected, (error.message, "type_error"))
            out.append(_detail(loc, msg, type_, value))
        elif kind in ("minLength", "maxLength"):
            word = "least" if kind == "minLength" else "most"
            suffix = "min_length" if kind == "minLength" else "max_length"
            limit = error.validator_value
            out.append(
                _detail(
                    loc,
                    f"ensure this value has at {word} {limit} characters",
                    f"value_error.any_str.{suffix}",
                    value,
                    {"limit_value": limit},
                )
            )
        elif kind in ("minItems", "maxItems"):
            word = "least" if kind == "minItems" else "most"
            suffix = "min_items" if kind == "minItems" else "max_items"
            limit = error.validator_value
            out.append(
                _detail(
                    loc,
                    f"ensure this value has at {word} {limit} items",
                    f"value_error.list.{suffix}",
                    value,
                    {"limit_value": limit},
                )
            )
        elif kind in ("minimum", "maximum"):
            word, suffix = ("greater", "ge") if kind == "minimum" else ("less", "le")
            limit = error.validator_value
            out.append(
                _detail(
                    loc,
                    f"ensure this value is {word} than or equal to {limit}",
                    f"value_error.number.not_{suffix}",
                    value,
                    {"limit_value": limit},
                )
            )
        elif kind == "oneOf" and not loc:
            # The real sample (fal-facts 1.7) reports the model-level rule at ["body", "root"].
            out.append(_detail(["root"], PROMPT_ONE_OF_MSG, "value_error", value))
        elif kind == "oneOf" and loc[:1] == ["elements"]:
            out.append(_detail(loc, ELEMENT_ONE_OF_MSG, "value_error", value))
        else:
            out.append(_detail(loc, error.message, f"value_error.{kind}", value))
    return out


def asset_fields(payload: Any) -> Iterator[tuple[list[Any], Any, str]]:
    """(loc, value, kind) for every asset URL field in a payload (video or image endpoint); kind is image/video."""
    if not isinstance(payload, dict):
        return
    for name in ("start_image_url", "end_image_url"):
        if name in payload:
            yield [name], payload[name], "image"
    image_urls = payload.get("image_urls")
    if isinstance(image_urls, list):
        for i, url in enumerate(image_urls):
            yield ["image_urls", i], url, "image"
    elements = payload.get("elements")
    if isinstance(elements, list):
        for i, element in enumerate(elements):
            if not isinstance(element, dict):
                continue
            if "frontal_image_url" in element:
                yield ["elements", i, "frontal_image_url"], element["frontal_image_url"], "image"
            refs = element.get("reference_image_urls")
            if isinstance(refs, list):
                for j, url in enumerate(refs):
                    yield ["elements", i, "reference_image_urls", j], url, "image"
            if "video_url" in element:
                yield ["elements", i, "video_url"], element["video_url"], "video"


def _url_errors(payload: Any, check_file: Callable[[str], FileCheck], accept_data_uris: bool) -> list[Detail]:
    out: list[Detail] = []
    for loc, value, kind in asset_fields(payload):
        if not isinstance(value, str) or not value:
            continue  # the schema already reported it
        parts = urlsplit(value)
        scheme = parts.scheme.lower()
        if scheme == "data":
            if not accept_data_uris:
                out.append(_detail(loc, "URL scheme should be 'http' or 'https'", "url_scheme", value))
            continue
        if not scheme or "://" not in value:
            out.append(_detail(loc, "Input should be a valid URL, relative URL without a base", "url_parsing", value))
            continue
        if scheme not in ("http", "https"):
            out.append(_detail(loc, "URL scheme should be 'http' or 'https'", "url_scheme", value))
            continue
        if not parts.hostname:
            out.append(_detail(loc, "Input should be a valid URL, empty host", "url_parsing", value))
            continue
        found = check_file(value)
        if not found.ours:
            continue
        if not found.exists:
            out.append(
                _detail(
                    loc,
                    f"Failed to download the file from {value}: 404 Not Found",
                    "file_download_error",
                    value,
                )
            )
        elif kind == "image" and not any(found.head[at : at + len(magic)] == magic for at, magic in _IMAGE_MAGIC):
            out.append(
                _detail(
                    loc,
                    "Failed to load the image. Please ensure the image file is not corrupted "
                    "and is in a supported format.",
                    "image_load_error",
                    value,
                )
            )
    return out


def _reference_errors(endpoint: Endpoint, payload: Any, verdict: Verdict) -> None:
    if not isinstance(payload, dict):
        return
    limits = endpoint.limits
    elements: list[Any] = payload["elements"] if isinstance(payload.get("elements"), list) else []
    images: list[Any] = payload["image_urls"] if isinstance(payload.get("image_urls"), list) else []
    total = len(elements) + len(images)
    max_refs = limits.get("max_references")
    if max_refs is not None and total > max_refs:
        verdict.errors.append(
            _detail(
                [],
                f"Too many references: {len(elements)} elements + {len(images)} reference images = {total}; "
                f"at most {max_refs} are allowed.",
                "value_error",
                {"elements": len(elements), "image_urls": len(images)},
                {"limit_value": max_refs},
            )
        )
    videos = [e for e in elements if isinstance(e, dict) and "video_url" in e]
    max_videos = limits.get("max_video_elements")
    if max_videos is not None and len(videos) > max_videos:
        # fal's type text says "only one element with a video", yet fal's own page for the endpoint sends two
        # in its multi-shot example: which of the two fal enforces is unknown, so the fake accepts and logs it.
        verdict.warnings.append(
            f"{len(videos)} elements with a video; fal's type text says a request can only have one element "
            "with a video (its own multi-shot example sends two)."
        )
    video_limit = limits.get("video_reference_limit")
    if videos and video_limit is not None and total > video_limit:
        text = f"{total} references with a video element; at most {video_limit} are supported with a video."
        if limits.get("video_reference_limit_is_error"):
            verdict.errors.append(_detail([], text, "value_error", total, {"limit_value": video_limit}))
        else:
            verdict.warnings.append(text)


def _shot_duration_errors(payload: Any) -> list[Detail]:
    shots = payload.get("multi_prompt") if isinstance(payload, dict) else None
    if not isinstance(shots, list) or "duration" not in payload:
        return []
    try:
        total = sum(int(s.get("duration", "5")) for s in shots if isinstance(s, dict))
        wanted = int(payload["duration"])
    except (TypeError, ValueError):
        return []
    if total == wanted:
        return []
    return [
        _detail(
            ["multi_prompt"],
            f"The shot durations add up to {total}s but duration is {wanted}s.",
            "value_error",
            total,
        )
    ]


def validate_payload(
    endpoint: Endpoint,
    payload: Any,
    *,
    check_file: Callable[[str], FileCheck],
    accept_data_uris: bool = False,
    strict_shot_durations: bool = False,
) -> Verdict:
    """Validate `payload` for `endpoint`; an empty `errors` list means the job succeeds."""
    verdict = Verdict(errors=_schema_errors(endpoint, payload))
    _reference_errors(endpoint, payload, verdict)
    verdict.errors.extend(_url_errors(payload, check_file, accept_data_uris))
    if strict_shot_durations:
        verdict.errors.extend(_shot_duration_errors(payload))
    return verdict


def output_duration(payload: Any) -> int:
    """Seconds of video the job produces: `duration`, else the sum of the shots, else 5."""
    if not isinstance(payload, dict):
        return 5
    try:
        if "duration" in payload:
            return int(payload["duration"])
        shots = payload.get("multi_prompt")
        if isinstance(shots, list) and shots:
            return sum(int(s.get("duration", "5")) for s in shots if isinstance(s, dict))
    except (TypeError, ValueError):
        return 5
    return 5


def prompts(payload: Any) -> list[str]:
    """The prompt and every shot prompt of a payload (for fail_jobs_matching)."""
    if not isinstance(payload, dict):
        return []
    out = [payload["prompt"]] if isinstance(payload.get("prompt"), str) else []
    shots = payload.get("multi_prompt")
    if isinstance(shots, list):
        out.extend(s["prompt"] for s in shots if isinstance(s, dict) and isinstance(s.get("prompt"), str))
    return out
