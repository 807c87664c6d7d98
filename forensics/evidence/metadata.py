"""EXIF/XMP/IPTC of an image, its dates, the software that touched it, and its EXIF thumbnail against its pixels.

Reader: Pillow, for everything. The scan already opens the file with Pillow, `Image.open` reads only the
header and the APPn segments (no pixels), `getexif()` walks IFD0 and its Exif/GPS/IFD1 sub-directories,
`getxmp()` parses XMP through defusedxml (safe against entity-expansion bombs in a hostile file) and
`IptcImagePlugin.getiptcinfo` reads IPTC-IIM, so one maintained library covers the three families with no second
parse of the file. exifread was not used: it would re-read the file for the same tags, and
Pillow's IFD1 gives the thumbnail's offset and length directly.

Section "metadata", fields (stable keys; absent facts are null, lists empty):
    format            Pillow's format name ("JPEG", "PNG", ...)
    present           {"exif", "xmp", "iptc", "icc", "png_text"}: which blocks the file carries (bool each)
    tag_count         number of EXIF tags (IFD0 + Exif + GPS + IFD1) + XMP leaf properties + IPTC datasets
    tags              sorted EXIF tag names, at most MAX_TAG_NAMES
    camera            {"make", "model", "lens", "serial"}
    software          EXIF Software (0x0131), else XMP CreatorTool, else IPTC OriginatingProgram
    software_all      every software string found (EXIF Software/ProcessingSoftware, XMP CreatorTool and
                      History softwareAgent, IPTC program, JPEG comment, PNG text Software), deduplicated
    editors           editor names matched in software_all / descriptions (e.g. "Adobe Photoshop")
    generators        generator names matched (e.g. "Stable Diffusion"), or PNG text keys a generator writes
    digital_source_type  XMP Iptc4xmpExt:DigitalSourceType (the IPTC vocabulary's last path part), or null
    dates             {"original": EXIF DateTimeOriginal (capture), "digitized": DateTimeDigitized,
                       "modified": EXIF DateTime (last write by software), "xmp_create", "xmp_modify",
                       "file_mtime_utc": the file system's mtime (weak: copying resets it, touch forges it),
                       "checks": [sentences], "consistent": bool | null (null: fewer than two dates)}
                      EXIF dates are local time without a zone unless an OffsetTime tag says it.
    gps               {"present", "latitude", "longitude", "altitude_m"} (coordinates here, never in the signal)
    orientation       EXIF Orientation (1..8) or null
    exif_size         [w, h] from PixelXDimension/PixelYDimension, or null; `exif_size_matches` bool | null
    thumbnail         null, or {"size": [w, h], "asset": "exif-thumbnail.png" | null, "compared": bool,
                       "aspect_main", "aspect_thumb", "aspect_mismatch", "mean_abs_diff" (0..255 gray),
                       "max_block_abs_diff" (worst cell of a 4x4 grid), "correlation" (Pearson, gray),
                       "match": bool | null, "why": sentence}
    error             only when the file could not be read: "<path>: reason"

Signal: a generator tag or a generative DigitalSourceType, or a thumbnail that does not match the image ->
SUGGESTS_MANIPULATION. An editor tag -> SUGGESTS_MANIPULATION worded "edited with X": it is direct evidence that
the file was re-saved by editing software after capture, which the agreement table should show, but editing is
not necessarily a face manipulation and the reason says so. Camera tags (or a matching thumbnail) with none of
those -> NO_SIGN (metadata can be forged). No metadata -> NO_INFORMATION: stripped metadata proves nothing
(every social network strips it).
"""
from __future__ import annotations

import io
import math
import os
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import ExifTags, Image, IptcImagePlugin

from forensics.data.media import encode_png
from forensics.evidence.section import NO_INFORMATION, NO_SIGN, SUGGESTS_MANIPULATION, Section, Signal

