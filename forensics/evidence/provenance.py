"""Content Credentials (C2PA manifests) of a file, read and validated offline with c2pa-python.

A C2PA manifest is a signed statement of where a file came from (the camera or app that made it, the edits, the
AI generation) bound to the file's bytes by a hash. What it can prove: a valid manifest ties the signer's claims to
these exact bytes; an invalid one means the file changed after signing (or the manifest was forged). What it cannot:
a missing manifest says nothing, since most cameras and apps write none and most platforms strip them.

Offline by construction: the Reader gets a Context with `verify.remote_manifest_fetch` and `verify.ocsp_fetch` off
and `core.allowed_network_hosts` empty, so a manifest stored at a URL is reported, never fetched, and no
certificate-status request is made. There is no trust list unless the caller passes trust anchors (PEM): without
one, every correctly signed manifest is "valid-untrusted", whoever signed it.

Section "c2pa", fields (stable keys; absent facts are null, lists empty):
    state              "none" | "valid-trusted" | "valid-untrusted" | "invalid" | "remote-not-fetched" |
                       "unsupported-format" | "error"
    note               "A missing manifest proves nothing: ..." (always present, for the report)
    trust              which trust list was used ("none configured: ..." or "caller's trust anchors")
    claim_generator    active manifest's generator ("name version", or the v1 claim_generator string)
    title, format      as the manifest states them
    signer             {"issuer", "common_name", "alg", "cert_serial_number"} of the active manifest's signature
    time               signing time from a timestamp (signature_info.time), or null when not timestamped
    actions            active manifest's c2pa.actions: [{"action", "when", "software_agent",
                       "digital_source_type"}], at most MAX_ACTIONS
    digital_source_types  every digitalSourceType in any manifest of the store (IPTC vocabulary, last path part)
    declares_ai_generation  true when one of those is generative (trainedAlgorithmicMedia,
                       compositeWithTrainedAlgorithmicMedia, algorithmicMedia, compositeSynthetic)
    ingredients        titles of the active manifest's ingredients, at most MAX_INGREDIENTS
    manifest_count     manifests in the store (the active one and its ingredients' history)
    validation_errors  [{"code", "explanation"}]: failures other than "signing certificate untrusted"
    remote_url         the manifest's URL when it is stored remotely (not fetched)
    reader             c2pa-python and c2pa-rs versions
    error              only for state "error" (or "unsupported-format"): "<path>: reason"

Signal: declares AI generation -> SUGGESTS_MANIPULATION; invalid -> SUGGESTS_MANIPULATION (the manifest does not
match the content: altered after signing); valid -> NO_SIGN naming the signer and whether it is trusted; none,
remote, unsupported or error -> NO_INFORMATION.
"""
from __future__ import annotations

import functools
import json
import os
import re
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import c2pa

from forensics.evidence.metadata import is_generative_source_type, source_type_name
from forensics.evidence.section import NO_INFORMATION, NO_SIGN, SUGGESTS_MANIPULATION, Section, Signal

MISSING_NOTE = ("A missing manifest proves nothing: most cameras and apps write no Content Credentials and most "
                "platforms strip them. A valid manifest proves only who signed these bytes and what they claimed.")
NO_TRUST_LIST = ("none configured: offline there is no C2PA trust list, so a correctly signed manifest is "
                 "'valid-untrusted' whoever signed it")
MAX_ACTIONS = 50
MAX_INGREDIENTS = 20
UNTRUSTED_CODE = "signingCredential.untrusted"
HASH_MISMATCH_CODES = ("assertion.dataHash.mismatch", "assertion.bmffHash.mismatch", "assertion.boxesHash.mismatch",
                       "assertion.collectionHash.mismatch")
# The manifest keys with their values when there is no manifest (every state has every key).
EMPTY_MANIFEST_FIELDS: dict[str, Any] = {
    "claim_generator": None, "title": None, "format": None, "signer": None, "time": None, "actions": [],
    "digital_source_types": [], "declares_ai_generation": False, "ingredients": [], "manifest_count": 0,
    "validation_errors": [], "remote_url": None}
