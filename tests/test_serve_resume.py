"""A real `forensics serve` process killed with SIGKILL mid-scan, then started again: its worker dies with it,
the scan goes back to the queue and resumes from its journal. 0 files lost, 0 duplicated, the files finished
before the kill are not redone."""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from tests.serve_util import STARTER, Server, pid_alive


def journal_lines(out: Path) -> list[dict]:
    records = []
    for p in sorted(out.glob("results*.jsonl")):
        data = p.read_bytes()
        for line in data.split(b"\n")[:-1]:  # complete lines only
            records.append(json.loads(line))
    return records


@pytest.mark.slow
def test_server_killed_mid_scan_resumes_without_loss_or_duplicates(tmp_path: Path) -> None:
    cases = tmp_path / "cases"
    inputs = sorted(STARTER.glob("franck_*.jpg"))[:10]
    n = len(inputs)
    first = Server(cases)
    second = Server(cases)
    try:
        first.start()
        status, body = first.post_json("/api/cases", {"name": "kill test"})
        case = body["id"]
        for p in inputs:
            assert first.upload(case, p.name, p.read_bytes())[0] == 201
        status, body = first.post_json(f"/api/cases/{case}/scans", {"settings": {"evidence": False}})
        assert status == 202
        sid = body["scan"]
        out = cases / "scans" / f"{sid:06d}" / "out"
        deadline = time.monotonic() + 120
        while True:
            done = len(journal_lines(out)) if out.is_dir() else 0
            if 1 <= done < n - 1:
                break
            assert done < n - 1, "the scan got too far before the kill; the test needs slower files"
            assert time.monotonic() < deadline, first.log.read_text()[-3000:]
            time.sleep(0.02)
        with sqlite3.connect(cases / "cases.sqlite3") as con:
            worker = con.execute("SELECT worker_pid FROM scans WHERE id = ?", (sid,)).fetchone()[0]
        assert worker is not None and pid_alive(worker)
        first.kill9()  # the server only: its worker must follow it
        t0 = time.monotonic()
        while pid_alive(worker):
            assert time.monotonic() - t0 < 10, "the worker outlived its server"
            time.sleep(0.05)
        before = {r["key"] for r in journal_lines(out)}
        assert 1 <= len(before) < n
        with sqlite3.connect(cases / "cases.sqlite3") as con:
            assert con.execute("SELECT status FROM scans WHERE id = ?", (sid,)).fetchone()[0] == "running"
            assert con.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 0

        second.start()
        deadline = time.monotonic() + 150
        while True:
            status, prog = second.get(f"/api/scans/{sid}")
            if prog["status"] in ("done", "failed"):
                break
            assert time.monotonic() < deadline, second.log.read_text()[-3000:]
            time.sleep(0.3)
        assert prog["status"] == "done", prog
        assert (prog["percent"], prog["done"], prog["files"], prog["attempts"]) == (100, n, n, 2)
        # 0 lost, 0 duplicated: in the database, the journal and scan.json
        with sqlite3.connect(cases / "cases.sqlite3") as con:
            rows = con.execute("SELECT file_id, status FROM results WHERE scan_id = ?", (sid,)).fetchall()
            n_files = con.execute("SELECT COUNT(*) FROM files").fetchone()[0]
            actions = [a for (a,) in con.execute("SELECT action FROM custody WHERE case_id = ?", (case,))]
        assert len(rows) == n == n_files and len({fid for fid, _ in rows}) == n
        assert all(s == "analysed" for _, s in rows)
        assert "scan requeued" in actions and actions.count("scanned") == n
        records = journal_lines(out)
        assert len(records) == n and len({r["key"] for r in records}) == n
        doc = json.loads((out / "scan.json").read_text())
        assert sorted(f["name"] for f in doc["files"]) == sorted(p.name for p in inputs)
        assert [f["status"] for f in doc["files"]] == ["analysed"] * n
        assert len(doc["custody"]["sessions"]) == 2 and doc["custody"]["sessions"][1]["resumed"] is True
        # files journaled before the kill were not redone: their custody records are from the first session
        session_of = {f["path"]: f["session"] for f in doc["custody"]["files"]}
        assert {k for k, s in session_of.items() if s == 0} == before
        assert sum(1 for s in session_of.values() if s == 1) == n - len(before)
        # the page says it was resumed, and the stored evidence is untouched and read-only
        status, html = second.request("GET", f"/cases/{case}")
        assert status == 200 and b"(resumed)" in html
        print(f"killed after {len(before)}/{n} files; resumed {n - len(before)}; 0 lost, 0 duplicated")
    finally:
        first.stop()
        second.stop()


@pytest.mark.slow
def test_worker_killed_mid_scan_is_replaced_and_50_real_concurrent_uploads(tmp_path: Path) -> None:
    """The server stays up while its worker is killed: the monitor requeues the scan and starts a new worker. And 50
    uploads at once over real HTTP (uvicorn, 16 client threads) are all in SQLite."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.serve_util import png_bytes

    cases = tmp_path / "cases"
    server = Server(cases)
    try:
        server.start()
        case = server.post_json("/api/cases", {"name": "uploads"})[1]["id"]
        with ThreadPoolExecutor(max_workers=16) as ex:
            answers = list(ex.map(lambda i: server.upload(case, f"p{i:02d}.png", png_bytes(500 + i)), range(50)))
        assert [s for s, _ in answers] == [201] * 50
        with sqlite3.connect(cases / "cases.sqlite3") as con:
            assert con.execute("SELECT COUNT(*) FROM files WHERE case_id = ?", (case,)).fetchone()[0] == 50

        inputs = sorted(STARTER.glob("franck_*.jpg"))[:8]
        case2 = server.post_json("/api/cases", {"name": "worker kill"})[1]["id"]
        for p in inputs:
            assert server.upload(case2, p.name, p.read_bytes())[0] == 201
        sid = server.post_json(f"/api/cases/{case2}/scans", {"settings": {"evidence": False}})[1]["scan"]
        out = cases / "scans" / f"{sid:06d}" / "out"
        deadline = time.monotonic() + 120
        while not (out.is_dir() and 1 <= len(journal_lines(out)) < len(inputs) - 1):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with sqlite3.connect(cases / "cases.sqlite3") as con:
            worker = con.execute("SELECT worker_pid FROM scans WHERE id = ?", (sid,)).fetchone()[0]
        import os
        import signal

        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 150
        while (prog := server.get(f"/api/scans/{sid}")[1])["status"] not in ("done", "failed"):
            assert time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.3)
        assert prog["status"] == "done" and prog["attempts"] == 2 and prog["done"] == len(inputs)
        assert [r["status"] for r in prog["results"]] == ["analysed"] * len(inputs)
        assert len(journal_lines(out)) == len(inputs)
        with sqlite3.connect(cases / "cases.sqlite3") as con:
            details = [d for (d,) in con.execute("SELECT detail FROM custody WHERE action = 'scan requeued'")]
            new_worker = con.execute("SELECT worker_pid FROM scans WHERE id = ?", (sid,)).fetchone()[0]
        assert any(f"worker {worker} died" in d for d in details) and new_worker != worker
        assert server.get("/api/cases")[0] == 200  # the server never went down
    finally:
        server.stop()
