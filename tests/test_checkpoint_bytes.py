"""Same weights, same bytes: the manifest's checkpoint_sha256 must not change between two saves."""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from generators.checkpoint import load_tensors, save_tensors


def test_saving_twice_gives_identical_bytes_and_metadata_round_trips(tmp_path: Path) -> None:
    metadata = {"format": "f", "generator": "g", "step": "3", "optimizers": "{}"}
    digests = set()
    for _ in range(8):  # unpacked, safetensors would write these four entries in a random order
        save_tensors(tmp_path / "w.safetensors", {"a": torch.arange(4.0)}, metadata)
        digests.add(hashlib.sha256((tmp_path / "w.safetensors").read_bytes()).hexdigest())
    assert len(digests) == 1
    tensors, back = load_tensors(tmp_path / "w.safetensors")
    assert back == metadata and torch.equal(tensors["a"], torch.arange(4.0))