MAX_TAG_NAMES = 64
MAX_THUMBNAIL_BYTES = 256 * 1024  # an APP1 segment holds at most 64 KiB; anything bigger is not a real thumbnail
MAX_THUMBNAIL_SIDE = 1024
THUMBNAIL_ASSET = "exif-thumbnail.png"
# Thumbnail comparison thresholds (gray, 0..255). A camera's own thumbnail of the same pixels differs from our
# area-downscale by resampling and JPEG noise only (mean ~1-5, worst 4x4 cell ~<15 on the test images); a
# thumbnail left over from another picture or from before a crop/retouch differs far more.
THUMB_MIN_CORRELATION = 0.9
THUMB_MAX_BLOCK_DIFF = 30.0
THUMB_ASPECT_TOLERANCE = 0.05  # relative
THUMB_GRID = 4
# EXIF local times carry no zone: allow a full day of zone/clock slack before calling two clocks inconsistent.
CLOCK_SLACK = timedelta(hours=26)
SAME_MOMENT = timedelta(seconds=2)

# Names matched case-insensitively on word boundaries in software/description strings. Editors: software that
# re-saves an image or video after capture. Generators: software that makes one (or swaps faces in one).
EDITOR_PATTERNS: dict[str, str] = {
    "Adobe Photoshop": r"photoshop",
    "Adobe Lightroom": r"lightroom",
    "Adobe Camera Raw": r"camera raw",
    "Adobe Premiere": r"premiere",
    "Adobe After Effects": r"after effects",
    "GIMP": r"gimp",
    "Snapseed": r"snapseed",
    "Affinity Photo": r"affinity photo",
    "Pixelmator": r"pixelmator",
    "Paint.NET": r"paint\.net",
    "Capture One": r"capture one",
    "darktable": r"darktable",
    "RawTherapee": r"rawtherapee",
    "Luminar": r"luminar",
    "Picsart": r"picsart",
    "Facetune": r"facetune",
    "FaceApp": r"faceapp",
    "Meitu": r"meitu",
    "PhotoScape": r"photoscape",
    "Canva": r"canva",
    "Fotor": r"fotor",
    "VSCO": r"vsco",
    "Photopea": r"photopea",
    "DaVinci Resolve": r"davinci resolve|resolve \d",
    "Final Cut Pro": r"final cut",
    "iMovie": r"imovie",
    "CapCut": r"capcut",
    "Shotcut": r"shotcut",
    "Kdenlive": r"kdenlive",
    "OpenShot": r"openshot",
}
GENERATOR_PATTERNS: dict[str, str] = {
    "Stable Diffusion": r"stable[ _-]?diffusion|sdxl",
    "Midjourney": r"midjourney",
    "DALL-E": r"dall[-·\u00b7 ]?e",
    "Adobe Firefly": r"firefly",
    "Google Imagen": r"imagen",
    "OpenAI": r"openai|chatgpt|gpt-4o",
    "Flux": r"flux(?:\.1)?[ -](?:dev|schnell|pro)|black forest labs",
    "ComfyUI": r"comfyui",
    "AUTOMATIC1111": r"automatic1111|stable-diffusion-webui",
    "InvokeAI": r"invokeai",
    "NovelAI": r"novelai",
    "Leonardo.Ai": r"leonardo\.?ai",
    "Runway": r"runwayml|runway gen",
    "Sora": r"openai sora|\bsora\b",
    "Pika": r"pika labs|pika\.art",
    "Kling": r"kling ai|klingai",
    "DeepFaceLab": r"deepfacelab",
    "faceswap": r"faceswap|face swap|roop|facefusion",
    "Reface": r"reface",
    "Synthesia": r"synthesia",
    "HeyGen": r"heygen",
    "D-ID": r"\bd-id\b",
    "AI generated (declared)": r"ai[- ]generated|generated (?:by|with) ai|made with ai",
}
# PNG text keys that image generators write (AUTOMATIC1111 "parameters", ComfyUI "prompt"/"workflow", ...).
GENERATOR_PNG_KEYS = frozenset({"parameters", "prompt", "workflow", "sd-metadata", "dream", "invokeai_metadata",
                                "generation_data", "negative_prompt"})
