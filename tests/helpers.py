"""Small helpers shared by tests: write boards and real images into a temporary project."""

from __future__ import annotations

import textwrap
from pathlib import Path


def make_image(path: Path, size: tuple[int, int] = (400, 320), color: str = "red", fmt: str = "PNG") -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, fmt)
    return path


def make_project(root: Path, board: str, images: dict[str, str] | None = None) -> Path:
    """A project folder (a git root) with board.yaml and solid-colour reference images."""
    (root / ".git").mkdir(parents=True, exist_ok=True)
    for name, color in (images or {}).items():
        make_image(root / name, color=color)
    path = root / "board.yaml"
    path.write_text(textwrap.dedent(board).lstrip(), "utf-8")
    return path


BASIC_BOARD = """
version: 1
title: Basic
target:
  endpoint: fal-ai/kling-video/o3/4k/reference-to-video
characters:
  ellie:
    description: a young grey elephant
    frontal: refs/ellie-front.png
    references: [refs/ellie-side.png]
  rex:
    frontal: refs/rex-front.png
    references: [refs/rex-side.png]
styles:
  dawn: refs/dawn.png
  noir:
    image: https://example.org/noir.jpg
scenes:
  - id: meet
    prompt: "@ellie meets @rex in the light of @dawn."
    duration: 8
  - id: play
    shots:
      - prompt: "@rex runs, styled like @noir."
        duration: 3
      - prompt: "@ellie follows @rex."
        duration: 4
"""

BASIC_IMAGES = {
    "refs/ellie-front.png": "grey",
    "refs/ellie-side.png": "silver",
    "refs/rex-front.png": "brown",
    "refs/rex-side.png": "tan",
    "refs/dawn.png": "orange",
}
