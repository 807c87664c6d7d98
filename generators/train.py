"""The zoo's one training loop. A model plugs in through a small `TrainTask` (networks, optimizers, EMA spec,
one `train_step`); the loop owns everything that is not model-specific:

- seeding: init from `seed`; step s on rank r reseeds from (seed, r, s), so a resumed run replays exactly;
- data order: a seeded permutation per epoch, indexed by step, each rank taking its slice of the global batch;
- devices `auto|cpu|cuda`; on CUDA, autocast (bf16, or fp16 with a GradScaler) and channels_last;
- data parallelism under `torchrun` (WORLD_SIZE > 1): gloo on CPU, NCCL on GPU. As in the StyleGAN2-ADA
  reference, gradients are all-reduced by hand in `StepContext.optimize` instead of wrapping networks in
  DistributedDataParallel: GAN steps alternate networks, freeze some and take double-backward penalties (R1),
  which DDP's once-per-forward bucket hooks do not handle;
- the EMA of the sampling network (half-life in images, optional ramp-up);
- checkpoints every `checkpoint_every` steps, written to a temp folder and renamed, then `latest.json` replaced
  atomically: a killed run resumes from the last checkpoint and loses only the steps since.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol

import torch
import torch.distributed as dist
from torch import nn

from forensics.data.media import write_bytes_atomic
from generators.checkpoint import (
    MODEL_WEIGHTS,
    TRAIN_STATE,
    CheckpointError,
    load_optimizer,
    load_state,
    load_tensors,
    optimizer_tensors,
    read_json,
    read_model_json,
    save_generator,
    save_tensors,
    state_tensors,
    write_json_atomic,
)
from generators.config import config_to_dict

LATEST = "latest.json"


class TrainTask(Protocol):
    """The per-model part of training. A GAN returns {"G": ..., "D": ...}; an autoencoder just {"AE": ...}."""

    config: Any

    @property
    def batch_size(self) -> int: ...  # global batch (split across ranks)

    def networks(self) -> dict[str, nn.Module]: ...

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]: ...

    def ema_spec(self) -> tuple[str, float, float | None] | None:
        """(network name, half-life in images, ramp-up fraction or None); None: no EMA."""
        ...

    def sampling_network(self) -> nn.Module: ...  # the raw network exported for sampling (EMA'd if any)

    def load_data(self, manifest: str | os.PathLike) -> dict[str, torch.Tensor]: ...  # tensors sharing dim 0

    def train_step(self, batch: dict[str, torch.Tensor], ctx: "StepContext") -> dict[str, float]: ...


@dataclass(frozen=True)
class TrainOptions:
    """How to run (not what to train: that is the model config)."""

    steps: int
    out: Path
    seed: int = 0
    device: str = "auto"
    checkpoint_every: int = 500
    keep_checkpoints: int = 2  # newest N kept, plus step 0 (the quality baseline)
    resume: bool = False
    amp: bool = True  # CUDA only
    log_every: int = 10
    progress: bool = True
    stop_after: int | None = None  # stop (as if killed) after this many steps of this session; for tests


@dataclass
class TrainResult:
    out: Path
    checkpoint: Path
    steps: int
    wall_time_s: float
    losses: dict[str, float] = field(default_factory=dict)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but CUDA is not available")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"device must be auto|cpu|cuda, got {device!r}")
    return torch.device(device)


@dataclass(frozen=True)
class Dist:
    """Process-group facts; world == 1 means single process."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> tuple[Dist, torch.device]:
    """Join the torchrun process group when WORLD_SIZE > 1 (gloo on CPU, NCCL on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = resolve_device(device)
    if world <= 1:
        return Dist(), dev
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Dist(rank, world, local_rank), dev


def _step_seed(seed: int, rank: int, step: int) -> int:
    h = hashlib.sha256(f"train:{seed}:{rank}:{step}".encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def batch_indices(step: int, batch: int, n: int, seed: int) -> torch.Tensor:
    """Global batch `step` from a stream of seeded per-epoch permutations of range(n). [batch] int64"""
    start = step * batch
    out: list[torch.Tensor] = []
    while len(out) == 0 or sum(len(o) for o in out) < batch:
        pos = start + sum(len(o) for o in out)
        epoch, offset = divmod(pos, n)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        out.append(perm[offset:offset + batch - sum(len(o) for o in out)])
    return torch.cat(out)


class StepContext:
    """What a `train_step` may use: networks on the device, the step, autocast, and `optimize`."""

    def __init__(self, nets: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                 device: torch.device, dist_info: Dist, amp_dtype: torch.dtype | None) -> None:
        self.nets = nets
        self.optimizers = optimizers
        self.device = device
        self.dist = dist_info
        self.step = 0
        self.amp_dtype = amp_dtype
        use_scaler = amp_dtype == torch.float16
        self.scalers = {k: torch.amp.GradScaler("cuda", enabled=use_scaler) for k in optimizers}
        self.channels_last = device.type == "cuda"

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def to_memory_format(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.ndim == 4 else x

    @contextlib.contextmanager
    def frozen(self, *modules: nn.Module) -> Iterator[None]:
        """Stop gradients into these networks for the block (e.g. D during the G step)."""
        saved = [(p, p.requires_grad) for m in modules for p in m.parameters()]
        for p, _ in saved:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p, flag in saved:
                p.requires_grad_(flag)

    def optimize(self, name: str, loss: torch.Tensor) -> None:
        """Backward `loss`, average gradients across ranks, step optimizer `name`."""
        opt, scaler = self.optimizers[name], self.scalers[name]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
        if self.dist.world > 1 and params:
            flat = torch.cat([p.grad.flatten() for p in params])
            dist.all_reduce(flat)
            flat.div_(self.dist.world)
            torch.nan_to_num_(flat, nan=0.0, posinf=1e5, neginf=-1e5)
            offset = 0
            for p in params:
                p.grad.copy_(flat[offset:offset + p.numel()].view_as(p.grad))
                offset += p.numel()
        scaler.step(opt)
        scaler.update()


class Ema:
    """Exponential moving average of a network, half-life in images, optional ramp-up (StyleGAN2-ADA)."""

    def __init__(self, source: nn.Module, half_life_images: float, rampup: float | None) -> None:
        self.model = copy.deepcopy(source).eval().requires_grad_(False)
        self.half_life, self.rampup = half_life_images, rampup

    def beta(self, images_seen: int, batch: int) -> float:
        half_life = self.half_life
        if self.rampup is not None:
            half_life = min(half_life, images_seen * self.rampup)
        return 0.5 ** (batch / max(half_life, 1e-8))

    @torch.no_grad()
    def update(self, source: nn.Module, images_seen: int, batch: int) -> None:
        beta = self.beta(images_seen, batch)
        for p_ema, p in zip(self.model.parameters(), source.parameters()):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(self.model.buffers(), source.buffers()):
            b_ema.copy_(b)


def _amp_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    if not amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _latest_checkpoint(out: Path) -> Path | None:
    if not (out / LATEST).exists():
        return None
    name = read_json(out / LATEST)["checkpoint"]
    return out / name


def _save_checkpoint(out: Path, name: str, step: int, task: TrainTask, ema: Ema | None,
                     optimizers: dict[str, torch.optim.Optimizer], train_info: dict[str, Any], keep: int) -> Path:
    """Write ckpt-<step>/ via a temp folder + rename, then point latest.json at it, then prune old ones."""
    final = out / f"ckpt-{step:08d}"
    tmp = out / f".tmp-ckpt-{step:08d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:  # a failed write (disk full) leaves no half checkpoint behind, not even under the temp name
        sampler = ema.model if ema is not None else task.sampling_network()
        save_generator(tmp, name, task.config, sampler, train_info)
        tensors: dict[str, torch.Tensor] = {}
        optim_meta: dict[str, Any] = {}
        for net_name, net in task.networks().items():
            tensors.update(state_tensors(net, f"net/{net_name}/"))
        for opt_name, opt in optimizers.items():
            t, meta = optimizer_tensors(opt, f"optim/{opt_name}/")
            tensors.update(t)
            optim_meta[opt_name] = meta
        save_tensors(tmp / TRAIN_STATE, tensors, metadata={"optimizers": json.dumps(optim_meta), "step": str(step)})
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    write_json_atomic(out / LATEST, {"checkpoint": final.name, "step": step})
    _prune_checkpoints(out, keep)
    return final


def _log_step(line: str) -> float:
    """The step of a log line; a torn last line (killed mid-append) counts as lost (inf)."""
    try:
        return float(json.loads(line).get("step", 0))
    except (json.JSONDecodeError, AttributeError):
        return float("inf")


def _prune_checkpoints(out: Path, keep: int) -> None:
    """Keep the newest `keep` checkpoints (plus step 0, the quality baseline), never past `latest.json`'s."""
    latest = _latest_checkpoint(out)
    ckpts = sorted(p for p in out.glob("ckpt-*") if p.is_dir() and p.name != "ckpt-00000000")
    if latest is not None:  # a checkpoint renamed into place but never made latest (killed in between) goes too
        ckpts = [p for p in ckpts if p.name <= latest.name]
        for newer in sorted(p for p in out.glob("ckpt-*") if p.is_dir() and p.name > latest.name):
            shutil.rmtree(newer, ignore_errors=True)
    for old in ckpts[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


def _remove_stale_temps(out: Path) -> None:
    """Checkpoint temp folders and temp files a killed session left (this session holds the folder's lock)."""
    from forensics.jobs import remove_stale_temp_files

    for tmp in out.glob(".tmp-ckpt-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    remove_stale_temp_files(out)


def _restore(ckpt: Path, task: TrainTask, ema: Ema | None, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, Any]:
    tensors, meta = load_tensors(ckpt / TRAIN_STATE)
    for net_name, net in task.networks().items():
        load_state(net, tensors, prefix=f"net/{net_name}/", source=str(ckpt / TRAIN_STATE))
    optim_meta = json.loads(meta["optimizers"])
    for opt_name, opt in optimizers.items():
        load_optimizer(opt, tensors, optim_meta[opt_name], prefix=f"optim/{opt_name}/")
    if ema is not None:
        ema_tensors, _ = load_tensors(ckpt / MODEL_WEIGHTS)
        load_state(ema.model, ema_tensors, source=str(ckpt / MODEL_WEIGHTS))
    return read_model_json(ckpt)["train"]


def _replica_checksum(task: TrainTask, d: Dist) -> None:
    """Fail loudly if ranks have drifted apart (a broken all-reduce would otherwise go unnoticed)."""
    if d.world <= 1:
        return
    total = torch.stack([p.detach().double().sum() for n in task.networks().values() for p in n.parameters()]).sum()
    total = total.reshape(1).cpu()
    gathered = [torch.zeros(1, dtype=torch.float64) for _ in range(d.world)]
    dist.all_gather(gathered, total)
    if any(abs(float(g) - float(gathered[0])) > 1e-6 * max(1.0, abs(float(gathered[0]))) for g in gathered):
        raise RuntimeError(f"replicas out of sync: parameter sums {[float(g) for g in gathered]}")


def run_training(name: str, task: TrainTask, data: dict[str, torch.Tensor], options: TrainOptions,
                 dist_info: Dist, device: torch.device, data_info: dict[str, Any] | None = None) -> TrainResult:
    """Train `task` on in-memory `data` (tensors sharing dim 0). The task must be built under torch.manual_seed(seed)."""
    out = Path(options.out)
    n_items = next(iter(data.values())).shape[0]
    global_batch = task.batch_size
    if global_batch % dist_info.world:
        raise ValueError(f"batch size {global_batch} is not divisible by WORLD_SIZE {dist_info.world}")
    local_batch = global_batch // dist_info.world

    nets = task.networks()
    for net in nets.values():
        net.to(device).train()
        if device.type == "cuda":
            net.to(memory_format=torch.channels_last)
    if dist_info.world > 1:  # identical start on every rank
        for net in nets.values():
            for t in list(net.parameters()) + list(net.buffers()):
                dist.broadcast(t.data, src=0)
    optimizers = task.make_optimizers()
    spec = task.ema_spec()
    ema = Ema(nets[spec[0]], spec[1], spec[2]) if spec is not None else None
    ema_source = nets[spec[0]] if spec is not None else None

    start, wall_before = 0, 0.0
    latest = _latest_checkpoint(out)
    if latest is not None and not options.resume:
        raise FileExistsError(f"{out} already holds a training run ({latest.name}); pass --resume or use a new --out")
    if latest is not None:
        saved = read_model_json(latest)
        if saved["config"] != config_to_dict(task.config):
            raise CheckpointError(f"{latest}: saved config differs from the requested one; resume with the same config")
        info = _restore(latest, task, ema, optimizers)
        start, wall_before = int(info["steps"]), float(info.get("wall_time_s", 0.0))
        if info.get("seed") != options.seed:
            raise CheckpointError(f"{latest}: trained with seed {info.get('seed')}, resume asked for {options.seed}")

    ctx = StepContext(nets, optimizers, device, dist_info, _amp_dtype(device, options.amp))
    t0 = time.perf_counter()

    def train_info(step: int) -> dict[str, Any]:
        return {"steps": step, "seed": options.seed, "images_seen": step * global_batch, "batch_size": global_batch,
                "wall_time_s": round(wall_before + time.perf_counter() - t0, 3), "device": device.type,
                "world_size": dist_info.world, "data": data_info or {}, "amp": str(ctx.amp_dtype)}

    def checkpoint(step: int) -> Path:
        _replica_checksum(task, dist_info)
        path = out / f"ckpt-{step:08d}"
        if dist_info.main:
            path = _save_checkpoint(out, name, step, task, ema, optimizers, train_info(step), options.keep_checkpoints)
        if dist_info.world > 1:
            dist.barrier()
        return path

    if dist_info.main:
        out.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(out)
        if latest is not None:  # a kill during the last pruning would otherwise leave an extra checkpoint
            _prune_checkpoints(out, options.keep_checkpoints)
    last_ckpt = latest if latest is not None else checkpoint(0)
    losses: dict[str, float] = {}
    bar = None
    if options.progress and dist_info.main:
        from tqdm import tqdm

        bar = tqdm(total=options.steps, initial=start, desc=f"train {name}", dynamic_ncols=True)
    log_path = out / "log.jsonl"
    if latest is not None and dist_info.main and log_path.exists():  # forget lines of steps lost with the kill
        kept = [ln for ln in log_path.read_text().splitlines() if _log_step(ln) <= start]
        write_bytes_atomic(log_path, "".join(ln + "\n" for ln in kept).encode())
    done_this_session = 0
    for step in range(start, options.steps):
        if options.stop_after is not None and done_this_session >= options.stop_after:
            break
        torch.manual_seed(_step_seed(options.seed, dist_info.rank, step))
        idx = batch_indices(step, global_batch, n_items, options.seed)
        idx = idx[dist_info.rank * local_batch:(dist_info.rank + 1) * local_batch]
        batch = {k: v[idx].to(device, non_blocking=True) for k, v in data.items()}
        ctx.step = step
        losses = task.train_step(batch, ctx)
        if ema is not None and ema_source is not None:
            ema.update(ema_source, (step + 1) * global_batch, global_batch)
        done_this_session += 1
        completed = step + 1
        if dist_info.main and (completed % options.log_every == 0 or completed == options.steps):
            with open(log_path, "a") as fh:
                fh.write(json.dumps({"step": completed, **{k: round(v, 5) for k, v in losses.items()},
                                     "wall_time_s": round(wall_before + time.perf_counter() - t0, 2)}) + "\n")
            if bar is not None:
                bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
        if bar is not None:
            bar.update(1)
        if completed % options.checkpoint_every == 0 or completed == options.steps:
            last_ckpt = checkpoint(completed)
    if bar is not None:
        bar.close()
    final_steps = int(read_json(out / LATEST)["step"]) if (out / LATEST).exists() else start
    return TrainResult(out=out, checkpoint=last_ckpt, steps=final_steps,
                       wall_time_s=round(wall_before + time.perf_counter() - t0, 3), losses=losses)


def train(name: str, config: Any, manifest: str | os.PathLike, options: TrainOptions) -> TrainResult:
    """Train registered model `name` ('tiny'|'small'|'paper' or a config) on the real train split of `manifest`.

    With `options.resume`, the run folder's saved config must equal `config` (a mismatch is an error)."""
    import generators
    from generators.data import manifest_fingerprint

    from forensics.jobs import output_errors, output_lock

    spec = generators.get_spec(name)
    cfg = generators.resolve_config(name, config)
    dist_info, device = init_distributed(options.device)
    try:
        # one writer per run folder (rank 0 writes it; the other ranks only train)
        with output_lock(options.out) if dist_info.main else contextlib.nullcontext(), output_errors(options.out):
            torch.manual_seed(options.seed)  # same init on every rank
            task = spec.build_task(cfg)
            data = task.load_data(manifest)
            return run_training(name, task, data, options, dist_info, device, manifest_fingerprint(manifest))
    finally:
        if dist_info.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