# IPTC Digital Source Type vocabulary (https://cv.iptc.org/newscodes/digitalsourcetype/) values meaning the
# content was made by an algorithm rather than captured; C2PA actions use the same vocabulary.
GENERATIVE_SOURCE_TYPES = frozenset({"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia",
                                     "algorithmicMedia", "compositeSynthetic"})

_EDITOR_RE = {name: re.compile(rf"\b(?:{pat})\b", re.IGNORECASE) for name, pat in EDITOR_PATTERNS.items()}
_GENERATOR_RE = {name: re.compile(rf"\b(?:{pat})\b", re.IGNORECASE) for name, pat in GENERATOR_PATTERNS.items()}

# EXIF tag ids used below (names from Pillow's ExifTags.Base).
_T = ExifTags.Base
_GPS = ExifTags.GPS


def round6(x: float) -> float:
    """A float to 6 significant digits (the evidence contract's rounding)."""
    return float(f"{float(x):.6g}")


def editor_names(texts: list[str]) -> list[str]:
    """Editor names (EDITOR_PATTERNS keys) found in any of the strings, in table order."""
    return [name for name, rx in _EDITOR_RE.items() if any(rx.search(t) for t in texts)]


def generator_names(texts: list[str]) -> list[str]:
    """Generator names (GENERATOR_PATTERNS keys) found in any of the strings, in table order."""
    return [name for name, rx in _GENERATOR_RE.items() if any(rx.search(t) for t in texts)]


def source_type_name(value: str) -> str:
    """The IPTC digital source type's last path part: 'http://cv.iptc.org/.../trainedAlgorithmicMedia' -> name."""
    return value.strip().rstrip("/").rsplit("/", 1)[-1]


def is_generative_source_type(value: str | None) -> bool:
    return bool(value) and source_type_name(value) in GENERATIVE_SOURCE_TYPES


def _text(value: Any) -> str | None:
    """EXIF/IPTC value -> clean str (bytes decoded, NULs and padding stripped), None when empty."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, (list, tuple)):
        value = " ".join(str(_text(v) or "") for v in value)
    text = str(value).replace("\x00", "").strip()
    return text[:300] or None


def _flatten_xmp(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """(local name, value) for every leaf of Pillow's nested XMP dict; list items keep their parent's name."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _flatten_xmp(v, k)
    elif isinstance(node, (list, tuple)):
        for v in node:
            yield from _flatten_xmp(v, key)
    elif node is not None:
        yield key, str(node)


def _parse_exif_time(value: Any, offset: Any = None) -> datetime | None:
    """'YYYY:MM:DD HH:MM:SS' (+ optional '+HH:MM' OffsetTime tag) -> datetime (aware when an offset is given)."""
    text = _text(value)
    if not text:
        return None
    try:
        dt = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    off = _text(offset)
    if off and re.fullmatch(r"[+-]\d\d:\d\d", off):
        sign = 1 if off[0] == "+" else -1
        dt = dt.replace(tzinfo=timezone(sign * timedelta(hours=int(off[1:3]), minutes=int(off[4:6]))))
    return dt


def _parse_iso_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None


def _gap(a: datetime, b: datetime) -> tuple[timedelta, bool]:
    """a - b, and whether both were zoned (else compared as wall clocks, so only CLOCK_SLACK-coarse)."""
    if (a.tzinfo is None) != (b.tzinfo is None):
        a, b = a.replace(tzinfo=None), b.replace(tzinfo=None)
        return a - b, False
    return a - b, a.tzinfo is not None


