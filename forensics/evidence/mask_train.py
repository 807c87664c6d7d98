"""Training and measuring the mask head on self-blended faces made on the fly (Face X-ray / SBI style).

The label: each fake is a real aligned crop self-blended with `generators.blend.self_blend`, whose blend weight
is an exact pixel label. The head learns the binary mask `weight > 0` (every pixel the blend could have changed)
rather than Face X-ray's boundary `4 w (1 - w)`: the scan wants *where* the face was replaced, an area an analyst
can see and the IoU can score, and the same rule (`weight > 0`) binarises the truth at evaluation. Reals are
shown with an all-zero mask half the time, so the head learns to paint nothing on an untouched face. Both
classes then go through the detectors' `postproc` augmentation (flip, down-up resize, blur, noise, JPEG; drawn
without looking at the label), the flip applied to the mask too, so the head holds on compressed faces.

Training is resumable: after every epoch (`epoch_steps` steps) the network, the optimiser's moments and a JSON
state are written atomically into the run folder; a rerun continues from the last epoch with the same data
stream (each epoch's randomness is seeded by (seed, epoch) alone).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from forensics.evidence.mask_model import MaskNetConfig, build_mask_net, save_mask_net, to_input

if TYPE_CHECKING:  # pragma: no cover
    import torch

STATE_FILE = "state.json"
OPTIM_FILE = "optim.safetensors"


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 480
    batch: int = 12
    epoch_steps: int = 40  # a checkpoint every this many steps
    lr_trunk: float = 5e-4
    lr_decoder: float = 2e-3
    weight_decay: float = 1e-4
    p_fake: float = 0.5
    augment: str = "postproc"
    seed: int = 0
    loss: str = "bce+dice"  # one of LOSSES: "bce+dice" (the first shipped head), "bce+fake_dice", "bce"


# -- data ------------------------------------------------------------------------------------------------------

def real_crops(manifest: str | Path, split: str, per_group: int, seed: int, size: int = 128
               ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Real aligned crops of one split that record their landmarks, at most `per_group` per source video/photo
    (so one long video does not drown the rest), drawn with `seed`. Returns crops [N,S,S,3] uint8, landmarks
    [N,5,2] in crop pixels, and each crop's group id."""
    import pandas as pd

    from forensics.data.media import read_image
    from generators.blend import crop_landmarks_of

    manifest = Path(manifest)
    df = pd.read_parquet(manifest)
    df = df[(df["label"] == 0) & df["media"].isin(("image", "frame")) & (df["split"] == split)
            & (df["width"] == size) & (df["height"] == size)].sort_values("sample_id", kind="stable")
    rng = np.random.default_rng(seed)
    crops, marks, groups = [], [], []
    for group, rows in df.groupby("group_id", sort=True):
        records = rows.to_dict("records")
        pick = rng.permutation(len(records))[:per_group]
        for i in sorted(pick):
            lm = crop_landmarks_of(records[i])
            if lm is None:
                continue
            crops.append(read_image(manifest.parent / records[i]["path"]))
            marks.append(lm)
            groups.append(str(group))
    if not crops:
        raise ValueError(f"{manifest}: no real {size} px crops with landmarks in split {split!r}")
    return np.stack(crops), np.stack(marks), groups


