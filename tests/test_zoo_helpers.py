"""Shared helpers for the generator-zoo tests (no tests here): a tiny real manifest and tiny checkpoints."""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def make_real_dataset(root: Path, n: int = 20, size: int = 32) -> Path:
    """n smooth coloured images with noise, 5 identities spread over train/val/test; returns the manifest path.
    (The kill -9 harness builds its jobs' inputs with the same function.)"""
    from forensics.reliability.kill import make_real_manifest

    return make_real_manifest(root, n, size)


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
