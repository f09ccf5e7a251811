"""Stills and continuity (the board as a graph): image endpoints as data, stills compiled to requests,
image slots taking a still or a frame of another scene, and Merkle keys through the graph."""

from __future__ import annotations

from decimal import Decimal

from storyc.compile import endpoints, schemacheck

EDIT = "fal-ai/nano-banana-2/edit"
TEXT = "fal-ai/nano-banana-2"


def test_image_endpoints_are_data_priced_per_image_at_a_resolution() -> None:
    edit = endpoints.get_image(EDIT)
    assert edit is not None and edit.kind == "image" and edit.takes_images
    assert edit.cost("1K", 1) == Decimal("0.08")
    assert edit.cost("0.5K", 1) == Decimal("0.06")
    assert edit.cost("2K", 3) == Decimal("0.36")
    assert edit.cost("4K", 4) == Decimal("0.64")
    assert edit.image_name(2) == "image 2"
    assert (edit.limits.num_images_min, edit.limits.num_images_max) == (1, 4)
    assert edit.price_note is None  # read from fal's page
    text = endpoints.get_image(TEXT)
    assert text is not None and not text.takes_images
    assert text.price_note is not None and "until checked" in text.price_note
    assert "image_urls" not in text.input_schema["properties"]


def test_the_video_registry_keeps_only_video_endpoints() -> None:
    assert set(endpoints.registry()) == {
        "fal-ai/kling-video/o3/4k/reference-to-video",
        "fal-ai/kling-video/o3/pro/reference-to-video",
        "fal-ai/kling-video/o3/standard/reference-to-video",
    }
    assert set(endpoints.image_registry()) == {EDIT, TEXT}
    assert set(endpoints.catalog()) == set(endpoints.registry()) | {EDIT, TEXT}
    assert endpoints.get(EDIT) is None and endpoints.get_image(endpoints.DEFAULT_ENDPOINT) is None


def test_every_image_endpoint_schema_takes_the_fast_check() -> None:
    for endpoint in endpoints.image_registry().values():
        assert schemacheck.verdict(endpoint.input_schema) is not None, endpoint.id
        ok = {"prompt": "a red ball", "num_images": 2, "resolution": "2K", "aspect_ratio": "16:9"}
        if endpoint.takes_images:
            ok["image_urls"] = ["https://example.org/a.png"]
        assert endpoint.input_errors(ok) == []
        assert endpoint.input_errors({**ok, "num_images": 5})
