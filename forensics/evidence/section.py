"""What one piece of evidence gives a scan: JSON fields, pictures, and its stance for the agreement table."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# A signal's stance. Evidence other than the detectors rarely proves anything: "no sign" is not "authentic",
# and a missing manifest or stripped metadata is "no information", never a point for either side.
SUGGESTS_MANIPULATION = "suggests manipulation"
NO_SIGN = "no sign"
NO_INFORMATION = "no information"
STANCES = (SUGGESTS_MANIPULATION, NO_SIGN, NO_INFORMATION)


@dataclass(frozen=True)
class Signal:
    """One signal's stance on a file and the reason, in words an analyst can check against the section."""

    stance: str
    reason: str

    def __post_init__(self) -> None:
        if self.stance not in STANCES:
            raise ValueError(f"stance must be one of {STANCES}, got {self.stance!r}")

    def to_dict(self) -> dict[str, str]:
        return {"stance": self.stance, "reason": self.reason}


@dataclass
class Section:
    """One evidence section of a file.

    fields: JSON-able (str/int/float/bool/None/list/dict), written to scan.json under `evidence[name]`.
    assets: picture name -> bytes (PNG), written into the file's asset folder; `fields` name them by file name.
    signal: the section's stance for the agreement table (None: the section takes no stance, e.g. container facts).
    """

    name: str
    fields: dict[str, Any]
    assets: dict[str, bytes] = field(default_factory=dict)
    signal: Signal | None = None
