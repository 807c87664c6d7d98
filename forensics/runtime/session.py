"""Opening a bundle's exported ONNX files, each checked before onnxruntime sees it.

A bundle may come from anyone, so an ONNX file is refused (BundleError naming it) unless: its record
(`onnx/export.json`) is a JSON object of this format; its name is a plain `<name>.onnx` inside `onnx/` (no path,
no symlink leading out: `check_bundle_tree` has run); it is at most `MAX_ONNX_BYTES` and has exactly the size and
sha256 the record gives; it parses as an ONNX model whose tensors are all stored inside it (no external data: a
path in a model could make the runtime read any file on the disk) and whose operators are all standard ONNX ones;
and its input is the uint8 crop tensor the record describes. Sessions are made from the checked bytes, never
from a path, so the runtime itself never opens anything else. An export whose source (a detector's or the mask
head's folder) has changed since is `StaleExport`.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forensics.bundle.model import BundleError

MAX_ONNX_BYTES = 256 * 1024 * 1024  # the shipped CNN is ~14 MB
_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}\.onnx$")
_STANDARD_DOMAINS = {"", "ai.onnx"}


class StaleExport(BundleError):
    """The ONNX files were made from other weights than the bundle now holds: re-run the export."""


@dataclass
class ExportedModel:
    name: str
    data: bytes  # the checked ONNX bytes
    record: dict[str, Any]


def make_session(data: bytes, threads: int | None = None):
    """An onnxruntime CPU session from checked bytes. `threads` defaults to torch's thread count, so that both
    runtimes use the same cores (`OMP_NUM_THREADS=1` means one thread for both); worker threads do not spin while
    idle (on a small machine the decode and evidence threads need that core)."""
    import onnxruntime as ort

    if threads is None:
        import torch

        threads = torch.get_num_threads()
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _external_or_custom(model: Any) -> str | None:
    """Why the model must be refused (external data, a non-standard operator domain), or None."""
    from onnx import TensorProto

    for opset in model.opset_import:
        if opset.domain not in _STANDARD_DOMAINS:
            return f"uses operator domain {opset.domain!r} (only standard ONNX operators are accepted)"
    if len(model.functions):
        return "defines local functions (not accepted)"
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        tensors = list(graph.initializer) + [s.values for s in graph.sparse_initializer]
        for node in graph.node:
            if node.domain not in _STANDARD_DOMAINS:
                return f"node {node.name or node.op_type!r} is in domain {node.domain!r}"
            for attr in node.attribute:
                if attr.HasField("t"):
                    tensors.append(attr.t)
                tensors.extend(attr.tensors)
                if attr.HasField("g"):
                    graphs.append(attr.g)
                graphs.extend(attr.graphs)
        for t in tensors:
            if t.data_location == TensorProto.EXTERNAL or len(t.external_data):
                return f"tensor {t.name!r} keeps its data in an external file (not accepted)"
    return None


def read_record(root: Path) -> dict[str, Any] | None:
    """`root/onnx/export.json` checked as a record of this format; None when the bundle has no export."""
    from forensics.modelfiles import CheckpointError, read_json_object
    from forensics.runtime.export import FOLDER, FORMAT, RECORD

    path = root / FOLDER / RECORD
    if not path.is_file():
        return None
    try:
        doc = read_json_object(path, required=("format", "models"), what="ONNX export record")
    except CheckpointError as exc:
        raise BundleError(str(exc)) from None
    if doc["format"] != FORMAT:
        raise BundleError(f"{path}: format {doc['format']!r}, expected {FORMAT!r}")
    if not isinstance(doc["models"], dict):
        raise BundleError(f"{path}: 'models' must be a JSON object")
    return doc


def load_exported(root: str | Path) -> dict[str, ExportedModel]:
    """Every model of the bundle's export, checked (module docstring). {} when there is no export."""
    import onnx

    from forensics.bundle.verify import check_bundle_tree, is_inside
    from forensics.runtime.export import FOLDER, RECORD, source_sha256

    root = Path(root)
    real_root = check_bundle_tree(root)
    doc = read_record(root)
    if doc is None:
        return {}
    where = root / FOLDER / RECORD
    out = {}
    for name, rec in sorted(doc["models"].items()):
        if not isinstance(rec, dict) or not isinstance(rec.get("file"), str) or not _NAME.match(rec["file"]):
            raise BundleError(f"{where}: model {name!r} needs a plain '<name>.onnx' file name, got {rec!r:.200}")
        path = root / FOLDER / rec["file"]
        if path.is_symlink() or not path.is_file() or not is_inside(real_root, path):
            raise BundleError(f"{path}: missing, or not a regular file inside the bundle")
        size = path.stat().st_size
        if size > MAX_ONNX_BYTES or size != rec.get("bytes"):
            raise BundleError(f"{path}: {size} bytes; the record says {rec.get('bytes')!r} (limit {MAX_ONNX_BYTES})")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != rec.get("sha256"):
            raise BundleError(f"{path}: sha256 differs from {where}: the file was changed after the export")
        try:
            model = onnx.load_model_from_string(data)
        except Exception as exc:  # noqa: BLE001 - protobuf raises several kinds on garbage
            raise BundleError(f"{path}: not an ONNX model ({type(exc).__name__})") from None
        why = _external_or_custom(model)
        if why:
            raise BundleError(f"{path}: {why}")
        inputs = [(i.name, [d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim])
                  for i in model.graph.input]
        expected = rec.get("input") or {}
        if len(inputs) != 1 or inputs[0][0] != "crops" or inputs[0][1] != expected.get("shape"):
            raise BundleError(f"{path}: input {inputs} does not match its record {expected}")
        source = rec.get("source")
        if not isinstance(source, str) or not is_inside(real_root, root / source):
            raise BundleError(f"{where}: model {name!r} names a source outside the bundle: {source!r}")
        if source_sha256(root / source) != rec.get("source_sha256"):
            raise StaleExport(f"{path}: made from another {source} than the bundle holds now; re-run "
                              f"`forensics detect export {root} --onnx`")
        out[name] = ExportedModel(name, data, rec)
    return out


def describe(root: str | Path) -> str:
    """One line per exported model (for the command's output)."""
    doc = read_record(Path(root)) or {"models": {}, "not_exported": {}}
    lines = [f"{n}: {r['file']} ({r['bytes'] / 1e6:.1f} MB; largest difference from its own runtime on probe crops: "
             + ", ".join(f"{k} {v:.2g}" for k, v in sorted(r["max_abs_diff"].items())) + ")"
             for n, r in sorted(doc["models"].items())]
    lines += [f"{n}: not exported ({why})" for n, why in sorted(doc.get("not_exported", {}).items())]
    return "\n".join(lines) if lines else json.dumps(doc)