def _date_checks(original: datetime | None, digitized: datetime | None, modified: datetime | None,
                 mtime_utc: datetime) -> tuple[list[str], bool | None]:
    """Sentences on how the EXIF dates agree with each other and with the file's mtime; overall consistency."""
    checks: list[str] = []
    consistent: bool | None = None
    capture = original or digitized
    if original and digitized:
        gap, _ = _gap(digitized, original)
        consistent = abs(gap) <= SAME_MOMENT
        checks.append("DateTimeOriginal equals DateTimeDigitized" if consistent else
                      f"DateTimeDigitized differs from DateTimeOriginal by {gap} (a scan, or edited dates)")
    if capture and modified:
        gap, _ = _gap(modified, capture)
        if gap < -SAME_MOMENT:
            checks.append(f"DateTime (modified) is {-gap} before the capture time: impossible order")
            consistent = False
        elif gap > SAME_MOMENT:
            checks.append(f"DateTime (modified) is {gap} after the capture time: re-saved by software after capture")
            consistent = True if consistent is None else consistent
        else:
            checks.append("DateTime (modified) equals the capture time: not re-saved with a new date")
            consistent = True if consistent is None else consistent
    latest = max((d for d in (capture, modified) if d), key=lambda d: d.replace(tzinfo=None), default=None)
    if latest is not None:
        ref = latest if latest.tzinfo else latest.replace(tzinfo=timezone.utc)
        gap = ref - mtime_utc
        slack = SAME_MOMENT if latest.tzinfo else CLOCK_SLACK
        if gap > slack:
            checks.append(f"the EXIF date is {gap} after the file's mtime (weak evidence: mtime can be set freely)")
            consistent = False
        else:
            checks.append("the file's mtime is not before the EXIF dates (mtime is weak evidence: copies reset it)")
            consistent = True if consistent is None else consistent
    return checks, consistent


def _gps(gps_ifd: dict[int, Any]) -> dict[str, Any]:
    def degrees(dms: Any, ref: Any) -> float | None:
        try:
            d, m, s = (float(v) for v in dms)
        except (TypeError, ValueError, ZeroDivisionError):
            return None
        value = d + m / 60 + s / 3600
        if not math.isfinite(value):  # a 0/0 rational in a hostile or broken GPS block
            return None
        return round6(-value if _text(ref) in ("S", "W") else value)

    alt = gps_ifd.get(_GPS.GPSAltitude)
    try:
        altitude = round6(float(alt)) if alt is not None and math.isfinite(float(alt)) else None
    except (TypeError, ValueError, ZeroDivisionError):
        altitude = None
    return {"present": bool(gps_ifd),
            "latitude": degrees(gps_ifd.get(_GPS.GPSLatitude), gps_ifd.get(_GPS.GPSLatitudeRef)),
            "longitude": degrees(gps_ifd.get(_GPS.GPSLongitude), gps_ifd.get(_GPS.GPSLongitudeRef)),
            "altitude_m": altitude}


def _thumbnail_bytes(raw_exif: bytes | None, ifd1: dict[int, Any]) -> bytes | None:
    """The IFD1 JPEG thumbnail's bytes, sliced from the raw EXIF block (offsets count from the TIFF header)."""
    if not raw_exif or not ifd1:
        return None
    offset, length = ifd1.get(_T.JpegIFOffset), ifd1.get(_T.JpegIFByteCount)
    if not isinstance(offset, int) or not isinstance(length, int) or length <= 0 or length > MAX_THUMBNAIL_BYTES:
        return None
    tiff = raw_exif[6:] if raw_exif.startswith(b"Exif\x00\x00") else raw_exif
    data = tiff[offset:offset + length]
    return data if len(data) == length and data.startswith(b"\xff\xd8") else None


