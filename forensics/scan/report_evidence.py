"""The report's evidence sections: the agreement table first, then each file section (metadata, JPEG history,
Content Credentials, container), and each face's where-maps beside its scores.

Every section shows its stance and reason, its pictures, then its facts as a table; scalar facts first, lists
and objects folded under a <details> so a long tag list does not bury the rest. Everything that comes from the
file (tag values, signer names) is escaped.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from markupsafe import escape

from forensics.evidence.section import NO_INFORMATION, NO_SIGN, SUGGESTS_MANIPULATION

FILE_ORDER = ("agreement", "c2pa", "metadata", "jpeg", "container")
FACE_ORDER = ("gradcam", "mask", "noise", "spectrum")
TITLES = {"agreement": "Agreement of all signals", "c2pa": "Content Credentials (C2PA)",
          "metadata": "Metadata (EXIF, XMP, IPTC)", "jpeg": "JPEG history and error levels",
          "container": "Container and streams", "gradcam": "Grad-CAM (CNN)", "mask": "Predicted blend mask",
          "noise": "Noise residual", "spectrum": "Spectrum vs real faces"}
_STANCE_CLASS = {SUGGESTS_MANIPULATION: "v-likely", NO_SIGN: "v-clean", NO_INFORMATION: "v-none"}
_SKIP = {"signal", "pictures"}
Embed = Callable[[str | None], str]


def stance_badge(stance: str | None) -> str:
    if not stance:
        return '<span class="badge v-none">no stance</span>'
    return f'<span class="badge {_STANCE_CLASS.get(stance, "v-none")}">{escape(stance)}</span>'


def _value(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return escape(f"{value:.{digits}g}")
    if isinstance(value, (dict, list)):
        text = json.dumps(value, sort_keys=True, ensure_ascii=False)
        return f'<span class="mono">{escape(text[:1500])}{"..." if len(text) > 1500 else ""}</span>'
    return escape("" if value is None else str(value))


def facts_table(section: Mapping[str, Any]) -> str:
    """Scalars as rows; lists and objects folded under one <details>."""
    scalars = [(k, v) for k, v in section.items() if k not in _SKIP and not isinstance(v, (dict, list))]
    nested = [(k, v) for k, v in section.items() if k not in _SKIP and isinstance(v, (dict, list)) and v]
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{_value(v)}</td></tr>" for k, v in scalars)
    html = f"<table>{rows}</table>" if rows else ""
    if nested:
        inner = "".join(f"<tr><th>{escape(k)}</th><td>{_value(v)}</td></tr>" for k, v in nested)
        names = ", ".join(escape(k) for k, _ in nested)
        html += f"<details><summary>more ({names})</summary><table>{inner}</table></details>"
    return html


def _signal_line(section: Mapping[str, Any]) -> str:
    signal = section.get("signal")
    if not signal:
        return ""
    return f"<p>{stance_badge(signal['stance'])} {escape(signal['reason'])}</p>"


def _pictures(section: Mapping[str, Any], embed: Embed, css: str = "evidence") -> str:
    return "".join(f'<img class="{css}" alt="{escape(p.rsplit("/", 1)[-1])}" src="{embed(p)}">'
                   for p in section.get("pictures", []))


def agreement_html(table: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{escape(r['signal'])}</td><td class=\"muted\">{escape(r['kind'])}</td>"
        f"<td>{stance_badge(r['stance'])}</td><td>{escape(r['reason'])}</td></tr>" for r in table["rows"])
    fused = table.get("fused")
    if fused:
        p = "" if fused["probability"] is None else f" (P {fused['probability']:.3f})"
        rows += (f"<tr><th>fused model</th><td class=\"muted\">combination</td><td>{escape(fused['verdict'])}{p}"
                 f"</td><td class=\"muted\">{escape(fused['note'])}</td></tr>")
    flag = ('<p class="err"><b>Conflict:</b> ' if table["conflict"] else "<p>") + f"{escape(table['summary'])}</p>"
    return (f"{flag}<table><tr><th>signal</th><th>kind</th><th>stance</th><th>reason</th></tr>{rows}</table>"
            "<p class=\"muted\">Each row is one signal on its own; conflicts are shown, not averaged. Evidence "
            "other than the detectors rarely proves anything: <i>no sign</i> is not <i>authentic</i>, and missing "
            "metadata or a missing manifest is <i>no information</i>.</p>")


def file_evidence_html(evidence: Mapping[str, Any], embed: Embed) -> str:
    """Every file section in a fixed order (unknown ones after, by name)."""
    names = [n for n in FILE_ORDER if n in evidence] + sorted(n for n in evidence if n not in FILE_ORDER)
    parts = []
    for name in names:
        section = evidence[name]
        title = escape(TITLES.get(name, name))
        if name == "agreement":
            parts.append(f"<h3>{title}</h3>{agreement_html(section)}")
            continue
        note = f'<p class="muted">{escape(section["note"])}</p>' if isinstance(section.get("note"), str) else ""
        facts = facts_table({k: v for k, v in section.items() if k != "note"})
        parts.append(f"<h3>{title}</h3>{_signal_line(section)}{note}<div>{_pictures(section, embed)}</div>{facts}")
    return "".join(parts)


def face_evidence_html(evidence: Mapping[str, Any], embed: Embed) -> str:
    """A face's where-maps side by side, each with its stance; the facts folded below."""
    names = [n for n in FACE_ORDER if n in evidence] + sorted(n for n in evidence if n not in FACE_ORDER)
    if not names:
        return ""
    cells = []
    for name in names:
        section = evidence[name]
        signal = section.get("signal")
        caption = escape(TITLES.get(name, name))
        stance = f"<br>{stance_badge(signal['stance'])}" if signal else ""
        error = f'<br><span class="err">{escape(section["error"])}</span>' if section.get("error") else ""
        cells.append(f'<div class="map">{_pictures(section, embed, "map")}<br>{caption}{stance}{error}</div>')
    details = "".join(f"<tr><th>{escape(TITLES.get(n, n))}</th><td>{_signal_line(evidence[n])}"
                      f"{facts_table(evidence[n])}</td></tr>" for n in names)
    return (f'<div class="maps">{"".join(cells)}</div>'
            f"<details><summary>where-map details</summary><table>{details}</table></details>")
