"""The evidence store: every file once, named by its sha256 (`evidence/ab/abcdef...`), written once and made
read-only (mode 0444), never opened for writing again. A file is hashed while it is copied in; it appears under
its final name only complete (temp file, fsync, rename), so a killed upload leaves no half file behind.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from forensics.serve.uploads import UploadRefused, human_bytes

CHUNK = 1 << 20


@dataclass(frozen=True)
class Stored:
    sha256: str
    size: int
    path: Path
    kind: str  # image | video
    format: str | None
    content: str
    note: str | None  # an extension that disagrees with the content


class EvidenceStore:
    def __init__(self, root: str | os.PathLike, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.tmp = self.root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def put(self, src: BinaryIO, name: str) -> Stored:
        """Copy `src` in (hashing it), refuse it if empty, too large or not media; the stored file's record."""
        from forensics.scan.discover import sniff

        suffix = Path(name).suffix[:16]
        tmp = self.tmp / f"{uuid.uuid4().hex}{suffix}"
        digest, size = hashlib.sha256(), 0
        try:
            with open(tmp, "xb") as out:
                while chunk := src.read(CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise UploadRefused(name, f"larger than the upload limit of {human_bytes(self.max_bytes)} "
                                            f"(--max-upload)", 413)
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if size == 0:
                raise UploadRefused(name, "the file is empty (0 bytes)")
            sniffed = sniff(tmp)
            if sniffed.kind == "unknown":
                raise UploadRefused(name, f"not an image or video the scan reads (the content is {sniffed.description}"
                                    "; images: JPEG, PNG, WebP, BMP, TIFF, GIF; videos: MP4, MOV, AVI, MKV, WebM)",
                                    415)
            sha = digest.hexdigest()
            final = self.path(sha)
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():  # the same bytes are already here: keep the first copy untouched
                tmp.unlink()
            else:
                os.chmod(tmp, 0o444)
                os.replace(tmp, final)
                _fsync_dir(final.parent)
            return Stored(sha, size, final, sniffed.kind, sniffed.format, sniffed.description, sniffed.mismatch)
        finally:
            tmp.unlink(missing_ok=True)

    def put_path(self, path: Path, name: str) -> Stored:
        with open(path, "rb") as fh:  # read-only: an imported original is never written
            return self.put(fh, name)

    def link_into(self, sha256: str, dest: Path) -> None:
        """Put the stored file at `dest` (a scan's input name) without copying: a hard link, else a read-only copy."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            return
        try:
            os.link(self.path(sha256), dest)
        except OSError:
            shutil.copy2(self.path(sha256), dest)
            os.chmod(dest, 0o444)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
