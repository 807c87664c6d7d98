"""Helpers of the forensics serve tests: a real server process on a free loopback port, a small HTTP client
(urllib3: loopback only, which the no-network fixture allows) and tiny distinct PNGs."""
from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
STARTER = REPO / "forensics" / "assets" / "starter"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png_bytes(seed: int, side: int = 8) -> bytes:
    """A tiny PNG whose bytes differ for every seed."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


class Server:
    """`python -m forensics serve` in its own process (its workers are its children)."""

    def __init__(self, cases: Path, *args: str, port: int | None = None) -> None:
        self.cases = cases
        self.port = port or free_port()
        self.args = list(args)
        self.proc: subprocess.Popen | None = None
        self.log = cases.parent / f"serve-{self.port}.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> "Server":
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "forensics", "serve", "--cases", str(self.cases), "--port", str(self.port),
               *self.args]
        self._fh = open(self.log, "ab")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self._fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if self.get("/api/cases")[0] == 200:
                    return self
            except Exception:
                time.sleep(0.2)
        raise RuntimeError(f"server did not answer within {timeout}s: {self.log.read_text()[-2000:]}")

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                fields: Any = None, timeout: float = 30) -> tuple[int, bytes]:
        import urllib3

        http = urllib3.PoolManager(retries=False, timeout=timeout)
        if fields is not None:
            r = http.request(method, self.base + path, fields=fields, headers=headers)
        else:
            r = http.request(method, self.base + path, body=body, headers=headers)
        return r.status, r.data

    def get(self, path: str) -> tuple[int, Any]:
        status, data = self.request("GET", path, timeout=5)
        try:
            return status, json.loads(data)
        except ValueError:
            return status, data

    def post_json(self, path: str, obj: Any) -> tuple[int, Any]:
        status, data = self.request("POST", path, json.dumps(obj).encode(), {"content-type": "application/json"})
        return status, json.loads(data)

    def upload(self, case: int, name: str, data: bytes) -> tuple[int, Any]:
        status, body = self.request("POST", f"/api/cases/{case}/files", fields={"file": (name, data)})
        return status, json.loads(body)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._fh.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self._fh.close()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
