"""The worker's loop run in this process (`work(..., once=True)`) behind a TestClient app: a scan whose model bundle
is missing fails with its reason on the page, in the API and in the event stream; a damaged file fails alone while
the scan finishes; results go in once however often they are recorded."""
from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from starlette.testclient import TestClient

from forensics.serve.app import guarded_app
from forensics.serve.config import ServeConfig
from forensics.serve.db import CaseDB
from forensics.serve.worker import work
from tests.serve_util import STARTER, png_bytes

LOCAL = "http://127.0.0.1:8765"


def test_missing_bundle_fails_the_scan_with_its_reason(tmp_path: Path) -> None:
    cfg = ServeConfig(cases=tmp_path / "cases", workers=0, model=tmp_path / "no_such_bundle")
    with TestClient(guarded_app(cfg), base_url=LOCAL) as c:
        case = c.post("/api/cases", json={"name": "x"}).json()["id"]
        assert c.post(f"/api/cases/{case}/files", files={"file": ("a.png", png_bytes(1))}).status_code == 201
        sid = c.post(f"/api/cases/{case}/scans", json={}).json()["scan"]
        work(cfg.cases, None, once=True)
        prog = c.get(f"/api/scans/{sid}").json()
        assert prog["status"] == "failed" and "bundle" in prog["error"], prog
        with c.stream("GET", f"/api/scans/{sid}/events") as r:
            text = "".join(r.iter_text())
        assert '"status": "failed"' in text and "event: end" in text
        page = c.get(f"/cases/{case}").text
        assert "failed" in page and "bundle" in page


def test_damaged_file_fails_alone_and_results_go_in_once(tmp_path: Path) -> None:
    cfg = ServeConfig(cases=tmp_path / "cases", workers=0)
    with TestClient(guarded_app(cfg), base_url=LOCAL) as c:
        case = c.post("/api/cases", json={"name": "x"}).json()["id"]
        good = (STARTER / "franck_01829.jpg").read_bytes()
        for name, data in (("face.jpg", good), ("truncated.png", png_bytes(5, side=64)[:60]),
                           ("tiny.png", png_bytes(6))):
            assert c.post(f"/api/cases/{case}/files", files={"file": (name, data)}).status_code == 201
        sid = c.post(f"/api/cases/{case}/scans", json={"settings": {"evidence": False}}).json()["scan"]
        with c.stream("GET", f"/api/scans/{sid}/events") as r:  # before the worker: queued, at 0%
            first = next(r.iter_lines(), "")
            assert first.startswith("event: progress")
        work(cfg.cases, None, once=True)
        prog = c.get(f"/api/scans/{sid}").json()
        assert (prog["status"], prog["percent"], prog["done"]) == ("done", 100, 3), prog
        status = {r["file"]: r["status"] for r in prog["results"]}
        files = {f["name"]: f["id"] for f in c.get(f"/api/cases/{case}").json()["files"]}
        assert status[files["truncated.png"]] == "failed" and status[files["face.jpg"]] == "analysed"
        page = c.get(f"/cases/{case}/files/{files['truncated.png']}").text
        assert "truncated.png" in page and 'class="msg bad"' in page
        page = c.get(f"/cases/{case}/files/{files['face.jpg']}").text
        assert "face-1.png" in page  # the crop, served from the scan folder
        crop = c.get(f"/scans/{sid}/out/" + json.loads(
            CaseDB(cfg.db_path).results(sid)[0]["entry"])["faces"][0]["crop"])
        assert crop.status_code == 200 and crop.content[:4] == b"\x89PNG"
        # recording the same scan again replaces, never duplicates
        db = CaseDB(cfg.db_path)
        rows = db.results(sid)
        db.finish_scan(sid, [(r["file_id"], json.loads(r["entry"])) for r in rows], None, "test")
        with sqlite3.connect(cfg.db_path) as con:
            assert con.execute("SELECT COUNT(*) FROM results WHERE scan_id = ?", (sid,)).fetchone()[0] == 3
        # the stored evidence is unchanged by the scan (the scan read hard links to it)
        for name, fid in files.items():
            f = c.get(f"/api/cases/{case}").json()["files"]
            sha = next(x["sha256"] for x in f if x["id"] == fid)
            stored = cfg.evidence_dir / sha[:2] / sha
            assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha
