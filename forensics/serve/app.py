"""The routes: HTML pages for the analyst and a JSON API under /api/ that the pages (and scripts) use.

Pages: `/` cases; `/cases/N` a case (upload, folder import, scans with live progress, verdicts, notes);
`/cases/N/files/M` one file's verdict, faces, where-maps, timeline and agreement table; `/cases/N/compare?a=&b=`
two files side by side; `/cases/N/export` the case as a zip. The scan's own pictures and report are served from
its output folder (`/scans/S/out/...`), never from outside it.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from forensics.serve.auth import Guard
from forensics.serve.config import ServeConfig
from forensics.serve.db import CaseDB, NotFound
from forensics.serve.export import export_case
from forensics.serve.progress import progress, scan_paths
from forensics.serve.store import EvidenceStore
from forensics.serve.uploads import UploadRefused, check_name, human_bytes

HERE = Path(__file__).resolve().parent
MULTIPART_SLACK = 1 << 20  # bytes of form fields and boundaries allowed beyond one file at the limit
SCAN_SETTING_KEYS = ("every", "max_frames", "min_face", "evidence")
EVENT_INTERVAL_S = 0.4
# The browser itself enforces "nothing leaves the machine" on our pages: scripts, styles, pictures, fetches and event
# streams only from this server (style attributes allowed: the progress bars' widths).
PAGE_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "x-content-type-options": "nosniff", "referrer-policy": "same-origin",
}


class _TooLarge(Exception):
    pass


class CappedRequest(Request):
    """A request whose body may not exceed `cap` bytes, counted as it arrives (no Content-Length needed)."""

    cap = 0

    async def stream(self):  # type: ignore[override]
        seen = 0
        async for chunk in super().stream():
            seen += len(chunk)
            if seen > self.cap:
                raise _TooLarge()
            yield chunk


def actor_of(request: Request) -> str:
    client = request.client
    return f"{client.host}" if client is not None else "local"


def _templates():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)

    def fmt(v: Any, digits: int = 3) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.{digits}f}"
        return str(v)

    def vclass(verdict: str | None) -> str:
        v = (verdict or "").lower()
        return ("v-likely" if v.startswith("likely") else "v-inconclusive" if v == "inconclusive"
                else "v-clean" if v.startswith("no sign") else "v-none")

    def stance_class(stance: str | None) -> str:
        return {"suggests manipulation": "st-bad", "no sign": "st-ok"}.get(stance or "", "st-none")

    env.filters.update(fmt=fmt, vclass=vclass, stance=stance_class, bytes=human_bytes)
    return env


def create_app(config: ServeConfig) -> Starlette:
    db = CaseDB(config.db_path).init()
    store = EvidenceStore(config.evidence_dir, config.max_upload_bytes)
    config.scans_dir.mkdir(parents=True, exist_ok=True)
    env = _templates()

    def page(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        html = env.get_template(name).render(request=request, config=config, **ctx)
        return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)

    def wants_json(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    # ------------------------------------------------------------------------------------------ helpers

    def case_view(case_id: int) -> dict[str, Any]:
        case = db.case(case_id)
        files = db.files(case_id)
        latest = db.latest_results(case_id)
        scans = db.scans(case_id)
        prog = {s["id"]: progress(db, config.scans_dir, s["id"]) for s in scans}
        for f in files:
            r = latest.get(f["id"])
            f["result"] = None if r is None else {"scan": r["scan_id"], "status": r["status"],
                                                   "verdict": r["verdict"], "probability": r["probability"],
                                                   "summary": ((r["entry"].get("evidence") or {}).get("agreement")
                                                               or {}).get("summary")}
        return {"case": case, "files": files, "scans": scans, "progress": prog, "notes": db.notes(case_id),
                "custody": db.custody(case_id)[-40:]}

    def ingest_upload(case_id: int, upload: Any, actor: str) -> dict[str, Any]:
        name = check_name(upload.filename)
        upload.file.seek(0)
        stored = store.put(upload.file, name)
        fid, new = db.add_file(case_id, stored.sha256, stored.size, name, stored.kind, stored.format,
                               stored.content, "upload", actor)
        return {"id": fid, "name": name, "sha256": stored.sha256, "size": stored.size, "kind": stored.kind,
                "new": new, "note": stored.note}

    async def read_uploads(request: Request, case_id: int) -> tuple[list[dict], list[dict]]:
        db.case(case_id)
        cap = config.max_upload_bytes + MULTIPART_SLACK
        length = request.headers.get("content-length")
        limit_msg = (f"larger than the upload limit of {human_bytes(config.max_upload_bytes)} per file "
                     "(forensics serve --max-upload-mb)")
        if length is not None and length.isdigit() and int(length) > cap:
            return [], [UploadRefused("(request)", f"the upload is {human_bytes(int(length))}: {limit_msg}",
                                      413).to_dict()]
        capped = CappedRequest(request.scope, request.receive)
        capped.cap = cap
        try:
            form = await capped.form(max_files=200, max_fields=50)
        except _TooLarge:
            return [], [UploadRefused("(request)", limit_msg, 413).to_dict()]
        except Exception as exc:  # a malformed multipart body
            detail = getattr(exc, "detail", None) or str(exc)
            return [], [UploadRefused("(request)", f"not a readable multipart upload ({detail})").to_dict()]
        accepted, refused = [], []
        try:
            uploads = [v for _, v in form.multi_items() if hasattr(v, "filename")]
            if not uploads:
                refused.append(UploadRefused("(request)", "no file in the upload (form field 'file')").to_dict())
            for up in uploads:
                try:
                    accepted.append(await run_in_threadpool(ingest_upload, case_id, up, actor_of(request)))
                except UploadRefused as exc:
                    refused.append(exc.to_dict())
        finally:
            await form.close()
        return accepted, refused

    def import_folder(case_id: int, folder: str, actor: str) -> tuple[list[dict], list[dict]]:
        db.case(case_id)
        root = Path(folder).expanduser()
        if not folder.strip():
            return [], [UploadRefused(folder, "no folder given").to_dict()]
        if not root.is_absolute():
            return [], [UploadRefused(folder, "give an absolute folder path on the server").to_dict()]
        root = Path(os.path.realpath(root))
        if config.import_root is not None:
            allowed = Path(os.path.realpath(config.import_root))
            if root != allowed and allowed not in root.parents:
                return [], [UploadRefused(folder, f"outside the import root {allowed} (--import-root)", 403).to_dict()]
        if not root.is_dir():
            return [], [UploadRefused(folder, "not a folder on the server").to_dict()]
        accepted, refused = [], []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()
            for fn in sorted(filenames):
                path = Path(dirpath) / fn
                try:
                    name = check_name(fn)
                    if path.is_symlink() or not path.is_file():
                        raise UploadRefused(str(path), "a link or not a regular file: not imported")
                    stored = store.put_path(path, name)
                    fid, new = db.add_file(case_id, stored.sha256, stored.size, name, stored.kind, stored.format,
                                           stored.content, f"folder {path}", actor)
                    accepted.append({"id": fid, "name": name, "path": str(path), "sha256": stored.sha256,
                                     "size": stored.size, "new": new})
                except UploadRefused as exc:
                    refused.append({**exc.to_dict(), "name": str(path)})
                except OSError as exc:
                    refused.append({"name": str(path), "error": f"cannot read ({exc.strerror or exc})", "status": 400})
        if not accepted and not refused:
            refused.append(UploadRefused(folder, "the folder holds no files").to_dict())
        return accepted, refused

    def start_scan(case_id: int, file_ids: list[int] | None, overrides: dict[str, Any], actor: str) -> int:
        from forensics.scan.settings import ScanSettings

        files = {f["id"]: f for f in db.files(case_id)}
        if file_ids is None:
            latest = db.latest_results(case_id)
            file_ids = [fid for fid in files if fid not in latest] or list(files)
        unknown = [fid for fid in file_ids if fid not in files]
        if unknown:
            raise ValueError(f"no file {unknown[0]} in case {case_id}")
        if not file_ids:
            raise ValueError("the case holds no files to scan yet")
        settings = {**config.scan_defaults,
                    **{k: v for k, v in overrides.items() if k in SCAN_SETTING_KEYS and v is not None}}
        settings = ScanSettings(**settings).to_dict()  # validated now, not in the worker
        names: set[str] = set()
        inputs = []
        for fid in sorted(set(file_ids)):
            name = files[fid]["name"]
            stem, suffix = os.path.splitext(name)
            n = 2
            while name in names:  # two files uploaded under one name: the second scanned as "name (2).jpg"
                name, n = f"{stem} ({n}){suffix}", n + 1
            names.add(name)
            inputs.append((fid, name))
        model = str(Path(config.model).absolute()) if config.model is not None else None
        return db.create_scan(case_id, inputs, settings, model, actor)

    def file_view(case_id: int, file_id: int, scan_id: int | None, actor: str) -> dict[str, Any]:
        f = db.file(case_id, file_id)
        rows = db.read("""SELECT r.*, s.finished_utc, s.bundle_sha256, s.settings FROM results r JOIN scans s
                          ON s.id = r.scan_id WHERE r.file_id = ? ORDER BY r.scan_id""", (file_id,))
        if scan_id is not None:
            rows = [r for r in rows if r["scan_id"] == scan_id]
        result = rows[-1] if rows else None
        entry = json.loads(result["entry"]) if result else None
        db.log(case_id, file_id, "viewed", actor, f"scan {result['scan_id']}" if result else "not scanned")
        return {"file": f, "result": result, "entry": entry,
                "asset": (lambda rel: f"/scans/{result['scan_id']}/out/{rel}") if result else (lambda rel: ""),
                "scans_of_file": [r["scan_id"] for r in rows] if scan_id is None else [scan_id]}

    def result_rows(scan_id: int) -> list[dict[str, Any]]:
        rows = []
        for r in db.results(scan_id):
            entry = json.loads(r["entry"])
            rows.append({"file": r["file_id"], "status": r["status"], "verdict": r["verdict"],
                         "probability": r["probability"], "reasons": entry.get("reasons") or [],
                         "errors": entry.get("errors") or [],
                         "summary": ((entry.get("evidence") or {}).get("agreement") or {}).get("summary")})
        return rows

    # ------------------------------------------------------------------------------------------ pages

    async def index(request: Request) -> Response:
        return page(request, "cases.html.j2", cases=await run_in_threadpool(db.list_cases))

    async def create_case_form(request: Request) -> Response:
        form = await request.form()
        name = str(form.get("name") or "").strip()
        if not name:
            return page(request, "cases.html.j2", 400, cases=db.list_cases(), error="a case needs a name")
        cid = await run_in_threadpool(db.create_case, name[:200], str(form.get("description") or "")[:2000],
                                      actor_of(request))
        return RedirectResponse(f"/cases/{cid}", status_code=303)

    async def case_page(request: Request) -> Response:
        cid = request.path_params["case_id"]
        return page(request, "case.html.j2", **await run_in_threadpool(case_view, cid))

    async def intake_page(request: Request, cid: Any, accepted: list, refused: list) -> Response:
        """The case page after files came in (upload or folder import): what was taken, what was refused and why;
        the status is the first refusal's when nothing was taken."""
        view = await run_in_threadpool(case_view, cid)
        return page(request, "case.html.j2", 200 if accepted or not refused else refused[0]["status"],
                    accepted=accepted, refused=refused, **view)

    async def case_upload_form(request: Request) -> Response:
        cid = request.path_params["case_id"]
        accepted, refused = await read_uploads(request, cid)
        return await intake_page(request, cid, accepted, refused)

    async def case_import_form(request: Request) -> Response:
        cid = request.path_params["case_id"]
        form = await request.form()
        accepted, refused = await run_in_threadpool(import_folder, cid, str(form.get("folder") or ""),
                                                    actor_of(request))
        return await intake_page(request, cid, accepted, refused)

    async def case_scan_form(request: Request) -> Response:
        cid = request.path_params["case_id"]
        form = await request.form()
        ids = [int(v) for v in form.getlist("file") if str(v).isdigit()] or None
        try:
            await run_in_threadpool(start_scan, cid, ids, {"evidence": form.get("evidence") == "on"},
                                    actor_of(request))
        except ValueError as exc:
            view = await run_in_threadpool(case_view, cid)
            return page(request, "case.html.j2", 400, scan_error=str(exc), **view)
        return RedirectResponse(f"/cases/{cid}#scans", status_code=303)

    async def case_note_form(request: Request) -> Response:
        cid = request.path_params["case_id"]
        form = await request.form()
        text = str(form.get("text") or "").strip()
        fid = form.get("file")
        if text:
            file_id = int(fid) if fid and str(fid).isdigit() else None
            if file_id is not None:
                db.file(cid, file_id)
            await run_in_threadpool(db.add_note, cid, file_id, text[:10000], actor_of(request))
        return RedirectResponse(f"/cases/{cid}#notes", status_code=303)

    async def file_page(request: Request) -> Response:
        cid, fid = request.path_params["case_id"], request.path_params["file_id"]
        sid = request.query_params.get("scan")
        view = await run_in_threadpool(file_view, cid, fid, int(sid) if sid and sid.isdigit() else None,
                                       actor_of(request))
        return page(request, "file.html.j2", case=db.case(cid), **view)

    async def compare_page(request: Request) -> Response:
        cid = request.path_params["case_id"]
        q = request.query_params
        if not (q.get("a", "").isdigit() and q.get("b", "").isdigit()):
            view = await run_in_threadpool(case_view, cid)
            return page(request, "case.html.j2", 400, compare_error="choose two files to compare", **view)
        left = await run_in_threadpool(file_view, cid, int(q["a"]), None, actor_of(request))
        right = await run_in_threadpool(file_view, cid, int(q["b"]), None, actor_of(request))
        return page(request, "compare.html.j2", case=db.case(cid), left=left, right=right)

    async def export(request: Request) -> Response:
        cid = request.path_params["case_id"]
        data = await run_in_threadpool(export_case, db, config.scans_dir, cid, actor_of(request))
        return Response(data, media_type="application/zip",
                        headers={"content-disposition": f'attachment; filename="case-{cid}.zip"'})

    async def scan_asset(request: Request) -> Response:
        sid = request.path_params["scan_id"]
        db.scan(sid)
        _, out = scan_paths(config.scans_dir, sid)
        rel = request.path_params["path"]
        target = Path(os.path.realpath(out / rel))
        root = Path(os.path.realpath(out))
        if root not in target.parents or not target.is_file():
            raise HTTPException(404, f"no {rel!r} in scan {sid}'s output")
        return FileResponse(target)

    # ------------------------------------------------------------------------------------------ API

    async def api_cases(request: Request) -> Response:
        if request.method == "POST":
            body = await _json(request)
            name = str(body.get("name") or "").strip()
            if not name:
                return JSONResponse({"error": "a case needs a name ('name')"}, 400)
            cid = await run_in_threadpool(db.create_case, name[:200], str(body.get("description") or "")[:2000],
                                          actor_of(request))
            return JSONResponse({"id": cid}, 201)
        return JSONResponse({"cases": await run_in_threadpool(db.list_cases)})

    async def api_case(request: Request) -> Response:
        view = await run_in_threadpool(case_view, request.path_params["case_id"])
        view.pop("custody")
        return JSONResponse(view)

    async def api_upload(request: Request) -> Response:
        accepted, refused = await read_uploads(request, request.path_params["case_id"])
        status = 201 if accepted else refused[0]["status"]
        return JSONResponse({"accepted": accepted, "refused": refused}, status)

    async def api_import(request: Request) -> Response:
        body = await _json(request)
        accepted, refused = await run_in_threadpool(import_folder, request.path_params["case_id"],
                                                    str(body.get("folder") or ""), actor_of(request))
        return JSONResponse({"accepted": accepted, "refused": refused},
                            201 if accepted else refused[0]["status"])

    async def api_scans(request: Request) -> Response:
        cid = request.path_params["case_id"]
        if request.method == "GET":
            return JSONResponse({"scans": await run_in_threadpool(db.scans, cid)})
        body = await _json(request)
        ids = body.get("files")
        if ids is not None and not (isinstance(ids, list) and all(isinstance(i, int) for i in ids)):
            return JSONResponse({"error": "'files' must be a list of file ids"}, 400)
        try:
            sid = await run_in_threadpool(start_scan, cid, ids, dict(body.get("settings") or {}), actor_of(request))
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse({"scan": sid}, 202)

    async def api_scan(request: Request) -> Response:
        sid = request.path_params["scan_id"]
        prog = await run_in_threadpool(progress, db, config.scans_dir, sid)
        prog["results"] = await run_in_threadpool(result_rows, sid)
        return JSONResponse(prog)

    async def api_events(request: Request) -> Response:
        sid = request.path_params["scan_id"]
        db.scan(sid)

        async def events():
            last, quiet = None, 0
            while True:
                prog = await run_in_threadpool(progress, db, config.scans_dir, sid)
                if prog["status"] == "done":
                    prog["results"] = await run_in_threadpool(result_rows, sid)
                    prog["bundle_sha256"] = (await run_in_threadpool(db.scan, sid))["bundle_sha256"]
                text = json.dumps(prog, sort_keys=True)
                if text != last:
                    yield f"event: progress\ndata: {text}\n\n"
                    last, quiet = text, 0
                elif (quiet := quiet + 1) % 25 == 0:  # a comment line now and then keeps proxies from timing out
                    yield ": keep-alive\n\n"
                if prog["status"] in ("done", "failed"):
                    yield "event: end\ndata: {}\n\n"
                    return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(EVENT_INTERVAL_S)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"cache-control": "no-cache", "x-accel-buffering": "no"})

    async def api_custody(request: Request) -> Response:
        cid = request.path_params["case_id"]
        return JSONResponse({"custody": await run_in_threadpool(db.custody, cid)})

    async def api_notes(request: Request) -> Response:
        cid = request.path_params["case_id"]
        if request.method == "GET":
            return JSONResponse({"notes": await run_in_threadpool(db.notes, cid)})
        body = await _json(request)
        text = str(body.get("text") or "").strip()
        if not text:
            return JSONResponse({"error": "an empty note"}, 400)
        fid = body.get("file")
        if fid is not None:
            db.file(cid, int(fid))
        nid = await run_in_threadpool(db.add_note, cid, fid, text[:10000], actor_of(request))
        return JSONResponse({"id": nid}, 201)

    # ------------------------------------------------------------------------------------------ errors

    async def not_found(request: Request, exc: Exception) -> Response:
        msg = str(exc) if isinstance(exc, NotFound) else getattr(exc, "detail", "not found")
        if wants_json(request):
            return JSONResponse({"error": msg}, 404)
        return page(request, "error.html.j2", 404, message=msg)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return await not_found(request, exc)
        if wants_json(request):
            return JSONResponse({"error": exc.detail}, exc.status_code)
        return page(request, "error.html.j2", exc.status_code, message=exc.detail)

    async def bad_request(request: Request, exc: Exception) -> Response:
        if wants_json(request):
            return JSONResponse({"error": str(exc)}, 400)
        return page(request, "error.html.j2", 400, message=str(exc))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        from forensics.serve.worker import WorkerPool

        pool = WorkerPool(config, db)
        app.state.requeued = pool.start()
        app.state.pool = pool
        try:
            yield
        finally:
            pool.stop()

    C = "/cases/{case_id:int}"
    routes = [
        Route("/", index),
        Route("/cases", create_case_form, methods=["POST"]),
        Route(C, case_page),
        Route(C + "/upload", case_upload_form, methods=["POST"]),
        Route(C + "/import", case_import_form, methods=["POST"]),
        Route(C + "/scan", case_scan_form, methods=["POST"]),
        Route(C + "/notes", case_note_form, methods=["POST"]),
        Route(C + "/files/{file_id:int}", file_page),
        Route(C + "/compare", compare_page),
        Route(C + "/export", export),
        Route("/scans/{scan_id:int}/out/{path:path}", scan_asset),
        Route("/api/cases", api_cases, methods=["GET", "POST"]),
        Route("/api" + C, api_case),
        Route("/api" + C + "/files", api_upload, methods=["POST"]),
        Route("/api" + C + "/import", api_import, methods=["POST"]),
        Route("/api" + C + "/scans", api_scans, methods=["GET", "POST"]),
        Route("/api" + C + "/custody", api_custody),
        Route("/api" + C + "/notes", api_notes, methods=["GET", "POST"]),
        Route("/api" + C + "/export", export),
        Route("/api/scans/{scan_id:int}", api_scan),
        Route("/api/scans/{scan_id:int}/events", api_events),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={NotFound: not_found, HTTPException: http_error, ValueError: bad_request})
    app.state.config = config
    app.state.db = db
    return app


def guarded_app(config: ServeConfig):
    """The app behind the token / Host / Origin guard: what the server runs and the tests drive."""
    app = create_app(config)
    guard = Guard(app, config.token)
    guard.state = app.state  # type: ignore[attr-defined]
    return guard


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise ValueError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body
