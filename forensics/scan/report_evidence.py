"""The report's evidence sections: the agreement table first, then each file section (metadata, JPEG history,
Content Credentials, container), and each face's where-maps beside its scores.

Every section shows its stance and reason, its pictures, then its facts as a table; scalar facts first, lists
and objects folded under a <details> so a long tag list does not bury the rest. Everything that comes from the
file (tag values, signer names) is escaped.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
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
_SKIP = {"signal", "pictures", "curve", "asset", "face"}  # drawn or shown already
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


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _inline(value: Any) -> str | None:
    """A short object or list as one line ("key: value; ..."), or None when it is too long to read inline. An
    object's nested members are left out of the line (the folded table below shows them)."""
    if isinstance(value, dict):
        scalars = [(k, v) for k, v in value.items() if _scalar(v) and v not in (None, "")]
        if scalars and len(scalars) <= 16:
            return "; ".join(f"{escape(k)}: {_value(v)}" for k, v in scalars)
    if isinstance(value, list) and len(value) <= 6:
        if all(_scalar(v) for v in value):
            return ", ".join(_value(v) for v in value)
        lines = [_inline(v) for v in value]
        if all(line is not None for line in lines):
            return "<br>".join(str(line) for line in lines)
    return None


def facts_table(section: Mapping[str, Any]) -> str:
    """Scalars and short objects as rows; long lists and objects folded under one <details>. Empty facts are
    left out (the JSON keeps them)."""
    rows, folded = [], []
    for key, value in section.items():
        if key in _SKIP or value is None or value == "" or value == [] or value == {}:
            continue
        line = _value(value) if _scalar(value) else _inline(value)
        if line is not None:
            rows.append(f"<tr><th>{escape(key)}</th><td>{line}</td></tr>")
        if line is None or json.dumps(value).count("{") + json.dumps(value).count("[") > 1:  # nested: all of it
            folded.append(f"<tr><th>{escape(key)}</th><td>{_value(value)}</td></tr>")
    html = f"<table>{''.join(rows)}</table>" if rows else ""
    if folded:
        html += f"<details><summary>more ({len(folded)})</summary><table>{''.join(folded)}</table></details>"
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


def spectrum_svg(curve: Sequence[float], band: Any | None, high_from: int | None, width: int = 160,
                 height: int = 128) -> str:
    """The face's azimuthal spectrum (red) over the real-face band (blue: 5-95% shaded, median line), the
    high-frequency bins shaded grey, as inline SVG: drawn by the browser from scan.json's numbers."""
    n = len(curve)
    if n < 2:
        return ""
    series = [list(curve)] + ([list(band.p5), list(band.p50), list(band.p95)] if band is not None else [])
    lo, hi = min(min(v) for v in series), max(max(v) for v in series)
    span = (hi - lo) or 1.0

    def pts(values: Sequence[float]) -> list[str]:
        return [f"{i * (width - 1) / (n - 1):.1f},{(height - 4) - (v - lo) / span * (height - 8) + 2:.1f}"
                for i, v in enumerate(values)]

    parts = [f'<svg class="map" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="spectrum against the real band">',
             f'<rect width="{width}" height="{height}" fill="#fff"/>']
    if high_from is not None:
        x = high_from * (width - 1) / (n - 1)
        parts.append(f'<rect x="{x:.1f}" width="{width - x:.1f}" height="{height}" fill="#eee"/>')
    if band is not None:
        area = pts(band.p95) + list(reversed(pts(band.p5)))
        parts.append(f'<polygon points="{" ".join(area)}" fill="#1f77b4" fill-opacity="0.25"/>')
        parts.append(f'<polyline points="{" ".join(pts(band.p50))}" fill="none" stroke="#1f77b4" stroke-width="1"/>')
    parts.append(f'<polyline points="{" ".join(pts(curve))}" fill="none" stroke="#d62728" stroke-width="1.5"/>')
    parts.append("</svg>")
    return "".join(parts)


def face_evidence_html(evidence: Mapping[str, Any], embed: Embed, band: Any | None = None) -> str:
    """A face's where-maps side by side, each with its stance; the facts folded below. `band`: the bundle's
    real-face spectrum reference (forensics.evidence.spectrum.SpectrumReference), for the spectrum plot."""
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
        picture = _pictures(section, embed, "map")
        if name == "spectrum" and section.get("curve"):
            picture = spectrum_svg(section["curve"], band, section.get("high_freq_from"))
        cells.append(f'<div class="map">{picture}<br>{caption}{stance}{error}</div>')
    details = "".join(f"<tr><th>{escape(TITLES.get(n, n))}</th><td>{_signal_line(evidence[n])}"
                      f"{facts_table(evidence[n])}</td></tr>" for n in names)
    return (f'<div class="maps">{"".join(cells)}</div>'
            f"<details><summary>where-map details</summary><table>{details}</table></details>")
