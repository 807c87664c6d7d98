"""scan.json's schema: a versioned JSON Schema (draft 2020-12) shipped beside this module, and validation.

The version is the `schema` field at the top of every scan.json ("forensics-scan/2"). Within a version,
fields are only ever added (readers ignore what they do not know); a field removed or changed in meaning
makes a new version (and a scan folder of another version cannot be resumed).

- /2: a video track's `probability` is its *video* probability (frames and temporal flicker fused by the
  bundle's video model) when `temporal.available` and `temporal.decides`; `frames_probability` keeps the frame mean. `temporal` gains
  `video_probability`, `verdict`, `band`, `decides` (whether that score decides the track), `segment_seconds` and
  `segments`, and loses the never-filled `score`. Later evidence (metadata, JPEG history, C2PA, where-maps) goes into each file's
`evidence` object, one key per section, which this version leaves open. `temporal.video_score` (added) says
  whether the video probability is the fusion or the flicker score alone.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_ID = "forensics-scan/2"
SCHEMA_FILE = Path(__file__).with_name("scan.schema.json")


class ScanSchemaError(ValueError):
    """A scan document that does not follow its schema; the message names the field and the rule."""


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text())


def schema_bytes() -> bytes:
    return SCHEMA_FILE.read_bytes()


def validate_scan(doc: dict[str, Any]) -> None:
    """Raise ScanSchemaError listing up to 5 violations (path in the document and the rule broken)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        shown = "; ".join(f"/{'/'.join(str(p) for p in e.absolute_path)}: {e.message[:200]}" for e in errors[:5])
        raise ScanSchemaError(f"scan document breaks {SCHEMA_ID} ({len(errors)} problem(s)): {shown}")
