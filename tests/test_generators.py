"""The zoo frame: registry, presets, the Generator protocol over every registered model, checkpoints."""
from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

import generators
from generators.base import ImageTranslator, UnconditionalGenerator
from generators.checkpoint import CheckpointError, load_generator, load_tensors, save_generator
from generators.config import ConfigError, config_from_dict, config_to_dict
from generators.quality import to_uint8

MODELS = generators.list()


def test_registry_lists_and_rejects_unknown_names_with_a_hint() -> None:
    assert "stylegan2" in MODELS
    with pytest.raises(generators.UnknownModelError, match="did you mean 'stylegan2'"):
        generators.create("stylegan3")
    with pytest.raises(ConfigError, match="did you mean 'small'"):
        generators.create("stylegan2", "smal")


@pytest.mark.parametrize("name", MODELS)
def test_every_model_has_the_three_presets_and_json_round_trips(name: str) -> None:
    spec = generators.get_spec(name)
    assert {"tiny", "small", "paper"} <= set(spec.presets)
    for cfg in spec.presets.values():
        assert config_from_dict(spec.config_cls, config_to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match="unknown"):
        config_from_dict(spec.config_cls, {**config_to_dict(spec.presets["tiny"]), "resolutoin": 8})


@pytest.mark.parametrize("name", MODELS)
def test_tiny_model_shape_range_and_determinism(name: str) -> None:
    torch.manual_seed(0)
    model = generators.create(name, "tiny")
    spec = generators.get_spec(name)
    r = model.resolution
    if spec.kind == "unconditional":
        assert isinstance(model, UnconditionalGenerator)
        a, b, c = model.sample(3, seed=1), model.sample(3, seed=1), model.sample(3, seed=2)
    else:  # image-to-image models: translate a fixed batch
        assert isinstance(model, ImageTranslator)
        x = torch.rand(3, 3, r, r, generator=torch.Generator().manual_seed(0)) * 2 - 1
        y = torch.rand(3, 3, r, r, generator=torch.Generator().manual_seed(1)) * 2 - 1
        # a translator may be deterministic (a face swap has no noise): another input must change the output
        # target 1: every translator has at least two domains / identities, addressable by index
        a, b, c = (model.translate(x, target=1, seed=1), model.translate(x, target=1, seed=1),
                   model.translate(y, target=1, seed=2))
    assert a.shape == (3, 3, r, r) and a.dtype == torch.float32
    assert a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("name", [m for m in MODELS if generators.get_spec(m).kind == "unconditional"])
def test_sample_seeds_item_depends_only_on_its_seed(name: str) -> None:
    torch.manual_seed(0)
    model = generators.create(name, "tiny")
    both = to_uint8(model.sample_seeds([5, 9]))
    again = to_uint8(model.sample_seeds([7, 9]))
    assert (both[1] == again[1]).all() and not (both[0] == again[0]).all()


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = generators.resolve_config("stylegan2", "tiny")
    model = generators.create("stylegan2", cfg)
    model.mapping.w_avg.fill_(0.25)  # buffers travel too
    save_generator(tmp_path / "ck", "stylegan2", cfg, model, {"steps": 7, "seed": 3})
    ck = load_generator(tmp_path / "ck")
    assert ck.config == cfg and ck.train_steps == 7 and len(ck.sha256) == 64
    for (k, v), (k2, v2) in zip(model.state_dict().items(), ck.model.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    assert torch.equal(model.sample(2, seed=0), ck.model.sample(2, seed=0))
    # also addressable by its files
    assert load_generator(tmp_path / "ck" / "model.json").sha256 == ck.sha256


class _Exploit:
    def __reduce__(self):  # what a malicious pickle does on load
        return (Path.touch, (Path(_Exploit.marker),))


def test_a_crafted_pickle_is_refused_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    _Exploit.marker = str(marker)  # type: ignore[attr-defined]
    payload = pickle.dumps({"weight": _Exploit()})
    folder = tmp_path / "ck"
    torch.manual_seed(0)
    save_generator(folder, "stylegan2", generators.resolve_config("stylegan2", "tiny"),
                   generators.create("stylegan2", "tiny"), {"steps": 0})
    (folder / "model.safetensors").write_bytes(payload)  # a pickle disguised as safetensors
    with pytest.raises(CheckpointError, match="not a safetensors file.*never unpickled"):
        load_generator(folder)
    with pytest.raises(CheckpointError, match="pickle-based"):
        load_tensors(tmp_path / "weights.pt")
    torch.save({"w": torch.zeros(2)}, tmp_path / "zip.safetensors")  # torch's zip-pickle format
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_tensors(tmp_path / "zip.safetensors")
    assert not marker.exists()


def test_damaged_or_mismatched_weights_are_clear_errors(tmp_path: Path) -> None:
    torch.manual_seed(0)
    folder = tmp_path / "ck"
    save_generator(folder, "stylegan2", generators.resolve_config("stylegan2", "tiny"),
                   generators.create("stylegan2", "tiny"), {"steps": 0})
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="damaged|not a safetensors"):
        load_generator(folder)
    small = generators.create("stylegan2", "small")
    save_generator(folder, "stylegan2", generators.resolve_config("stylegan2", "tiny"), small, {"steps": 0})
    with pytest.raises(CheckpointError, match="do not match|size mismatch"):
        load_generator(folder)