# Never reach the network: no remote manifests, no OCSP, and no host allowed for anything else.
OFFLINE_SETTINGS: dict[str, Any] = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
                                    "core": {"allowed_network_hosts": []}}


@functools.lru_cache(maxsize=4)
def offline_context(trust_anchors_pem: str | None = None) -> c2pa.Context:
    """A reusable offline Context (built on first use, not at import), with the caller's trust anchors if any."""
    settings = json.loads(json.dumps(OFFLINE_SETTINGS))
    if trust_anchors_pem:
        settings["trust"] = {"user_anchors": trust_anchors_pem}
    return c2pa.Context.from_dict(settings)


def _reader_versions() -> str:
    try:
        python_version = importlib_metadata.version("c2pa-python")
    except importlib_metadata.PackageNotFoundError:
        python_version = "?"
    return f"c2pa-python {python_version} (c2pa-rs {c2pa.sdk_version()})"


def _agent(value: Any) -> str | None:
    if isinstance(value, dict):
        value = " ".join(str(value[k]) for k in ("name", "version") if value.get(k))
    return str(value)[:200] if value else None


def _actions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """c2pa.actions (v1 or v2) of one manifest, flattened to what an analyst reads."""
    out = []
    for assertion in manifest.get("assertions") or []:
        if not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in (assertion.get("data") or {}).get("actions") or []:
            params = action.get("parameters") or {}
            source = action.get("digitalSourceType") or params.get("digitalSourceType")
            out.append({"action": action.get("action"), "when": action.get("when"),
                        "software_agent": _agent(action.get("softwareAgent")),
                        "digital_source_type": source_type_name(source) if source else None})
    return out


def _claim_generator(manifest: dict[str, Any]) -> str | None:
    info = manifest.get("claim_generator_info") or []
    if info and isinstance(info[0], dict):
        return _agent(info[0])
    return manifest.get("claim_generator")


def _manifest_fields(reader: c2pa.Reader) -> dict[str, Any]:
    store = json.loads(reader.json())
    manifests: dict[str, Any] = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest") or "", {})
    sig = active.get("signature_info") or {}
    sources = sorted({a["digital_source_type"] for m in manifests.values() for a in _actions(m)
                      if a["digital_source_type"]})
    results = reader.get_validation_results() or {}
    failures = (results.get("activeManifest") or {}).get("failure") or []
    failures += [f for ing in results.get("ingredientDeltas") or []
                 for f in ((ing.get("validationDeltas") or {}).get("failure") or [])]
    return {
        "claim_generator": _claim_generator(active), "title": active.get("title"), "format": active.get("format"),
        "signer": {"issuer": sig.get("issuer"), "common_name": sig.get("common_name"), "alg": sig.get("alg"),
                   "cert_serial_number": sig.get("cert_serial_number")},
        "time": sig.get("time"),
        "actions": _actions(active)[:MAX_ACTIONS],
        "digital_source_types": sources,
        "declares_ai_generation": any(is_generative_source_type(s) for s in sources),
        "ingredients": [str(i.get("title")) for i in (active.get("ingredients") or [])][:MAX_INGREDIENTS],
        "manifest_count": len(manifests),
        "validation_errors": [{"code": f.get("code"), "explanation": f.get("explanation")}
                              for f in failures if f.get("code") != UNTRUSTED_CODE],
    }


