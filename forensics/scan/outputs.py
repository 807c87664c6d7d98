"""scan.json (the full record, validated against its schema before it is written) and summary.csv (one row
per file, for a spreadsheet)."""
from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from forensics.calibration import VERDICTS
from forensics.data.media import write_bytes_atomic
from forensics.scan.schema import SCHEMA_ID, validate_scan

SCAN_JSON = "scan.json"
SUMMARY_CSV = "summary.csv"
STATUSES = ("analysed", "failed", "skipped")
CSV_COLUMNS = ("path", "status", "kind", "format", "verdict", "probability", "faces", "faces_likely_manipulated",
               "reasons", "errors", "notes", "sha256", "sha256_after", "size_bytes")


def summarise(files: list[dict[str, Any]]) -> dict[str, Any]:
    status = Counter(f["status"] for f in files)
    verdicts = Counter(f["verdict"] for f in files if f["status"] == "analysed")
    return {"files": len(files), **{s: status.get(s, 0) for s in STATUSES},
            "verdicts": {v: verdicts.get(v, 0) for v in VERDICTS},
            "faces": sum(len(f["faces"]) for f in files),
            "integrity_failures": sum(1 for f in files if f["sha256"] and f["sha256_after"]
                                      and f["sha256"] != f["sha256_after"])}


def scan_document(custody: dict[str, Any], files: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schema": SCHEMA_ID, "custody": custody, "summary": summarise(files), "files": files}


def write_scan_json(out: str | os.PathLike, doc: dict[str, Any]) -> Path:
    validate_scan(doc)
    path = Path(out) / SCAN_JSON
    write_bytes_atomic(path, (json.dumps(doc, indent=1, sort_keys=True, allow_nan=False) + "\n").encode())
    return path


def summary_rows(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for f in files:
        rows.append({
            "path": f["path"], "status": f["status"], "kind": f["kind"], "format": f["format"] or "",
            "verdict": f["verdict"] or "", "probability": "" if f["probability"] is None else f["probability"],
            "faces": len(f["faces"]),
            "faces_likely_manipulated": sum(1 for u in f["faces"] if u["verdict"] == "likely manipulated"),
            "reasons": " | ".join(f["reasons"]), "errors": " | ".join(f["errors"]), "notes": " | ".join(f["notes"]),
            "sha256": f["sha256"] or "", "sha256_after": f["sha256_after"] or "",
            "size_bytes": "" if f["size_bytes"] is None else f["size_bytes"],
        })
    return rows


def write_summary_csv(out: str | os.PathLike, files: list[dict[str, Any]]) -> Path:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(summary_rows(files))
    path = Path(out) / SUMMARY_CSV
    write_bytes_atomic(path, buf.getvalue().encode("utf-8", "backslashreplace"))  # undecodable file names
    return path