def _trim_black_bars(gray: np.ndarray) -> np.ndarray:
    """Drop the black letterbox rows/columns cameras pad a thumbnail with to fill 160x120."""
    dark_rows = np.nonzero(gray.mean(axis=1) > 8)[0]
    dark_cols = np.nonzero(gray.mean(axis=0) > 8)[0]
    if len(dark_rows) < gray.shape[0] // 2 or len(dark_cols) < gray.shape[1] // 2:
        return gray
    return gray[dark_rows[0]:dark_rows[-1] + 1, dark_cols[0]:dark_cols[-1] + 1]


def compare_thumbnail(thumb_rgb: np.ndarray, rgb: np.ndarray) -> dict[str, Any]:
    """Compare a decoded thumbnail `[h,w,3]` with the main image `[H,W,3]` (scaled down to it), on gray.

    Aspect ratio first (a crop changes it); then mean/worst-cell absolute difference and Pearson correlation.
    """
    thumb = _trim_black_bars(cv2.cvtColor(thumb_rgb, cv2.COLOR_RGB2GRAY).astype(np.float32))  # [h,w]
    th, tw = thumb.shape
    h, w = rgb.shape[:2]
    aspect_main, aspect_thumb = w / h, tw / th
    aspect_mismatch = abs(aspect_main / aspect_thumb - 1) > THUMB_ASPECT_TOLERANCE
    out: dict[str, Any] = {"aspect_main": round6(aspect_main), "aspect_thumb": round6(aspect_thumb),
                           "aspect_mismatch": bool(aspect_mismatch)}
    small = cv2.resize(rgb, (tw, th), interpolation=cv2.INTER_AREA)  # [h,w,3]
    main = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)  # [h,w]
    diff = np.abs(main - thumb)
    cells = [c for band in np.array_split(diff, THUMB_GRID, axis=0) for c in np.array_split(band, THUMB_GRID, axis=1)]
    worst = max(float(c.mean()) for c in cells if c.size)
    a, b = main - main.mean(), thumb - thumb.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    corr = float((a * b).sum() / denom) if denom > 0 else 0.0
    match = not aspect_mismatch and corr >= THUMB_MIN_CORRELATION and worst <= THUMB_MAX_BLOCK_DIFF
    if aspect_mismatch:
        why = (f"aspect ratio {aspect_thumb:.3f} vs image {aspect_main:.3f}: the image was cropped or replaced after "
               "the thumbnail")
    elif not match:
        why = (f"content differs (correlation {corr:.2f}, worst cell {worst:.0f}/255): the image was changed after "
               "the thumbnail was written, or the thumbnail belongs to another picture")
    else:
        why = f"the thumbnail shows the same picture (correlation {corr:.2f}, worst cell {worst:.0f}/255)"
    out.update({"mean_abs_diff": round6(diff.mean()), "max_block_abs_diff": round6(worst),
                "correlation": round6(corr), "match": bool(match), "why": why})
    return out


