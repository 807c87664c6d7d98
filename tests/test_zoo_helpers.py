"""Shared helpers for the generator-zoo tests (no tests here): a tiny real manifest and tiny checkpoints."""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import numpy as np
import torch

from forensics.data.manifest import new_row, sha256_file, to_frame, write_manifest
from forensics.data.media import write_image

REPO = Path(__file__).resolve().parents[1]


def make_real_dataset(root: Path, n: int = 20, size: int = 32) -> Path:
    """n smooth coloured images with noise, 5 identities spread over train/val/test; returns the manifest path."""
    rng = np.random.default_rng(0)
    rows = []
    (root / "img").mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        img = np.stack([np.sin(6 * xx + i) * 0.5 + 0.5, yy, np.cos(4 * yy * xx + i) * 0.5 + 0.5], -1)
        img = (img * 255 + rng.normal(0, 8, img.shape)).clip(0, 255).astype(np.uint8)
        path = root / "img" / f"{i:04d}.png"
        write_image(path, img)
        ident = f"id{i % 5}"
        rows.append(new_row(sample_id=f"r{i:04d}", path=f"img/{i:04d}.png", sha256=sha256_file(path), label=0,
                            media="frame", group_id=ident, identity=ident, width=size, height=size,
                            split=["train", "train", "train", "val", "test"][i % 5]))
    manifest = root / "manifest.parquet"
    write_manifest(to_frame(rows), manifest)
    return manifest


def make_checkpoint(folder: Path, seed: int = 0, preset: str = "tiny") -> Path:
    """A freshly initialised generator saved as a checkpoint (what training writes at step 0)."""
    import generators
    from generators.checkpoint import save_generator

    torch.manual_seed(seed)
    model = generators.create("stylegan2", preset)
    return save_generator(folder, "stylegan2", generators.resolve_config("stylegan2", preset), model,
                          {"steps": 0, "seed": seed})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_cmd(nproc: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
            "--master_addr", "127.0.0.1", "--master_port", str(free_port()), *args]


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return env
