"""Stills -> one request (`StillJob`) each, to an image endpoint.

A still's prompt is rendered through the sandboxed templates like every
text; its `@name`s become the endpoint's `image_urls` in order of first
mention (then its `with:` names): a character's frontal, a style's image.
The prompt names each input image in the endpoint's words (its data file's
`image_reference`, "image {n}": `@ellie` -> "image 1"), so positions stay the
compiler's job, as for video.  `variants` is sent as `num_images`.

The endpoint: the still's own, taken as written; else the profile's or
target's `still_endpoint`, or that endpoint's `pair` in its data file when
only the pair fits the prompt (`still_endpoint: fal-ai/nano-banana-2/edit`
makes a still naming no reference on `fal-ai/nano-banana-2`); else storyc's
default: the edit endpoint when the prompt names references, the
text-to-image one when it names none.
"""

from __future__ import annotations

from typing import Any

from storyc.compile import endpoints
from storyc.compile.assets import Assets
from storyc.compile.compiler import Edge, StillJob, content_key, edge_of
from storyc.compile.endpoints import ImageEndpoint
from storyc.compile.graph import Graph, still_image, still_needs
from storyc.compile.model import Character, Reference, Still, Storyboard, Upstream
from storyc.compile.references import Resolver, mentions, rewrite
from storyc.compile.source import JsonPath
from storyc.compile.templates import RenderedText
from storyc.diagnostics import (
    ENDPOINT_SETTING,
    PROMPT_LENGTH,
    REQUEST_SCHEMA,
    STILL_INPUTS,
    UNKNOWN_ENDPOINT,
    Diagnostics,
    did_you_mean,
)


