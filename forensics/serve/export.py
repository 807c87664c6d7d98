"""A case as one zip: each scan's self-contained report.html, scan.json and summary.csv, the case's files and
notes (case.json) and the full custody log (custody.csv and custody.json). The export itself is logged."""
from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

from forensics.serve.db import CaseDB, utc_now
from forensics.serve.progress import scan_paths

README = """Export of case {case_id} ({name}) by forensics serve, {when} UTC.

case.json     the case, its files (sha256, size, original name, source), scans (settings, model bundle sha256,
              status), each file's latest verdict, and the analyst's notes
custody.csv   every access to each file, in order, with UTC time and who (also custody.json)
scans/N/      report.html (self-contained: open it in any browser, offline), scan.json (schema
              forensics-scan/2, with its own custody block) and summary.csv of scan N
"""


def export_case(db: CaseDB, scans_dir: Path, case_id: int, actor: str) -> bytes:
    case = db.case(case_id)
    files = db.files(case_id)
    db.log_files(case_id, [f["id"] for f in files], "exported", actor, f"case {case_id} zip export")
    scans = db.scans(case_id)
    latest = db.latest_results(case_id)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("README.txt", README.format(case_id=case_id, name=case["name"], when=utc_now()))
        doc = {"case": case, "files": [{**f, "latest": None if f["id"] not in latest else {
                   "scan": latest[f["id"]]["scan_id"], "status": latest[f["id"]]["status"],
                   "verdict": latest[f["id"]]["verdict"], "probability": latest[f["id"]]["probability"]}}
                   for f in files],
               "scans": scans, "notes": db.notes(case_id)}
        z.writestr("case.json", json.dumps(doc, indent=1, sort_keys=True) + "\n")
        custody = db.custody(case_id)
        z.writestr("custody.json", json.dumps(custody, indent=1, sort_keys=True) + "\n")
        text = io.StringIO()
        cols = ["id", "time_utc", "action", "actor", "file_id", "file_name", "sha256", "detail"]
        w = csv.DictWriter(text, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(custody)
        z.writestr("custody.csv", text.getvalue())
        for s in scans:
            _, out = scan_paths(scans_dir, int(s["id"]))
            for name in ("report.html", "scan.json", "summary.csv"):
                if (out / name).is_file():
                    z.write(out / name, f"scans/{s['id']}/{name}")
    return buf.getvalue()
