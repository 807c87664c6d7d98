"""What an uploaded or imported file must pass before it is stored, and the messages a refusal gives.

A name is refused, never repaired: a folder part (`../x.jpg`, `a/b.jpg`, `C:\\x.jpg`), a NUL or control
character, or nothing but dots. Bytes are refused when empty, over the size limit, or not an image or video the
scan reads (judged by content, as the scan does). Every refusal is an `UploadRefused` with a sentence for the
page and the API and an HTTP status.
"""
from __future__ import annotations

import unicodedata

MAX_NAME_CHARS = 255


class UploadRefused(ValueError):
    def __init__(self, name: str, reason: str, status: int = 400) -> None:
        self.name = name
        self.reason = reason
        self.status = status
        super().__init__(f"{name!r} refused: {reason}")

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "error": self.reason, "status": self.status}


def check_name(name: str | None) -> str:
    """The file's own name as given, or UploadRefused saying why it cannot be one."""
    if name is None or name == "":
        raise UploadRefused(name or "", "the upload has no file name")
    if "/" in name or "\\" in name:
        raise UploadRefused(name, "the name holds a folder part ('/' or '\\'); path names are refused, "
                            "only a file's own name is accepted")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise UploadRefused(name, "the name holds a NUL or control character")
    if name.strip(". ") == "":
        raise UploadRefused(name, "the name is only dots or spaces (a path traversal name)")
    if len(name) > MAX_NAME_CHARS:
        raise UploadRefused(name[:40] + "...", f"the name is longer than {MAX_NAME_CHARS} characters")
    if len(name) >= 2 and name[1] == ":":
        raise UploadRefused(name, "the name starts with a drive letter ('C:'); only a file's own name is accepted")
    return name


def human_bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"
