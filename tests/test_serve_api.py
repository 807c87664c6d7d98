"""forensics serve through Starlette's TestClient (no worker processes, no scans): the token on a non-local bind,
Host and Origin checks, refused uploads (traversal names, empty, wrong type, over the limit) with their
messages, 50 concurrent uploads counted in SQLite, read-only content-addressed evidence, folder import, export."""
from __future__ import annotations

import io
import json
import sqlite3
import stat
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from forensics.serve.app import guarded_app
from forensics.serve.config import ServeConfig, is_loopback
from tests.serve_util import STARTER, png_bytes

LOCAL = "http://127.0.0.1:8765"


def make_client(tmp_path: Path, **kw) -> TestClient:
    cfg = ServeConfig(cases=tmp_path / "cases", workers=0, **kw)
    return TestClient(guarded_app(cfg), base_url=LOCAL)


@pytest.fixture
def client(tmp_path: Path):
    with make_client(tmp_path, max_upload_bytes=64 * 1024) as c:
        yield c


def new_case(client: TestClient, name: str = "case") -> int:
    r = client.post("/api/cases", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def upload(client: TestClient, case: int, name: str, data: bytes):
    return client.post(f"/api/cases/{case}/files", files={"file": (name, data, "application/octet-stream")})


def test_loopback_names() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.3.4.5")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("example.org")


def test_check_name() -> None:
    from forensics.serve.uploads import UploadRefused, check_name

    assert check_name("IMG 0001 (copy).JPG") == "IMG 0001 (copy).JPG"
    assert check_name("..hidden.jpg") == "..hidden.jpg"  # dots inside a name are no traversal
    for bad in ("", None, "../x.jpg", "x/..", "a\\b.jpg", "...", " . ", "e\tvil.jpg", "nul\x00.jpg", "D:x.png",
                "x" * 300):
        with pytest.raises(UploadRefused):
            check_name(bad)


def test_non_local_bind_needs_a_token(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs a token"):
        ServeConfig(cases=tmp_path / "c", host="0.0.0.0")
    cfg = ServeConfig(cases=tmp_path / "c", host="0.0.0.0", token="s3cret-token", workers=0)
    with TestClient(guarded_app(cfg), base_url="http://10.1.2.3:8765") as c:
        for path in ("/", "/api/cases", "/static/app.css", "/cases/1", "/scans/1/out/report.html",
                     "/api/scans/1/events", "/cases/1/export"):
            r = c.get(path)
            assert r.status_code == 401, (path, r.status_code)
        assert c.post("/api/cases", json={"name": "x"}).status_code == 401
        r = c.get("/api/cases", headers={"authorization": "Bearer wrong"})
        assert r.status_code == 401 and r.json()["error"] == "wrong token"
        r = c.get("/", headers={"accept": "text/html"})
        assert r.status_code == 401 and "token is required" in r.text
        ok = {"authorization": "Bearer s3cret-token"}
        assert c.get("/api/cases", headers=ok).status_code == 200
        assert c.post("/api/cases", json={"name": "x"}, headers=ok).status_code == 201
        # ?token= once: the answer sets the cookie, later requests need nothing else
        r = c.get("/?token=s3cret-token")
        assert r.status_code == 200 and "forensics_token" in r.headers["set-cookie"]
        assert "HttpOnly" in r.headers["set-cookie"]
        assert c.get("/api/cases").status_code == 200  # the client kept the cookie
    with sqlite3.connect(cfg.db_path) as con:
        assert con.execute("SELECT COUNT(*) FROM cases").fetchone()[0] == 1  # the refused POST made nothing


def test_loopback_bind_refuses_other_host_and_cross_site_posts(tmp_path: Path) -> None:
    cfg = ServeConfig(cases=tmp_path / "c", workers=0)
    with TestClient(guarded_app(cfg), base_url="http://evil.example:8765") as c:
        r = c.get("/api/cases")  # DNS rebinding: a foreign name pointing at 127.0.0.1
        assert r.status_code == 403 and "only to localhost" in r.json()["error"]
    with TestClient(guarded_app(cfg), base_url=LOCAL) as c:
        assert c.get("/api/cases").status_code == 200
        r = c.post("/api/cases", json={"name": "x"}, headers={"origin": "http://evil.example"})
        assert r.status_code == 403 and "cross-site" in r.json()["error"]
        assert c.post("/api/cases", json={"name": "x"}, headers={"origin": LOCAL}).status_code == 201


@pytest.mark.parametrize("name", ["../evil.jpg", "../../etc/cron.d/x.jpg", "..\\evil.jpg", "a/b.jpg",
                                  "/abs/evil.jpg", "..", "C:evil.jpg"])
def test_traversal_names_are_refused(client: TestClient, tmp_path: Path, name: str) -> None:
    case = new_case(client)
    data = (STARTER / "franck_01829.jpg").read_bytes()
    r = upload(client, case, name, data)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["accepted"] == [] and body["refused"][0]["name"] == name
    assert any(w in body["refused"][0]["error"] for w in ("folder part", "dots", "drive letter", "control"))
    # nothing was stored, inside or outside the case folder
    evidence = tmp_path / "cases" / "evidence"
    assert [p for p in evidence.rglob("*") if p.is_file()] == []
    assert not (tmp_path / "evil.jpg").exists() and not (tmp_path / "cases" / "evil.jpg").exists()
    assert client.get(f"/api/cases/{case}").json()["files"] == []
    # the page says so too
    r = client.post(f"/cases/{case}/upload", files={"file": (name, data, "image/jpeg")})
    assert r.status_code == 400 and "refused" in r.text and "✗" in r.text


def test_asset_paths_cannot_leave_the_scan_folder(client: TestClient, tmp_path: Path) -> None:
    case = new_case(client)
    r = client.post(f"/api/cases/{case}/scans", json={})
    assert r.status_code == 400 and "no files" in r.json()["error"]
    assert upload(client, case, "f.jpg", (STARTER / "franck_01829.jpg").read_bytes()).status_code == 201
    sid = client.post(f"/api/cases/{case}/scans", json={"settings": {"evidence": False}}).json()["scan"]
    (tmp_path / "cases" / "scans" / f"{sid:06d}" / "out").mkdir(parents=True)
    for path in (f"/scans/{sid}/out/..%2f..%2f..%2fcases.sqlite3", f"/scans/{sid}/out/%2e%2e/%2e%2e/%2e%2e/cases.sqlite3",
                 f"/scans/{sid}/out/../inputs/f.jpg", "/static/..%2fapp.py", f"/scans/{sid}/out/%2fetc%2fpasswd"):
        r = client.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert b"SQLite format" not in r.content


def test_bad_uploads_get_clear_messages(client: TestClient) -> None:
    case = new_case(client)
    cases = [("empty.jpg", b"", 400, "empty (0 bytes)"),
             ("notes.jpg", b"just some text, not a photo\n" * 4, 415, "not an image or video"),
             ("big.png", png_bytes(0, side=160), 413, "upload limit of 64.0 KiB"),
             ("random.mp4", bytes(range(256)) * 8, 415, "not an image or video")]
    assert len(png_bytes(0, side=160)) > 64 * 1024
    for name, data, status, words in cases:
        r = upload(client, case, name, data)
        assert r.status_code == status, (name, r.text)
        assert words in r.json()["refused"][0]["error"], r.json()
        r = client.post(f"/cases/{case}/upload", files={"file": (name, data, "image/png")})
        assert r.status_code == status and words in r.text
    # a body far over the limit is refused from its Content-Length, before it is read
    r = client.post(f"/api/cases/{case}/files", content=b"x" * (2 << 20),
                    headers={"content-type": "multipart/form-data; boundary=zz"})
    assert r.status_code == 413 and "upload limit" in r.json()["refused"][0]["error"]
    r = client.post(f"/api/cases/{case}/files", content=b"garbage", headers={"content-type": "multipart/form-data"})
    assert r.status_code == 400
    r = client.post(f"/api/cases/{case}/files", data={"nofile": "x"})
    assert r.status_code == 400 and "no file" in r.json()["refused"][0]["error"]
    # and the server still works: a good file goes in, stored read-only under its sha256
    r = upload(client, case, "ok.png", png_bytes(2))
    assert r.status_code == 201, r.text
    a = r.json()["accepted"][0]
    stored = Path(client.app.state.config.evidence_dir) / a["sha256"][:2] / a["sha256"]
    assert stored.read_bytes() == png_bytes(2)
    assert stat.S_IMODE(stored.stat().st_mode) == 0o444
    assert client.get(f"/api/cases/{case}").json()["files"][0]["name"] == "ok.png"
    # a wrong extension is a note, not a refusal (the scan reads by content, as `forensics scan` does); a
    # damaged file of a known type goes in and its scan says what is wrong with it
    r = upload(client, case, "really_a_png.jpg", png_bytes(3))
    assert r.status_code == 201 and "content is PNG" in r.json()["accepted"][0]["note"]
    assert client.get("/api/cases/999").status_code == 404
    assert client.get("/cases/999").status_code == 404
    assert client.post("/api/cases/1/scans", json={"files": [12345]}).status_code == 400
    assert client.post("/api/cases/1/scans", json={"settings": {"every": 0}}).status_code == 400


def test_50_concurrent_uploads_none_lost(client: TestClient) -> None:
    case = new_case(client)
    payloads = {f"img_{i:02d}.png": png_bytes(100 + i) for i in range(50)}
    payloads["dup_of_00.png"] = payloads["img_00.png"]  # same bytes twice: one file row, two custody lines

    def send(item):
        name, data = item
        r = upload(client, case, name, data)
        return r.status_code, r.json()

    with ThreadPoolExecutor(max_workers=16) as ex:
        answers = list(ex.map(send, payloads.items()))
    assert all(status == 201 for status, _ in answers), answers
    db = client.app.state.config.db_path
    with sqlite3.connect(db) as con:
        n_files = con.execute("SELECT COUNT(*) FROM files WHERE case_id = ?", (case,)).fetchone()[0]
        n_sha = con.execute("SELECT COUNT(DISTINCT sha256) FROM files WHERE case_id = ?", (case,)).fetchone()[0]
        added = con.execute("SELECT COUNT(*) FROM custody WHERE case_id = ? AND action IN ('added', 'added again')",
                            (case,)).fetchone()[0]
        mode = con.execute("PRAGMA journal_mode").fetchone()[0]
    assert (n_files, n_sha, added, mode) == (50, 50, 51, "wal")
    stored = [p for p in Path(client.app.state.config.evidence_dir).rglob("*") if p.is_file() and p.parent.name != "tmp"]
    assert len(stored) == 50
    assert list((Path(client.app.state.config.evidence_dir) / "tmp").iterdir()) == []


def test_folder_import_export_and_custody(tmp_path: Path) -> None:
    media = tmp_path / "media"
    (media / "sub").mkdir(parents=True)
    (media / "a.png").write_bytes(png_bytes(7))
    (media / "sub" / "b.jpg").write_bytes((STARTER / "franck_01829.jpg").read_bytes())
    (media / "readme.txt").write_text("not media")
    (media / "link.png").symlink_to(media / "a.png")
    with make_client(tmp_path, import_root=media) as c:
        case = new_case(c, "import")
        r = c.post(f"/api/cases/{case}/import", json={"folder": str(media)})
        assert r.status_code == 201, r.text
        assert sorted(a["name"] for a in r.json()["accepted"]) == ["a.png", "b.jpg"]
        refused = {Path(x["name"]).name: x["error"] for x in r.json()["refused"]}
        assert set(refused) == {"readme.txt", "link.png"}
        assert "not an image or video" in refused["readme.txt"] and "link" in refused["link.png"]
        r = c.post(f"/api/cases/{case}/import", json={"folder": str(tmp_path)})
        assert r.status_code == 403 and "import root" in r.json()["refused"][0]["error"]
        r = c.post(f"/api/cases/{case}/import", json={"folder": "media"})
        assert r.status_code == 400 and "absolute" in r.json()["refused"][0]["error"]
        r = c.post(f"/cases/{case}/import", data={"folder": str(media / "nope")})
        assert r.status_code == 400 and "not a folder" in r.text
        assert c.post(f"/api/cases/{case}/notes", json={"text": "first look: two files"}).status_code == 201
        r = c.get(f"/cases/{case}/export")
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
        z = zipfile.ZipFile(io.BytesIO(r.content))
        assert {"README.txt", "case.json", "custody.csv", "custody.json"} <= set(z.namelist())
        doc = json.loads(z.read("case.json"))
        assert sorted(f["name"] for f in doc["files"]) == ["a.png", "b.jpg"]
        assert doc["notes"][0]["text"] == "first look: two files"
        custody = json.loads(z.read("custody.json"))
        actions = [x["action"] for x in custody]
        assert actions.count("added") == 2 and actions.count("exported") == 2
        assert all(x["time_utc"].endswith("Z") for x in custody)
        # the pages render
        for path in ("/", f"/cases/{case}", f"/cases/{case}/files/1", f"/cases/{case}/compare?a=1&b=2"):
            assert c.get(path).status_code == 200, path
        assert c.get(f"/cases/{case}/compare?a=1").status_code == 400
        assert "viewed" in [x["action"] for x in c.get(f"/api/cases/{case}/custody").json()["custody"]]


def test_pages_load_nothing_from_elsewhere(client: TestClient) -> None:
    """No CDN: the templates and static files name no other host, and the pages forbid it to the browser too."""
    from forensics.serve import app as serve_app

    root = Path(serve_app.__file__).parent
    for path in [*root.glob("templates/*"), *root.glob("static/*")]:
        text = path.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path
    r = client.get("/")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert r.headers["referrer-policy"] == "same-origin"  # no-referrer would make Chrome send Origin: null
