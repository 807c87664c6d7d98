"""How far a scan is, read from what the scan itself writes: its journal gains one line per finished file
(fsynced), so the count of journaled inputs is the progress, and it survives a restart unchanged."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from forensics.serve.db import CaseDB


def scan_paths(scans_dir: Path, scan_id: int) -> tuple[Path, Path]:
    """(inputs folder, output folder) of a scan."""
    root = scans_dir / f"{scan_id:06d}"
    return root / "inputs", root / "out"


_CACHE: dict[Path, tuple[int, int, frozenset[str]]] = {}  # journal -> (size, mtime_ns, keys): parsed once per change
_CACHE_LOCK = threading.Lock()


def journaled(out: Path) -> set[str]:
    """Keys (input paths) of every file the scan has finished so far. Each journal is re-read only when it changed,
    so many watchers of a long scan cost one parse per finished file, not one per poll."""
    from forensics.scan.results import ResultsError, read_journal, result_files

    keys: set[str] = set()
    if not out.is_dir():
        return keys
    for path in result_files(out):
        try:
            st = path.stat()
            with _CACHE_LOCK:
                hit = _CACHE.get(path)
            if hit is None or hit[:2] != (st.st_size, st.st_mtime_ns):
                found = frozenset(r["key"] for r in read_journal(path)[0])
                with _CACHE_LOCK:
                    _CACHE[path] = (st.st_size, st.st_mtime_ns, found)
                hit = _CACHE[path]
            keys |= hit[2]
        except (ResultsError, OSError):  # a shard merged away between listing and reading: the next poll sees it
            continue
    return keys


def progress(db: CaseDB, scans_dir: Path, scan_id: int) -> dict[str, Any]:
    scan = db.scan(scan_id)
    inputs = db.scan_inputs(scan_id)
    folder, out = scan_paths(scans_dir, scan_id)
    keys = journaled(out)
    done_names = {Path(k).name for k in keys if Path(k).parent == folder.absolute()}
    total = len(inputs)
    done = sum(1 for i in inputs if i["input_name"] in done_names)
    if scan["status"] == "done":
        percent = 100
    else:  # all files journaled but the report not yet written: not 100 until the results are in the database
        percent = min(99, int(100 * done / total)) if total else 0
    return {"scan": scan_id, "case": scan["case_id"], "status": scan["status"], "files": total, "done": done,
            "percent": percent, "error": scan["error"], "attempts": scan["attempts"],
            "files_done": sorted(done_names)}