def blend_example(crop: np.ndarray, landmarks: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One self-blended fake of `crop` and its binary label (blend weight > 0). [S,S,3] uint8, [S,S] float32"""
    from generators.blend import self_blend

    fake, weight, _ = self_blend(crop, landmarks, seed)
    return fake, (weight > 0).astype(np.float32)


def batch_examples(crops: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, batch: int, p_fake: float,
                   transform: Any) -> tuple[np.ndarray, np.ndarray]:
    """A training batch: random crops, each blended with probability p_fake (else an all-zero mask), then the
    augmentation (applied to image and mask together). [B,S,S,3] uint8, [B,S,S] float32"""
    images, masks = [], []
    for _ in range(batch):
        i = int(rng.integers(len(crops)))
        if rng.random() < p_fake:
            image, mask = blend_example(crops[i], landmarks[i], int(rng.integers(2**31)))
        else:
            image, mask = crops[i], np.zeros(crops.shape[1:3], np.float32)
        if transform is not None:
            out = transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        images.append(image)
        masks.append(mask)
    return np.stack(images), np.stack(masks).astype(np.float32)


# -- loss and training -----------------------------------------------------------------------------------------

LOSSES = ("bce+dice", "bce+fake_dice", "bce")


def mask_loss(logits: "torch.Tensor", target: "torch.Tensor", kind: str = "bce+dice") -> "torch.Tensor":
    """Pixel BCE, plus (by `kind`) a soft-Dice term. [B,1,S,S] logits and targets -> scalar.

    "bce+dice": Dice over the whole batch (the first shipped head). It rewards overlap and barely charges for
    paint on a real face's empty mask, so an unsure head learns to paint every face.
    "bce+fake_dice": Dice per fake sample (non-empty target), averaged over the fakes only; reals are charged by
    BCE alone, so the overlap term no longer pays for painting them. Zero when a batch holds no fake.
    "bce": BCE alone, whose optimum for a pixel is the chance it was blended: a face the head cannot tell from
    a real gets p ~ p_fake there, not a confident mask."""
    import torch
    import torch.nn.functional as F

    if kind not in LOSSES:
        raise ValueError(f"mask loss must be one of {LOSSES}, got {kind!r}")
    bce = F.binary_cross_entropy_with_logits(logits, target)
    if kind == "bce":
        return bce
    p = torch.sigmoid(logits)
    if kind == "bce+dice":
        return bce + 1.0 - (2.0 * (p * target).sum() + 1.0) / (p.sum() + target.sum() + 1.0)
    fake = target.flatten(1).sum(dim=1) > 0  # [B]
    if not bool(fake.any()):
        return bce
    pf, tf = p[fake].flatten(1), target[fake].flatten(1)  # [F,S*S]
    dice = 1.0 - (2.0 * (pf * tf).sum(dim=1) + 1.0) / (pf.sum(dim=1) + tf.sum(dim=1) + 1.0)  # [F]
    return bce + dice.mean()


def _optimizer(net: "torch.nn.Module", config: TrainConfig) -> "torch.optim.Optimizer":
    import torch

    trunk = [p for n, p in net.named_parameters() if n.startswith(("stem.", "stages."))]
    head = [p for n, p in net.named_parameters() if not n.startswith(("stem.", "stages."))]
    return torch.optim.AdamW([{"params": trunk, "lr": config.lr_trunk}, {"params": head, "lr": config.lr_decoder}],
                             weight_decay=config.weight_decay)


def _lr_factor(step: int, total: int) -> float:
    """Linear warm-up over 5% of the steps, then cosine down to 5%."""
    warm = max(1, total // 20)
    if step < warm:
        return (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return 0.05 + 0.95 * 0.5 * (1.0 + np.cos(np.pi * t))


def _save_optimizer(path: Path, opt: "torch.optim.Optimizer") -> None:
    """AdamW's moments as named tensors (no pickle): state.<param index>.<exp_avg|exp_avg_sq|step>."""
    from safetensors.torch import save as st_save

    from forensics.data.media import write_bytes_atomic

    tensors = {}
    for idx, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            tensors[f"state.{idx}.{key}"] = value.detach().cpu().contiguous().reshape(value.shape)
    write_bytes_atomic(path, st_save(tensors))


def _load_optimizer(path: Path, opt: "torch.optim.Optimizer") -> None:
    from safetensors.torch import load_file

    sd = opt.state_dict()
    state: dict[int, dict[str, Any]] = {}
    for name, value in load_file(str(path)).items():
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = value
    sd["state"] = state
    opt.load_state_dict(sd)


def train_mask_net(run_dir: str | Path, crops: np.ndarray, landmarks: np.ndarray, net_config: MaskNetConfig,
                   config: TrainConfig, log: Callable[[str], None] = print) -> tuple["torch.nn.Module", dict[str, Any]]:
    """Train (or resume) the mask network on blends of `crops` [N,S,S,3] with their `landmarks` [N,5,2].

    `run_dir` holds the last finished epoch: `net/` (config.json + weights.safetensors), `optim.safetensors` and
    `state.json` (step, per-epoch mean loss, seconds). Returns the network (eval mode) and the state."""
    import torch

    from forensics.augment import training_transform
    from forensics.evidence.mask_model import load_mask_net

    if crops.shape[1] != net_config.size:
        raise ValueError(f"crops are {crops.shape[1]} px but the network is configured for {net_config.size} px")
    run_dir = Path(run_dir)
    state_path = run_dir / STATE_FILE
    record = {"train": asdict(config), "net": net_config.to_dict(), "crops": int(len(crops))}
    if state_path.is_file():
        state = json.loads(state_path.read_text())
        state["record"]["train"].setdefault("loss", "bce+dice")  # runs made before `loss` was a setting
        if state["record"] != record:
            raise ValueError(f"{state_path}: the run there was made with another config; use a new run folder")
        net, _, _ = load_mask_net(run_dir / "net")
        log(f"resuming {run_dir} at step {state['step']}")
    else:
        state = {"record": record, "step": 0, "epochs": [], "seconds": 0.0}
        torch.manual_seed(config.seed)  # the decoder's (and a scratch trunk's) initial weights
        net = build_mask_net(net_config)
    opt = _optimizer(net, config)
    if state["step"] and (run_dir / OPTIM_FILE).is_file():
        _load_optimizer(run_dir / OPTIM_FILE, opt)
    base_lrs = [g["lr"] for g in opt.param_groups]
    net.train()
    while state["step"] < config.steps:
        epoch = state["step"] // config.epoch_steps
        rng = np.random.default_rng([config.seed, epoch])
        transform = training_transform(config.augment, seed=config.seed * 100003 + epoch)
        t0, losses = time.perf_counter(), []
        end = min(config.steps, (epoch + 1) * config.epoch_steps)
        for step in range(state["step"], end):
            images, masks = batch_examples(crops, landmarks, rng, config.batch, config.p_fake, transform)
            for g, lr in zip(opt.param_groups, base_lrs):
                g["lr"] = lr * _lr_factor(step, config.steps)
            logits = net(to_input(images))  # [B,1,S,S]
            loss = mask_loss(logits, torch.from_numpy(masks)[:, None], config.loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        state["step"] = end
        state["seconds"] = round(state["seconds"] + time.perf_counter() - t0, 1)
        state["epochs"].append({"epoch": epoch, "end_step": end, "loss": round(float(np.mean(losses)), 5)})
        save_mask_net(run_dir / "net", net, net_config)
        _save_optimizer(run_dir / OPTIM_FILE, opt)
        from forensics.data.media import write_bytes_atomic

        write_bytes_atomic(state_path, (json.dumps(state, indent=2) + "\n").encode())
        log(f"epoch {epoch}: steps {end}/{config.steps}, loss {np.mean(losses):.4f}, {state['seconds']:.0f} s so far")
    return net.eval(), state


# -- measuring -------------------------------------------------------------------------------------------------

def predict_masks(net: "torch.nn.Module", crops: np.ndarray, batch: int = 32) -> np.ndarray:
    """Per-pixel probabilities of the trained network. [N,S,S,3] uint8 -> [N,S,S] float32 in [0, 1]"""
    import torch

    net.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(crops), batch):
            out.append(torch.sigmoid(net(to_input(crops[i:i + batch])))[:, 0].numpy())
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0,) + crops.shape[1:3], np.float32)


def iou(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-image intersection over union of two boolean masks [N,S,S] -> [N]. Both empty counts as 1."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    inter = (pred & truth).sum(axis=(1, 2))
    union = (pred | truth).sum(axis=(1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def bootstrap_mean_ci(values: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95
                      ) -> tuple[float, float]:
    """Percentile bootstrap CI of a mean (seeded, so reruns agree)."""
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return (float("nan"), float("nan"))
    idx = np.random.default_rng(seed).integers(0, values.size, (n_boot, values.size))
    means = values[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return (float(lo), float(hi))


__all__ = ["LOSSES", "TrainConfig", "batch_examples", "blend_example", "bootstrap_mean_ci", "iou", "mask_loss",
           "predict_masks", "real_crops", "train_mask_net"]
