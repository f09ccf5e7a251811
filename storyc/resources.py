"""Where storyc's data files are: the JSON Schemas and the `init` scaffold.

In a wheel the schemas are packaged as `storyc/_schemas`; in a source checkout
(editable install) they are the repository's top-level `schemas/` folder.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def schemas_dir() -> Path:
    for candidate in (PACKAGE_DIR / "_schemas", PACKAGE_DIR.parent / "schemas"):
        if (candidate / "storyboard.schema.json").is_file():
            return candidate
    raise FileNotFoundError("storyc's schemas are missing from this installation")


def storyboard_schema_path() -> Path:
    return schemas_dir() / "storyboard.schema.json"


def scaffold_dir() -> Path:
    return PACKAGE_DIR / "scaffold"
