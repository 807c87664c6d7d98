"""ONNX graphs of the frequency detectors (DCT, spectral): feature map + standardiser + linear head + Platt, as
plain matrix products, built with `onnx.helper` from a fitted detector's arrays (no tracing).

The numpy detectors compute their transforms in float64 with scipy's FFTs; the graphs compute the same transforms
as explicit float64 matrix products (the DCT-II matrix of `forensics.detectors.dct.dct_matrix`; the real DFT as
cosine and sine matrices on the rfft2 half-plane), and keep the numpy code's float32 steps (luma, the features
handed to the head) so both round alike. Input: uint8 crops at the detector's fitted size [N,H,W,3] (the caller
resizes as `Detector._prepare` does); output "probability" [N] float64, P(fake) before calibration.
"""
from __future__ import annotations

from typing import Any

import numpy as np

OPSET = 17
INPUT = "crops"
OUTPUT = "probability"
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # forensics.detectors.base.grayscale


class _Graph:
    """A tiny builder: constants become initializers, every node gets a fresh output name."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._n = 0

    def const(self, value: np.ndarray, name: str | None = None) -> str:
        from onnx import numpy_helper

        self._n += 1
        name = name or f"c{self._n}"
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, kind: str, *inputs: str, **attrs: Any) -> str:
        from onnx import helper

        self._n += 1
        out = f"t{self._n}_{kind.lower()}"
        self.nodes.append(helper.make_node(kind, list(inputs), [out], **attrs))
        return out

    def model(self, out: str, height: int, width: int, doc: str) -> Any:
        from onnx import TensorProto, helper

        self.nodes.append(helper.make_node("Identity", [out], [OUTPUT]))
        x = helper.make_tensor_value_info(INPUT, TensorProto.UINT8, ["n", height, width, 3])
        y = helper.make_tensor_value_info(OUTPUT, TensorProto.DOUBLE, ["n"])
        graph = helper.make_graph(self.nodes, "forensics_linear_detector", [x], [y], initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="deepfake-forensics", doc_string=doc)
        model.ir_version = 8  # opset 17's IR: onnxruntime of any recent release reads it
        return model


def _luma(g: _Graph) -> str:
    """uint8 [N,H,W,3] -> luma [N,H,W] float64, rounded through float32 as `grayscale` is."""
    from onnx import TensorProto

    x = g.op("Cast", INPUT, to=TensorProto.FLOAT)
    y = g.op("MatMul", x, g.const(_LUMA.reshape(3, 1)))  # [N,H,W,1] float32
    y = g.op("Squeeze", y, g.const(np.array([-1], np.int64)))
    return g.op("Cast", y, to=TensorProto.DOUBLE)


def _head(g: _Graph, features: str, det: Any) -> str:
    """float64 features [N,F] (rounded through float32, as the numpy features are) -> P(fake) [N] float64."""
    from onnx import TensorProto

    x = g.op("Cast", g.op("Cast", features, to=TensorProto.FLOAT), to=TensorProto.DOUBLE)
    z = g.op("Div", g.op("Sub", x, g.const(np.asarray(det.scaler_mean_, np.float64))),
             g.const(np.asarray(det.scaler_scale_, np.float64)))
    margin = g.op("Add", g.op("MatMul", z, g.const(np.asarray(det.coef_, np.float64).reshape(-1, 1))),
                  g.const(np.asarray(det.intercept_, np.float64).reshape(1)))  # [N,1]
    a, b = (float(v) for v in det.platt_)
    logit = g.op("Add", g.op("Mul", margin, g.const(np.array([a]))), g.const(np.array([b])))
    p = g.op("Sigmoid", logit)
    return g.op("Squeeze", p, g.const(np.array([1], np.int64)))


def dct_graph(det: Any) -> Any:
    """`forensics.detectors.dct.DCTDetector` as an ONNX model: log(|C_H X C_W^T| + eps) -> head."""
    from onnx import TensorProto

    from forensics.detectors.dct import dct_matrix

    h, w = (int(v) for v in det.image_size_)
    g = _Graph()
    if det.channels == "gray":
        planes = _luma(g)  # [N,H,W]
    elif det.channels == "rgb":
        planes = g.op("Cast", g.op("Transpose", g.op("Cast", INPUT, to=TensorProto.FLOAT), perm=[0, 3, 1, 2]),
                      to=TensorProto.DOUBLE)  # [N,3,H,W]
    else:
        raise ValueError(f"DCT channels {det.channels!r} has no ONNX graph")
    coeffs = g.op("MatMul", g.op("MatMul", g.const(dct_matrix(h)), planes), g.const(dct_matrix(w).T.copy()))
    logs = g.op("Log", g.op("Add", g.op("Abs", coeffs), g.const(np.array([float(det.log_eps)]))))
    flat = g.op("Reshape", logs, g.const(np.array([0, -1], np.int64)))
    return g.model(_head(g, flat, det), h, w, f"dct detector ({det.channels}, log_eps {det.log_eps}) at {h}x{w}")


def dft_matrices(n: int, half: bool) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of 2*pi*k*j/n with the phase taken mod n in integers (exact arguments).
    half: the columns k = 0..n//2 of an rfft (rows j), else the full [k, j] matrix.  # -> 2 x [.., ..] float64"""
    j = np.arange(n)
    k = np.arange(n // 2 + 1 if half else n)
    phase = (np.outer(j, k) if half else np.outer(k, j)) % n
    angle = 2.0 * np.pi * phase / n
    return np.cos(angle), np.sin(angle)


def spectral_graph(det: Any) -> Any:
    """`forensics.detectors.spectral.SpectralDetector` as an ONNX model: the real 2-D DFT as matrix products,
    log power, the radial-mean matrix, the per-profile min-max, the head."""
    from forensics.detectors.spectral import _LOG_EPS, radial_matrix

    if det.normalize not in ("minmax", "none"):
        raise ValueError(f"spectral normalize {det.normalize!r} has no ONNX graph")
    h, w = (int(v) for v in det.image_size_)
    g = _Graph()
    x = _luma(g)  # [N,H,W] float64
    cw, sw = dft_matrices(w, half=True)  # [W,Wr]
    ch, sh = dft_matrices(h, half=False)  # [H,H]
    br = g.op("MatMul", x, g.const(cw))
    bi = g.op("MatMul", x, g.const(-sw))  # B = X (cos - i sin)
    ch_c, sh_c = g.const(ch), g.const(sh)
    re = g.op("Add", g.op("MatMul", ch_c, br), g.op("MatMul", sh_c, bi))  # F = (Ch - i Sh) B
    im = g.op("Sub", g.op("MatMul", ch_c, bi), g.op("MatMul", sh_c, br))
    power = g.op("Add", g.op("Add", g.op("Mul", re, re), g.op("Mul", im, im)), g.const(np.array([_LOG_EPS])))
    flat = g.op("Reshape", g.op("Log", power), g.const(np.array([0, -1], np.int64)))  # [N,H*Wr]
    prof = g.op("MatMul", flat, g.const(radial_matrix(h, w, int(det.n_bins))))  # [N,n_bins]
    if det.normalize == "minmax":
        lo = g.op("ReduceMin", prof, axes=[1], keepdims=1)
        span = g.op("Max", g.op("Sub", g.op("ReduceMax", prof, axes=[1], keepdims=1), lo), g.const(np.array([1e-12])))
        prof = g.op("Div", g.op("Sub", prof, lo), span)
    return g.model(_head(g, prof, det), h, w, f"spectral detector ({det.n_bins} bins, {det.normalize}) at {h}x{w}")


GRAPHS = {"dct": dct_graph, "spectral": spectral_graph}