def _thumbnail_section(data: bytes | None, rgb: np.ndarray | None) -> tuple[dict[str, Any] | None, dict[str, bytes]]:
    if data is None:
        return None, {}
    try:
        with Image.open(io.BytesIO(data), formats=("JPEG",)) as im:
            if max(im.size) > MAX_THUMBNAIL_SIDE:
                return {"size": list(im.size), "asset": None, "compared": False, "match": None,
                        "why": "thumbnail larger than a thumbnail should be; not decoded"}, {}
            thumb = np.asarray(im.convert("RGB"))  # [h,w,3]
    except (OSError, SyntaxError, ValueError) as exc:
        return {"size": None, "asset": None, "compared": False, "match": None,
                "why": f"thumbnail present but undecodable ({exc})"}, {}
    fields: dict[str, Any] = {"size": [int(thumb.shape[1]), int(thumb.shape[0])], "asset": THUMBNAIL_ASSET}
    assets = {THUMBNAIL_ASSET: encode_png(np.ascontiguousarray(thumb))}
    if rgb is None or rgb.ndim != 3 or rgb.shape[2] != 3 or min(thumb.shape[:2]) < 8:
        fields.update({"compared": False, "match": None, "why": "no image pixels to compare with"})
    else:
        fields.update({"compared": True, **compare_thumbnail(thumb, rgb)})
    return fields, assets


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def read_image_metadata(path: str | os.PathLike, rgb: np.ndarray | None) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Fields and assets of the metadata section (see the module docstring); raises on an unreadable file."""
    path = Path(path)
    stat = path.stat()
    mtime_utc = datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc)
    with Image.open(path) as im:  # header and APPn segments only: the pixels are not decoded here
        fmt = im.format
        exif = im.getexif()
        raw_exif = im.info.get("exif")
        ifd_exif = dict(exif.get_ifd(ExifTags.IFD.Exif))
        ifd_gps = dict(exif.get_ifd(ExifTags.IFD.GPSInfo))
        ifd1 = dict(exif.get_ifd(ExifTags.IFD.IFD1))
        xmp = list(_flatten_xmp(im.getxmp())) if hasattr(im, "getxmp") else []
        iptc = (IptcImagePlugin.getiptcinfo(im) or {}) if fmt in ("JPEG", "TIFF") else {}
        comment = im.info.get("comment")
        icc = bool(im.info.get("icc_profile"))
        # PNG text chunks before the pixel data are in `info` (`im.text` would decode the pixels to find later ones)
        png_text = {str(k): v[:300] for k, v in im.info.items() if isinstance(v, str)} if fmt == "PNG" else {}
    ifd0 = {k: v for k, v in exif.items() if k not in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo)}
    tag_ids = list(ifd0) + list(ifd_exif) + list(ifd_gps) + list(ifd1)
    tag_names = sorted({ExifTags.TAGS.get(t, f"0x{t:04x}") for t in tag_ids})

    xmp_by_name: dict[str, list[str]] = {}
    for name, value in xmp:
        xmp_by_name.setdefault(name, []).append(value)

    def xmp_first(name: str) -> str | None:
        return (xmp_by_name.get(name) or [None])[0]

    iptc_program = _text(iptc.get((2, 65)))
    software_all: list[str] = []
    for value in (ifd0.get(_T.Software), ifd0.get(_T.ProcessingSoftware), xmp_first("CreatorTool"),
                  *xmp_by_name.get("softwareAgent", []), iptc_program, comment, png_text.get("Software")):
        text = _text(value)
        if text and text not in software_all:
            software_all.append(text)
    descriptions = [t for t in (_text(ifd0.get(_T.ImageDescription)), _text(ifd_exif.get(_T.UserComment)),
                                _text(ifd0.get(_T.Artist)), *xmp_by_name.get("description", []),
                                *xmp_by_name.get("Credit", []), *png_text.values()) if t]
    source_type = xmp_first("DigitalSourceType")
    generators = generator_names(software_all + descriptions)
    generators += [f"PNG text '{k}'" for k in sorted(png_text) if k.lower() in GENERATOR_PNG_KEYS]
    editors = editor_names(software_all)

    original = _parse_exif_time(ifd_exif.get(_T.DateTimeOriginal), ifd_exif.get(_T.OffsetTimeOriginal))
    digitized = _parse_exif_time(ifd_exif.get(_T.DateTimeDigitized), ifd_exif.get(_T.OffsetTimeDigitized))
    modified = _parse_exif_time(ifd0.get(_T.DateTime), ifd_exif.get(_T.OffsetTime))
    checks, consistent = _date_checks(original, digitized, modified, mtime_utc)

    exif_w, exif_h = ifd_exif.get(_T.ExifImageWidth), ifd_exif.get(_T.ExifImageHeight)
    exif_size = [int(exif_w), int(exif_h)] if isinstance(exif_w, int) and isinstance(exif_h, int) else None
    size_matches = None if exif_size is None or rgb is None else exif_size == [int(rgb.shape[1]), int(rgb.shape[0])]

    thumb_fields, assets = _thumbnail_section(_thumbnail_bytes(raw_exif, ifd1), rgb)
    fields: dict[str, Any] = {
        "format": fmt,
        "present": {"exif": bool(tag_ids), "xmp": bool(xmp), "iptc": bool(iptc), "icc": icc,
                    "png_text": bool(png_text)},
        "tag_count": len(tag_ids) + len(xmp) + len(iptc),
        "tags": tag_names[:MAX_TAG_NAMES],
        "camera": {"make": _text(ifd0.get(_T.Make)), "model": _text(ifd0.get(_T.Model)),
                   "lens": _text(ifd_exif.get(_T.LensModel)),
                   "serial": _text(ifd_exif.get(_T.BodySerialNumber))},
        "software": _text(ifd0.get(_T.Software)) or _text(xmp_first("CreatorTool")) or iptc_program,
        "software_all": software_all,
        "editors": editors,
        "generators": generators,
        "digital_source_type": source_type_name(source_type) if source_type else None,
        "dates": {"original": _iso(original), "digitized": _iso(digitized), "modified": _iso(modified),
                  "xmp_create": _iso(_parse_iso_time(xmp_first("CreateDate"))),
                  "xmp_modify": _iso(_parse_iso_time(xmp_first("ModifyDate"))),
                  "file_mtime_utc": mtime_utc.isoformat(timespec="seconds"),
                  "checks": checks, "consistent": consistent},
        "gps": _gps(ifd_gps),
        "orientation": ifd0.get(_T.Orientation) if isinstance(ifd0.get(_T.Orientation), int) else None,
        "exif_size": exif_size,
        "exif_size_matches": size_matches,
        "thumbnail": thumb_fields,
    }
    return fields, assets


def metadata_signal(fields: dict[str, Any]) -> Signal:
    """What the metadata alone says (see the module docstring for the policy)."""
    reasons: list[str] = []
    if fields["generators"]:
        reasons.append(f"metadata names a generator: {', '.join(fields['generators'])}")
    if is_generative_source_type(fields["digital_source_type"]):
        reasons.append(f"XMP DigitalSourceType is {fields['digital_source_type']} (declared algorithmic media)")
    thumb = fields["thumbnail"]
    if thumb and thumb.get("match") is False:
        reasons.append(f"the EXIF thumbnail does not match the image: {thumb['why']}")
    if fields["editors"]:
        reasons.append(f"edited with {', '.join(fields['editors'])} (editing software: the file was re-saved "
                       "after capture, not necessarily a face manipulation)")
    if reasons:
        return Signal(SUGGESTS_MANIPULATION, "; ".join(reasons))
    camera = " ".join(t for t in (fields["camera"]["make"], fields["camera"]["model"]) if t)
    if camera or (thumb and thumb.get("match")):
        what = f"camera metadata ({camera})" if camera else "a matching EXIF thumbnail"
        return Signal(NO_SIGN, f"{what} and no editor or generator tag; metadata can be forged, so this is no proof")
    if fields["tag_count"] == 0:
        return Signal(NO_INFORMATION, "no metadata: stripped metadata proves nothing (most platforms strip it)")
    return Signal(NO_INFORMATION, "metadata without camera, editor or generator tags")


def image_metadata_section(path: str | os.PathLike, rgb: np.ndarray | None) -> Section:
    """The "metadata" section of an image: EXIF/XMP/IPTC facts, dates, software, thumbnail check. Never raises."""
    try:
        fields, assets = read_image_metadata(path, rgb)
    except Exception as exc:  # noqa: BLE001 - any unreadable file becomes an error field, never a crash
        return Section("metadata", {"error": f"{path}: {type(exc).__name__}: {exc}"}, {},
                       Signal(NO_INFORMATION, "metadata could not be read"))
    return Section("metadata", fields, assets, metadata_signal(fields))