class StillBuilder:
    def __init__(self, board: Storyboard, assets: Assets, resolver: Resolver, graph: Graph, diags: Diagnostics) -> None:
        self.board = board
        self.doc = board.doc
        self.assets = assets
        self.resolver = resolver
        self.graph = graph
        self.diags = diags

    def build(self, still: Still, rendered: RenderedText) -> StillJob | None:
        errors_before = self.diags.error_count
        refs = self.resolver.still(still, rendered)
        if refs is None:
            return None
        self.graph.add(("still", still.name), still_needs(refs))
        endpoint = self._endpoint(still, refs)
        if endpoint is None or not self._check_references(still, rendered, refs, endpoint):
            return None
        resolution = still.resolution or endpoint.limits.default_resolution
        self._check_settings(still, endpoint, resolution)
        if not rendered.text.strip():
            empty = f"still '{still.name}': the prompt is empty after templates"
            self.diags.error(PROMPT_LENGTH, self.doc.loc(rendered.origin), empty)
        images, edges = self._images(refs)
        if self.diags.error_count > errors_before or images is None:
            return None
        positions = {ref.name: endpoint.image_name(i) for i, ref in enumerate(refs, 1)} if refs else {}
        prompt = rewrite(rendered.text, positions)
        arguments: dict[str, Any] = {"prompt": prompt.text}
        if images:
            arguments["image_urls"] = images
        arguments.update(num_images=still.variants, aspect_ratio=still.aspect_ratio, resolution=resolution)
        if not self._check_schema(still, endpoint, arguments):
            return None
        files = {v: self.assets.files[v] for v in images if v in self.assets.files}
        notes = [note for note in (endpoint.price_note,) if note]
        if still.variants > 1:
            notes.append(endpoint.variants_note)
        return StillJob(
            still=still.name,
            endpoint=endpoint.id,
            arguments=arguments,
            references={endpoint.image_name(i): ref.name for i, ref in enumerate(refs, 1)} if refs else {},
            segments=prompt.segments,
            variants=still.variants,
            pick=still.pick,
            resolution=resolution,
            cost_usd=endpoint.cost(resolution, still.variants),
            key=content_key(endpoint.id, arguments, files, edges),
            price_notes=tuple(notes),
            files=files,
            depends_on=edges,
        )

    def _endpoint(self, still: Still, refs: list[Reference]) -> ImageEndpoint | None:
        """The still's own endpoint; else the profile's or target's, or its pair when only that one fits
        the prompt (references or none); else storyc's default for such a prompt."""
        default = endpoints.DEFAULT_STILL_ENDPOINT if refs else endpoints.DEFAULT_TEXT_STILL_ENDPOINT
        chosen = still.endpoint or default
        endpoint = endpoints.get_image(chosen)
        if endpoint is not None and "endpoint" not in still.raw and endpoint.takes_images != bool(refs):
            pair = endpoints.get_image(endpoint.pair or "")
            if pair is not None and pair.takes_images == bool(refs):
                return pair
        if endpoint is None:
            known = list(endpoints.image_registry())
            self.diags.error(
                UNKNOWN_ENDPOINT,
                self.doc.loc(still.where.get("endpoint", still.path)),
                f"still '{still.name}': unknown image endpoint '{chosen}'{did_you_mean(chosen, known)}; "
                f"known: {', '.join(known)}",
            )
        return endpoint

    def _check_references(
        self, still: Still, rendered: RenderedText, refs: list[Reference], endpoint: ImageEndpoint
    ) -> bool:
        if refs and not endpoint.takes_images:
            first = refs[0].name
            loc = (
                self.doc.locate_in_scalar(rendered.origin, f"@{first}", 0)
                if first in mentions(rendered.text)
                else self.doc.loc(still.path)
            )
            self.diags.error(
                STILL_INPUTS,
                loc,
                f"still '{still.name}' names @{first}, but {endpoint.id} takes no input images; "
                f"use an endpoint that does (like {endpoints.DEFAULT_STILL_ENDPOINT})",
            )
            return False
        if not refs and "image_urls" in endpoint.input_schema.get("required", ()):
            self.diags.error(
                STILL_INPUTS,
                self.doc.loc(still.where.get("endpoint", still.path)),
                f"still '{still.name}' names no character or style, but {endpoint.id} needs input images: "
                f"name one (@name), or use an endpoint that takes none (like {endpoints.DEFAULT_TEXT_STILL_ENDPOINT})",
            )
            return False
        videos = [r.name for r in refs if isinstance(r, Character) and r.video is not None]
        if videos:
            self.diags.error(
                STILL_INPUTS,
                self.doc.loc(rendered.origin),
                f"still '{still.name}' names @{videos[0]}, a video character; a still takes images only",
            )
            return False
        return True

    def _check_settings(self, still: Still, endpoint: ImageEndpoint, resolution: str) -> None:
        limits = endpoint.limits
        checks: list[tuple[str, str, tuple[str, ...]]] = [
            ("aspect_ratio", still.aspect_ratio, limits.aspect_ratios),
            ("resolution", resolution, limits.resolutions),
        ]
        for key, value, allowed in checks:
            if value not in allowed:
                node: JsonPath = still.where.get(key, (*still.path, key) if key in still.raw else still.path)
                self.diags.error(
                    ENDPOINT_SETTING,
                    self.doc.loc(node),
                    f"still '{still.name}': {endpoint.id} takes no {key} '{value}'{did_you_mean(value, allowed)}; "
                    f"it takes {', '.join(allowed)}",
                )
        if not limits.num_images_min <= still.variants <= limits.num_images_max:
            self.diags.error(
                ENDPOINT_SETTING,
                self.doc.loc((*still.path, "variants")),
                f"still '{still.name}': {still.variants} variants; {endpoint.id} makes "
                f"{limits.num_images_min} to {limits.num_images_max} images a request",
            )

    def _images(self, refs: list[Reference]) -> tuple[list[str] | None, tuple[Edge, ...]]:
        """The input images' values (local path, URL or an upstream's placeholder) and the upstreams among them."""
        values: list[str] = []
        edges: dict[str, Edge] = {}
        for ref in refs:
            image = still_image(ref)
            if image is None:
                return None, ()
            if isinstance(image, Upstream):
                if not self.graph.known(image):
                    return None, ()  # reported at the slot
                edge = edge_of(image, self.board)
                edges.setdefault(edge.placeholder, edge)
                values.append(edge.placeholder)
                continue
            value = self.assets.check(image, "image")
            if value is None:
                return None, ()
            values.append(value)
        return values, tuple(edges.values())

    def _check_schema(self, still: Still, endpoint: ImageEndpoint, arguments: dict[str, Any]) -> bool:
        errors = endpoint.input_errors(arguments)
        for error in errors:
            where = "/".join(str(p) for p in error.absolute_path) or "request"
            self.diags.error(
                REQUEST_SCHEMA,
                self.doc.key_loc(still.path),
                f"still '{still.name}': the request fails {endpoint.id}'s input schema at {where}: {error.message}",
            )
        return not errors