def read_content_credentials(path: str | os.PathLike, trust_anchors_pem: str | None = None) -> dict[str, Any]:
    """Fields of the c2pa section (see the module docstring). Never raises for a bad file: state "error"."""
    path = Path(path)
    fields: dict[str, Any] = {"state": "none", "note": MISSING_NOTE,
                              "trust": "caller's trust anchors" if trust_anchors_pem else NO_TRUST_LIST,
                              "reader": _reader_versions(), **EMPTY_MANIFEST_FIELDS}
    try:
        if not path.is_file():
            raise FileNotFoundError("file does not exist or is not a regular file")
        with open(path, "rb") as stream:  # read-only; the Reader gets a stream, never the path to write
            reader = c2pa.Reader.try_create(_mime_type(path), stream, None, offline_context(trust_anchors_pem))
            if reader is None:
                return fields
            with reader:
                fields.update(_manifest_fields(reader))
                state = reader.get_validation_state()
                fields["remote_url"] = reader.get_remote_url()
    except c2pa.C2paError.NotSupported as exc:
        return {**fields, "state": "unsupported-format", "error": f"{path}: {exc}"}
    except c2pa.C2paError as exc:
        url = re.search(r"remote manifests? from url (\S+)", str(exc), re.IGNORECASE)
        if str(exc).startswith("Remote") or url:
            return {**fields, "state": "remote-not-fetched", "remote_url": url.group(1) if url else None}
        return {**fields, "state": "error", "error": f"{path}: {exc}"}
    except Exception as exc:  # noqa: BLE001 - a bad file becomes an error state, never a crash
        return {**fields, "state": "error", "error": f"{path}: {type(exc).__name__}: {exc}"}
    fields["state"] = {"Trusted": "valid-trusted", "Valid": "valid-untrusted"}.get(state or "", "invalid")
    return fields


def _mime_type(path: Path) -> str | None:
    """The MIME type c2pa expects from the extension; None lets c2pa detect it from the bytes."""
    ext = path.suffix.lower().lstrip(".")
    known = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp",
             "tif": "image/tiff", "tiff": "image/tiff", "heic": "image/heic", "avif": "image/avif",
             "mp4": "video/mp4", "m4v": "video/mp4", "mov": "video/quicktime", "avi": "video/x-msvideo",
             "gif": "image/gif"}
    return known.get(ext)


def content_credentials_signal(fields: dict[str, Any]) -> Signal:
    state = fields["state"]
    signer = fields.get("signer") or {}
    who = signer.get("common_name") or signer.get("issuer") or "an unnamed signer"
    if signer.get("issuer") and signer.get("issuer") != who:
        who = f"{who} ({signer['issuer']})"
    if fields.get("declares_ai_generation"):
        return Signal(SUGGESTS_MANIPULATION, f"the Content Credentials, signed by {who}, declare AI generation "
                      f"({', '.join(fields['digital_source_types'])}); manifest state: {state}")
    if state == "invalid":
        codes = sorted({e["code"] for e in fields["validation_errors"] if e.get("code")})
        altered = any(c in HASH_MISMATCH_CODES for c in codes)
        what = ("the manifest does not match the content: altered after signing" if altered
                else "the manifest does not validate")
        return Signal(SUGGESTS_MANIPULATION, f"{what} ({', '.join(codes) or 'no failure code'})")
    if state == "valid-trusted":
        return Signal(NO_SIGN, f"valid Content Credentials signed by {who}, a signer in the configured trust list")
    if state == "valid-untrusted":
        return Signal(NO_SIGN, f"valid Content Credentials signed by {who}; the signer is not in a trust list "
                      "(none is configured offline), so who signed is a claim, not a verified identity")
    if state == "remote-not-fetched":
        return Signal(NO_INFORMATION, f"the manifest is stored remotely ({fields.get('remote_url')}) and was not "
                      "fetched: the scan runs offline")
    if state == "none":
        return Signal(NO_INFORMATION, "no Content Credentials: a missing manifest proves nothing")
    return Signal(NO_INFORMATION, f"Content Credentials not read ({state})")


def content_credentials_section(path: str | os.PathLike, trust_anchors_pem: str | None = None) -> Section:
    """The "c2pa" section of a file (image or video). Never raises."""
    fields = read_content_credentials(path, trust_anchors_pem)
    return Section("c2pa", fields, {}, content_credentials_signal(fields))
