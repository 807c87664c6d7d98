"""The case database: one SQLite file (standard library sqlite3, WAL mode) that the server and its scan workers
share.

What it holds: cases (name, description); files (sha256, size, original name, what the bytes are, where they
came from); the custody log (every upload, import, scan, view and export of a file, with UTC time and who);
scans (settings, model bundle hash, status, the worker that runs it); results (each file's scan.json entry
per scan); and the analyst's notes. Every call opens its own short connection, so any thread or process may
call it; writes take the write lock up front (BEGIN IMMEDIATE) and wait for it rather than fail.
"""
from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cases (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '', created_utc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL REFERENCES cases(id), sha256 TEXT NOT NULL,
    size INTEGER NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL, format TEXT, content TEXT,
    source TEXT NOT NULL, added_utc TEXT NOT NULL, UNIQUE (case_id, sha256));
CREATE TABLE IF NOT EXISTS custody (
    id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL REFERENCES cases(id), file_id INTEGER REFERENCES files(id),
    time_utc TEXT NOT NULL, action TEXT NOT NULL, actor TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS scans (
    id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL REFERENCES cases(id), status TEXT NOT NULL,
    settings TEXT NOT NULL, model TEXT, bundle_sha256 TEXT, created_utc TEXT NOT NULL, started_utc TEXT,
    finished_utc TEXT, worker_pid INTEGER, attempts INTEGER NOT NULL DEFAULT 0, error TEXT);
CREATE TABLE IF NOT EXISTS scan_files (
    scan_id INTEGER NOT NULL REFERENCES scans(id), file_id INTEGER NOT NULL REFERENCES files(id),
    input_name TEXT NOT NULL, PRIMARY KEY (scan_id, file_id), UNIQUE (scan_id, input_name));
CREATE TABLE IF NOT EXISTS results (
    scan_id INTEGER NOT NULL REFERENCES scans(id), file_id INTEGER NOT NULL REFERENCES files(id),
    status TEXT NOT NULL, verdict TEXT, probability REAL, entry TEXT NOT NULL, PRIMARY KEY (scan_id, file_id));
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL REFERENCES cases(id), file_id INTEGER REFERENCES files(id),
    time_utc TEXT NOT NULL, author TEXT NOT NULL, text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS custody_case ON custody (case_id, id);
CREATE INDEX IF NOT EXISTS scans_status ON scans (status, id);
"""

ACTIVE = ("queued", "running")


def utc_now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


class NotFound(LookupError):
    """A case, file or scan id that is not in the database (the API answers 404)."""


class CaseDB:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # ------------------------------------------------------------------------------------------ plumbing

    def connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA busy_timeout = 60000")
        con.execute("PRAGMA foreign_keys = ON")
        con.execute("PRAGMA synchronous = FULL")  # a committed upload or result survives a power cut
        return con

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (the write lock taken at BEGIN, so two writers queue instead of deadlocking)."""
        con = self.connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finally:
            con.close()

    def read(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        con = self.connect()
        try:
            return [dict(r) for r in con.execute(sql, args).fetchall()]
        finally:
            con.close()

    def one(self, sql: str, args: Sequence[Any] = (), what: str = "row") -> dict[str, Any]:
        rows = self.read(sql, args)
        if not rows:
            raise NotFound(f"no {what}")
        return rows[0]

    def init(self) -> "CaseDB":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = self.connect()
        try:
            mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise RuntimeError(f"{self.path}: SQLite refused WAL mode (got {mode!r}); is it on a network disk?")
            con.executescript(SCHEMA)
            con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        finally:
            con.close()
        return self

    # ------------------------------------------------------------------------------------------ cases

    def create_case(self, name: str, description: str = "", actor: str = "local") -> int:
        with self.tx() as con:
            cid = con.execute("INSERT INTO cases (name, description, created_utc) VALUES (?, ?, ?)",
                              (name, description, utc_now())).lastrowid
            _log(con, cid, None, "case created", actor, name)
        return int(cid)

    def list_cases(self) -> list[dict[str, Any]]:
        return self.read("""SELECT c.*, (SELECT COUNT(*) FROM files f WHERE f.case_id = c.id) AS n_files,
                                   (SELECT COUNT(*) FROM scans s WHERE s.case_id = c.id) AS n_scans
                            FROM cases c ORDER BY c.id DESC""")

    def case(self, case_id: int) -> dict[str, Any]:
        return self.one("SELECT * FROM cases WHERE id = ?", (case_id,), f"case {case_id}")

    # ------------------------------------------------------------------------------------------ files

    def add_file(self, case_id: int, sha256: str, size: int, name: str, kind: str, fmt: str | None,
                 content: str | None, source: str, actor: str) -> tuple[int, bool]:
        """(file id, True when new). The same bytes added again keep one row; the custody log records both."""
        with self.tx() as con:
            if con.execute("SELECT 1 FROM cases WHERE id = ?", (case_id,)).fetchone() is None:
                raise NotFound(f"no case {case_id}")
            row = con.execute("SELECT id FROM files WHERE case_id = ? AND sha256 = ?", (case_id, sha256)).fetchone()
            if row is not None:
                _log(con, case_id, row["id"], "added again", actor, f"{source}: {name} (same sha256, kept once)")
                return int(row["id"]), False
            fid = con.execute("""INSERT INTO files (case_id, sha256, size, name, kind, format, content, source,
                                 added_utc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                              (case_id, sha256, size, name, kind, fmt, content, source, utc_now())).lastrowid
            _log(con, case_id, fid, "added", actor, f"{source}: {name}, {size} bytes, sha256 {sha256}")
        return int(fid), True

    def files(self, case_id: int) -> list[dict[str, Any]]:
        return self.read("SELECT * FROM files WHERE case_id = ? ORDER BY id", (case_id,))

    def file(self, case_id: int, file_id: int) -> dict[str, Any]:
        return self.one("SELECT * FROM files WHERE case_id = ? AND id = ?", (case_id, file_id),
                        f"file {file_id} in case {case_id}")

    # ------------------------------------------------------------------------------------------ custody

    def log(self, case_id: int, file_id: int | None, action: str, actor: str, detail: str = "") -> None:
        with self.tx() as con:
            _log(con, case_id, file_id, action, actor, detail)

    def log_files(self, case_id: int, file_ids: Sequence[int], action: str, actor: str, detail: str = "") -> None:
        with self.tx() as con:
            for fid in file_ids:
                _log(con, case_id, fid, action, actor, detail)

    def custody(self, case_id: int, file_id: int | None = None) -> list[dict[str, Any]]:
        if file_id is None:
            return self.read("""SELECT c.*, f.name AS file_name, f.sha256 FROM custody c
                                LEFT JOIN files f ON f.id = c.file_id WHERE c.case_id = ? ORDER BY c.id""",
                             (case_id,))
        return self.read("""SELECT c.*, f.name AS file_name, f.sha256 FROM custody c
                            LEFT JOIN files f ON f.id = c.file_id WHERE c.case_id = ? AND c.file_id = ?
                            ORDER BY c.id""", (case_id, file_id))

    # ------------------------------------------------------------------------------------------ scans

    def create_scan(self, case_id: int, inputs: Sequence[tuple[int, str]], settings: dict[str, Any],
                    model: str | None, actor: str) -> int:
        """A queued scan of `inputs` ((file id, input name) pairs); the workers pick it up in id order."""
        with self.tx() as con:
            sid = con.execute("""INSERT INTO scans (case_id, status, settings, model, created_utc)
                                 VALUES (?, 'queued', ?, ?, ?)""",
                              (case_id, json.dumps(settings, sort_keys=True), model, utc_now())).lastrowid
            con.executemany("INSERT INTO scan_files (scan_id, file_id, input_name) VALUES (?, ?, ?)",
                            [(sid, fid, name) for fid, name in inputs])
            for fid, _ in inputs:
                _log(con, case_id, fid, "queued for scan", actor, f"scan {sid}")
        return int(sid)

    def claim_scan(self, pid: int) -> dict[str, Any] | None:
        """The oldest queued scan, now marked running by worker `pid` (None when the queue is empty)."""
        with self.tx() as con:
            row = con.execute("SELECT * FROM scans WHERE status = 'queued' ORDER BY id LIMIT 1").fetchone()
            if row is None:
                return None
            con.execute("""UPDATE scans SET status = 'running', worker_pid = ?, attempts = attempts + 1,
                           started_utc = COALESCE(started_utc, ?) WHERE id = ?""", (pid, utc_now(), row["id"]))
        return self.scan(int(row["id"]))

    def requeue_running(self, actor: str) -> list[int]:
        """At start-up: scans a dead server's workers left running go back to the queue (they resume)."""
        with self.tx() as con:
            ids = [int(r["id"]) for r in con.execute("SELECT id FROM scans WHERE status = 'running'")]
            for sid in ids:
                con.execute("UPDATE scans SET status = 'queued', worker_pid = NULL WHERE id = ?", (sid,))
                case_id = con.execute("SELECT case_id FROM scans WHERE id = ?", (sid,)).fetchone()[0]
                _log(con, case_id, None, "scan requeued", actor,
                     f"scan {sid} was running when the server stopped; it resumes from its journal")
        return ids

    def requeue_scan_of(self, pid: int, actor: str) -> list[int]:
        """A worker that died: its running scan goes back to the queue."""
        with self.tx() as con:
            rows = con.execute("SELECT id, case_id FROM scans WHERE status = 'running' AND worker_pid = ?",
                               (pid,)).fetchall()
            for r in rows:
                con.execute("UPDATE scans SET status = 'queued', worker_pid = NULL WHERE id = ?", (r["id"],))
                _log(con, r["case_id"], None, "scan requeued", actor, f"scan {r['id']}: worker {pid} died")
        return [int(r["id"]) for r in rows]

    def finish_scan(self, scan_id: int, entries: Sequence[tuple[int, dict[str, Any]]], bundle_sha256: str | None,
                    actor: str) -> None:
        """Record each file's scan.json entry (one row per scan and file: a rerun replaces, never duplicates)."""
        with self.tx() as con:
            case_id = con.execute("SELECT case_id FROM scans WHERE id = ?", (scan_id,)).fetchone()[0]
            for fid, entry in entries:
                con.execute("""INSERT OR REPLACE INTO results (scan_id, file_id, status, verdict, probability, entry)
                               VALUES (?, ?, ?, ?, ?, ?)""",
                            (scan_id, fid, entry.get("status"), entry.get("verdict"), entry.get("probability"),
                             json.dumps(entry, sort_keys=True)))
                detail = f"scan {scan_id}: {entry.get('status')}"
                if entry.get("sha256_after"):
                    detail += f", sha256 after {entry['sha256_after']}"
                _log(con, case_id, fid, "scanned", actor, detail)
            con.execute("""UPDATE scans SET status = 'done', finished_utc = ?, bundle_sha256 = ?, error = NULL
                           WHERE id = ?""", (utc_now(), bundle_sha256, scan_id))

    def fail_scan(self, scan_id: int, error: str, actor: str) -> None:
        with self.tx() as con:
            case_id = con.execute("SELECT case_id FROM scans WHERE id = ?", (scan_id,)).fetchone()[0]
            con.execute("UPDATE scans SET status = 'failed', finished_utc = ?, error = ? WHERE id = ?",
                        (utc_now(), error, scan_id))
            _log(con, case_id, None, "scan failed", actor, f"scan {scan_id}: {error}")

    def scan(self, scan_id: int) -> dict[str, Any]:
        row = self.one("SELECT * FROM scans WHERE id = ?", (scan_id,), f"scan {scan_id}")
        row["settings"] = json.loads(row["settings"])
        return row

    def scans(self, case_id: int) -> list[dict[str, Any]]:
        rows = self.read("""SELECT s.*, (SELECT COUNT(*) FROM scan_files sf WHERE sf.scan_id = s.id) AS n_files
                            FROM scans s WHERE s.case_id = ? ORDER BY s.id DESC""", (case_id,))
        for r in rows:
            r["settings"] = json.loads(r["settings"])
        return rows

    def scan_inputs(self, scan_id: int) -> list[dict[str, Any]]:
        return self.read("""SELECT sf.*, f.sha256, f.name, f.size FROM scan_files sf JOIN files f ON f.id = sf.file_id
                            WHERE sf.scan_id = ? ORDER BY sf.input_name""", (scan_id,))

    def results(self, scan_id: int) -> list[dict[str, Any]]:
        return self.read("SELECT * FROM results WHERE scan_id = ? ORDER BY file_id", (scan_id,))

    def latest_results(self, case_id: int) -> dict[int, dict[str, Any]]:
        """Each file's result from its most recent finished scan."""
        rows = self.read("""SELECT r.*, s.finished_utc FROM results r JOIN scans s ON s.id = r.scan_id
                            WHERE s.case_id = ? ORDER BY r.scan_id""", (case_id,))
        latest: dict[int, dict[str, Any]] = {}
        for r in rows:
            r["entry"] = json.loads(r["entry"])
            latest[int(r["file_id"])] = r
        return latest

    # ------------------------------------------------------------------------------------------ notes

    def add_note(self, case_id: int, file_id: int | None, text: str, author: str) -> int:
        with self.tx() as con:
            nid = con.execute("INSERT INTO notes (case_id, file_id, time_utc, author, text) VALUES (?, ?, ?, ?, ?)",
                              (case_id, file_id, utc_now(), author, text)).lastrowid
            _log(con, case_id, file_id, "note added", author, f"note {nid}")
        return int(nid)

    def notes(self, case_id: int) -> list[dict[str, Any]]:
        return self.read("""SELECT n.*, f.name AS file_name FROM notes n LEFT JOIN files f ON f.id = n.file_id
                            WHERE n.case_id = ? ORDER BY n.id""", (case_id,))


def _log(con: sqlite3.Connection, case_id: int, file_id: int | None, action: str, actor: str, detail: str) -> None:
    con.execute("INSERT INTO custody (case_id, file_id, time_utc, action, actor, detail) VALUES (?, ?, ?, ?, ?, ?)",
                (case_id, file_id, utc_now(), action, actor, detail))
