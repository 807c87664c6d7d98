"""Throughput of `forensics scan`: video frames analysed per second on a 640x360 clip, with the time per stage
(decode, detect, track, align, score, temporal, and the rest), against MTCNN on every frame in the same run;
and one-megapixel photos per second (starter stills upscaled to ~1000x1000 and saved as JPEG); each on both
runtimes (torch and ONNX Runtime, `forensics scan --runtime`), in the same run, with the ratio onnx / torch.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_scan.py [--model BUNDLE] [--every 10]
                                                                 # -> reports/scan_throughput.md

The bundle is copied into the work folder and exported there (`forensics detect export --onnx`), so both runtimes
score with the very same models and the bundle given is left as it is; its sha256 (without the export) is in the
report.

Each figure goes through `forensics.scan.pipeline.analyse_file`, the per-file step of the scan (hash before,
sniff, decode, detect, track, align, score, verdicts, pictures, hash after); photos are also timed through
the whole command's library call (`run_scan`: journal, scan.json, summary.csv, report.html). MTCNN and the
bundle are loaded and warmed up before timing. Without --model, the shipped bundle is used, or, when none is
shipped yet, a stand-in with the same detector kinds (spectral, dct, cnn at 128 px) trained for one epoch on
toy data (its scores mean nothing; its cost is what is timed). The CPU is shared: the load average at the
start and end is printed with the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.timing import cpu_name  # noqa: E402

CLIP = ROOT / "forensics" / "assets" / "starter" / "WolfgangLanger_Pexels.mp4"
STILLS = ("0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg", "single_face.jpg",
          "grace_hopper.jpg", "astronaut.png", "multi_face.jpg")
VIDEO_TARGET_FPS = 30.0
VIDEO_TARGET_FPS_ONNX = 60.0  # issue #21
PHOTO_TARGET = 5.0
RUNTIMES = ("torch", "onnx")
EVIDENCE_RATIO_TARGET = 0.8  # throughput with the evidence sections >= 80% of without (issue #13)
STAGES = ("decode", "detect", "track", "align", "score", "temporal")


def stand_in_bundle(out: Path) -> Path:
    """spectral + dct + cnn (efficientnet_lite0, 1 epoch) on toy 128 px data: the shipped bundle's kinds."""
    if (out / "bundle.json").is_file():
        return out
    from forensics.bundle.build import build_bundle_from_arrays
    from forensics.detectors import toydata

    rng = np.random.default_rng(0)

    def split(n: int):
        images = np.concatenate([toydata.real_images(rng, n, 128), toydata.fake_images(rng, n, 128, "nearest")])
        return images, np.array([0] * n + [1] * n)

    train, val = split(48), split(24)
    return build_bundle_from_arrays(out, train, (*val, [f"v{i}" for i in range(len(val[1]))]),
                                    {"spectral": {}, "dct": {},
                                     "cnn": {"epochs": 1, "batch_size": 32, "device": "cpu"}},
                                    perturbations=("jpeg30",), face={"size": 128, "margin": 0.25},
                                    extra={"note": "benchmark stand-in: toy data, scores meaningless"})


def one_megapixel_photos(folder: Path) -> list[Path]:
    """Each starter still upscaled (bicubic) to about one megapixel and saved as JPEG quality 90."""
    import cv2

    from forensics.data.media import read_image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in STILLS:
        rgb = read_image(ROOT / "forensics" / "assets" / "starter" / name)
        s = (1_000_000 / (rgb.shape[0] * rgb.shape[1])) ** 0.5
        big = cv2.resize(rgb, (round(rgb.shape[1] * s), round(rgb.shape[0] * s)), interpolation=cv2.INTER_CUBIC)
        path = folder / f"{Path(name).stem}_1mp.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(big, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(path)
    return paths


def time_file(path: Path, ctx, out: Path) -> tuple[float, float, dict[str, float], dict]:
    """(wall s, process CPU s, CPU s per stage, scan.json entry) of one file through `analyse_file`."""
    from forensics.scan.discover import Candidate
    from forensics.scan.pipeline import analyse_file
    from forensics.scan.timing import StageTimer

    ctx.timer = StageTimer()
    t, cpu = time.perf_counter(), time.process_time()
    entry, _ = analyse_file(Candidate(path, str(path)), ctx, out)
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    if entry["status"] != "analysed":
        raise RuntimeError(f"{path}: {entry['errors']}")
    return wall, cpu, dict(ctx.timer.cpu_seconds), entry


def sharded_photo_rate(folder: Path, bundle_dir: Path, ranks: int, out: Path) -> dict:
    """The photos scanned by `forensics scan` under torchrun with `ranks` processes. The rate is taken from the
    custody record (first file started to last file finished), so process start-up is not counted."""
    import socket
    import subprocess
    from datetime import datetime

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks), "--master_addr",
           "127.0.0.1", "--master_port", str(port), "-m", "forensics", "scan", str(folder), "--out", str(out),
           "--model", str(bundle_dir), "--no-progress"]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    files = json.loads((out / "scan.json").read_text())["custody"]["files"]
    stamp = lambda s: datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()  # noqa: E731
    span = max(stamp(f["finished_utc"]) for f in files) - min(stamp(f["started_utc"]) for f in files)
    return {"ranks": ranks, "photos": len(files), "span_s": span, "per_s": len(files) / span}


def video_run(ctx, out: Path, every: int, max_frames: int | None) -> dict:
    from dataclasses import replace

    ctx.settings = replace(ctx.settings, every=every, max_frames=max_frames)
    wall, cpu, stages, entry = time_file(CLIP, ctx, out)
    frames = entry["video"]["frames_analysed"]
    other = max(0.0, cpu - sum(stages.get(s, 0.0) for s in STAGES))
    return {"every": every, "frames": frames, "wall_s": wall, "fps": frames / wall, "cpu_s": cpu,
            "frames_per_cpu_s": frames / cpu,
            "cpu_ms_per_frame": {**{s: 1000 * stages.get(s, 0.0) / frames for s in STAGES},
                                 "other": 1000 * other / frames},
            "faces": sum(u["frames"] for u in entry["faces"]), "tracks": len(entry["faces"])}


def _custody_span(doc: dict) -> float:
    """Seconds from the first file's start (its hash, read ahead) to the last file's end, from the custody record:
    the scan loop's own rate, without loading the bundle before it or writing the report after it."""
    from datetime import datetime

    stamp = lambda s: datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()  # noqa: E731
    files = doc["custody"]["files"]
    return max(stamp(f["finished_utc"]) for f in files) - min(stamp(f["started_utc"]) for f in files)


def photo_folder(photos: list[Path], folder: Path, copies: int) -> Path:
    """`copies` copies of the photos in one folder (an archive long enough for the read-ahead to be in its
    steady state)."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    for k in range(copies):
        for p in photos:
            shutil.copy(p, folder / f"{k:02d}_{p.name}")
    return folder


def photo_scan_rate(folder: Path, bundle_dir: Path, settings, out: Path) -> dict:
    """The photos through `run_scan` (read-ahead, journal, scan.json, summary.csv, report.html): the scan loop's
    rate (custody span) and the whole call's (bundle loading and report included), wall and CPU."""
    from forensics.scan.pipeline import run_scan

    t, cpu = time.perf_counter(), time.process_time()
    outcome = run_scan([str(folder)], out, bundle_dir, settings, progress=False, log=lambda m: None)
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    assert outcome.analysed == outcome.files, f"{outcome.failed} photo(s) failed"
    doc = json.loads((out / "scan.json").read_text())
    span = _custody_span(doc)
    return {"photos": outcome.files, "wall_s": wall, "cpu_s": cpu, "per_s": outcome.files / span, "span_s": span,
            "whole_call_per_s": outcome.files / wall, "per_cpu_s": outcome.files / cpu,
            "runtime": doc["custody"]["model"]["runtime"], "verdicts": [f["verdict"] for f in doc["files"]]}


def runtime_comparison(bundle, bundle_dir: Path, settings, photos: list[Path], tmp: Path, every: int,
                       video_frames: int | None, rounds: int = 2, copies: int = 3) -> dict:
    """Video and photos on torch and on onnx, alternating (torch, onnx, then onnx, torch, ...) so that a change in
    the machine's load hits both alike; every figure with evidence on. Returns per runtime the mean rates and the
    ratios onnx / torch."""
    from dataclasses import replace

    from forensics.scan.context import make_context

    archive = photo_folder(photos, tmp / "archive", copies)
    runs: dict[str, dict[str, list]] = {rt: {"video": [], "photos": [], "photos_per_file": []} for rt in RUNTIMES}
    for r in range(rounds):
        for rt in (RUNTIMES if r % 2 == 0 else RUNTIMES[::-1]):
            rt_settings = replace(settings, runtime=rt)
            ctx = make_context(bundle, rt_settings)
            assert bundle.runtime == rt, f"asked for {rt}, the bundle runs on {bundle.runtime}"
            time_file(photos[0], ctx, tmp / f"warm-{rt}-{r}")
            runs[rt]["video"].append(video_run(ctx, tmp / f"v-{rt}-{r}", every, video_frames))
            walls = [time_file(p, ctx, tmp / f"p-{rt}-{r}")[0] for p in photos]
            runs[rt]["photos_per_file"].append(len(photos) / sum(walls))
            runs[rt]["photos"].append(photo_scan_rate(archive, bundle_dir, rt_settings, tmp / f"scan-{rt}-{r}"))
    out: dict = {"rounds": rounds}
    for rt, rr in runs.items():
        out[rt] = {"video_fps": float(np.mean([v["fps"] for v in rr["video"]])),
                   "video_frames_per_cpu_s": float(np.mean([v["frames_per_cpu_s"] for v in rr["video"]])),
                   "video_cpu_ms_per_frame": {k: float(np.mean([v["cpu_ms_per_frame"][k] for v in rr["video"]]))
                                              for k in rr["video"][0]["cpu_ms_per_frame"]},
                   "video_frames": rr["video"][0]["frames"],
                   "photos_per_s": float(np.mean([p["per_s"] for p in rr["photos"]])),
                   "photos_whole_call_per_s": float(np.mean([p["whole_call_per_s"] for p in rr["photos"]])),
                   "photos_scanned": rr["photos"][0]["photos"],
                   "photos_per_cpu_s": float(np.mean([p["per_cpu_s"] for p in rr["photos"]])),
                   "photos_per_file_per_s": float(np.mean(rr["photos_per_file"])),
                   "verdicts": rr["photos"][0]["verdicts"]}
    out["ratio_onnx_over_torch"] = {k: out["onnx"][k] / out["torch"][k] for k in
                                    ("video_fps", "video_frames_per_cpu_s", "photos_per_s", "photos_per_cpu_s",
                                     "photos_per_file_per_s", "photos_whole_call_per_s")}
    out["same_photo_verdicts"] = out["onnx"]["verdicts"] == out["torch"]["verdicts"]
    out["photo_copies"] = copies
    return out


def evidence_cost(bundle, settings, photos: list[Path], out: Path, video_frames: int, repeats: int) -> dict:
    """Photos and the clip through `analyse_file` without and with the evidence sections, alternating file by file
    (off, on, off, on, ...) so that a change in the machine's load hits both alike. The without-evidence run is
    the scan as it was before the evidence step (the same code with `evidence=False`)."""
    from dataclasses import replace

    from forensics.scan.context import make_context

    ctxs = {mode: make_context(bundle, replace(settings, evidence=mode == "on")) for mode in ("off", "on")}
    for mode, ctx in ctxs.items():  # warm-up: imports, Grad-CAM hooks, first-call allocations
        time_file(photos[0], ctx, out / f"warm-{mode}")
    totals = {mode: {"photo_wall": 0.0, "photo_cpu": 0.0, "video_wall": 0.0, "video_cpu": 0.0, "frames": 0,
                     "evidence_cpu": 0.0} for mode in ctxs}
    for r in range(repeats):
        for i, p in enumerate(photos):
            for mode in (("off", "on") if (i + r) % 2 == 0 else ("on", "off")):
                wall, cpu, stages, _ = time_file(p, ctxs[mode], out / mode)
                totals[mode]["photo_wall"] += wall
                totals[mode]["photo_cpu"] += cpu
                totals[mode]["evidence_cpu"] += stages.get("evidence", 0.0)
        for mode in (("off", "on") if r % 2 == 0 else ("on", "off")):
            ctxs[mode].settings = replace(ctxs[mode].settings, max_frames=video_frames)
            wall, cpu, _, entry = time_file(CLIP, ctxs[mode], out / f"v-{mode}")
            totals[mode]["video_wall"] += wall
            totals[mode]["video_cpu"] += cpu
            totals[mode]["frames"] += entry["video"]["frames_analysed"]
            ctxs[mode].settings = replace(ctxs[mode].settings, max_frames=None)
    n = len(photos) * repeats
    rates = {mode: {"photos_per_s": n / t["photo_wall"], "photos_per_cpu_s": n / t["photo_cpu"],
                    "frames_per_s": t["frames"] / t["video_wall"], "frames_per_cpu_s": t["frames"] / t["video_cpu"],
                    "evidence_cpu_ms_per_photo": 1000 * t["evidence_cpu"] / n} for mode, t in totals.items()}
    ratios = {k: rates["on"][k] / rates["off"][k]
              for k in ("photos_per_s", "photos_per_cpu_s", "frames_per_s", "frames_per_cpu_s")}
    return {"photos": n, "video_frames": totals["on"]["frames"] // repeats, "repeats": repeats, "off": rates["off"],
            "on": rates["on"], "ratios": ratios, "target": EVIDENCE_RATIO_TARGET}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=None, help="model bundle (default: shipped, else a stand-in)")
    ap.add_argument("--every", type=int, default=10, help="detection every K frames (the scan's default)")
    ap.add_argument("--max-frames", type=int, default=None, help="cap the clip (default: all 472 frames)")
    ap.add_argument("--baseline-frames", type=int, default=120, help="frames for the every-frame baseline")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "scan_throughput.md")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "bench_scan")
    ap.add_argument("--ranks", type=int, default=2, help="processes for the sharded photo scan (torchrun); 1: skip")
    ap.add_argument("--evidence-repeats", type=int, default=2, help="rounds of the with/without-evidence comparison")
    ap.add_argument("--evidence-frames", type=int, default=240, help="clip frames per round of that comparison")
    ap.add_argument("--runtime-rounds", type=int, default=2, help="rounds of the torch / onnx comparison")
    ap.add_argument("--temporal-rounds", type=int, default=2, help="rounds of the with/without temporal comparison")
    ap.add_argument("--photo-copies", type=int, default=3, help="copies of the 8 photos scanned per runtime and round")
    args = ap.parse_args()

    import shutil

    import torch

    from forensics.bundle import bundle_sha256
    from forensics.runtime.export import export_bundle
    from forensics.scan.context import make_context
    from forensics.scan.pipeline import default_bundle_dir, load_scan_bundle, run_scan
    from forensics.scan.settings import ScanSettings

    load_start = os.getloadavg()
    if args.model is not None:
        source_dir, bundle_kind = args.model, "given"
    elif (default_bundle_dir() / "bundle.json").is_file():
        source_dir, bundle_kind = default_bundle_dir(), "shipped default"
    else:
        source_dir, bundle_kind = stand_in_bundle(args.work / "stand_in_bundle"), "stand-in (no bundle shipped yet)"
    source_sha = bundle_sha256(source_dir)
    args.work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        tmp = Path(tmp)
        bundle_dir = tmp / "bundle"  # the same models, exported: both runtimes in one run
        shutil.copytree(source_dir, bundle_dir, ignore=shutil.ignore_patterns("onnx"))
        t_export = time.perf_counter()
        export_record = export_bundle(bundle_dir)
        t_export = time.perf_counter() - t_export
        bundle = load_scan_bundle(bundle_dir)
        settings = ScanSettings(every=args.every)  # runtime auto: onnx (the copy has its export)
        ctx = make_context(bundle, settings)
        photos = one_megapixel_photos(tmp / "photos")
        time_file(photos[0], ctx, tmp / "warm")  # load MTCNN and the detectors, first-call allocations
        from dataclasses import replace

        ctx.settings = replace(settings, max_frames=12)
        time_file(CLIP, ctx, tmp / "warm")  # and the video path's imports (matplotlib for the timeline)
        video = video_run(ctx, tmp / "v", args.every, args.max_frames)
        baseline = video_run(ctx, tmp / "b", 1, args.baseline_frames)
        ctx.settings = settings
        photo_walls, photo_cpu, photo_stages = [], [], {}
        for p in photos:
            wall, cpu, stages, _ = time_file(p, ctx, tmp / "p")
            photo_walls.append(wall)
            photo_cpu.append(cpu)
            for k, v in stages.items():
                photo_stages[k] = photo_stages.get(k, 0.0) + v
        t = time.perf_counter()
        outcome = run_scan([str(tmp / "photos")], tmp / "scan", bundle_dir, settings, progress=False,
                           log=lambda m: None)
        e2e = time.perf_counter() - t
        assert outcome.analysed == len(photos)
        sizes = [tuple(int(v) for v in __import__("PIL.Image", fromlist=["Image"]).open(p).size) for p in photos]
        sharded = (sharded_photo_rate(tmp / "photos", bundle_dir, args.ranks, tmp / "sharded")
                   if args.ranks > 1 else None)
        evidence = evidence_cost(bundle, settings, photos, tmp / "evidence", args.evidence_frames,
                                 args.evidence_repeats)
        runtimes = runtime_comparison(bundle, bundle_dir, settings, photos, tmp / "runtimes", args.every,
                                      args.max_frames, args.runtime_rounds, args.photo_copies)
        ctx.settings = settings
        temporal = temporal_cost(ctx, tmp / "temporal", args.temporal_rounds)
    load_end = os.getloadavg()
    photos_per_s = len(photos) / sum(photo_walls)
    result = {
        "cpu": cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "load_average_start": [round(x, 2) for x in load_start], "load_average_end": [round(x, 2) for x in load_end],
        "bundle": {"path": str(source_dir), "kind": bundle_kind, "detectors": sorted(bundle.detectors),
                   "face_size": bundle.face_size, "sha256": source_sha,
                   "onnx_export": {"seconds": round(t_export, 1), "models": sorted(export_record["models"]),
                                   "not_exported": export_record["not_exported"],
                                   "max_abs_diff": {n: r["max_abs_diff"] for n, r in export_record["models"].items()}}},
        "default_runtime": "onnx", "runtimes": runtimes,
        "settings": settings.to_dict(), "video": video, "baseline_every_frame": baseline,
        "video_speedup_vs_baseline": video["fps"] / baseline["fps"],
        "photos": {"n": len(photos), "sizes": sizes, "per_s": photos_per_s,
                   "per_cpu_s": len(photos) / sum(photo_cpu),
                   "cpu_ms_per_photo": {k: 1000 * v / len(photos) for k, v in sorted(photo_stages.items())},
                   "end_to_end_per_s": len(photos) / e2e, "end_to_end_s": e2e, "sharded": sharded},
        "evidence_cost": evidence, "temporal_cost": temporal,
        "targets": {"video_fps": VIDEO_TARGET_FPS, "photos_per_s": PHOTO_TARGET,
                    "video_fps_onnx": VIDEO_TARGET_FPS_ONNX},
    }
    write_report(result, args.out)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"video 640x360, detection every {args.every}: {video['fps']:.1f} frames/s wall, "
          f"{video['frames_per_cpu_s']:.1f} per CPU-second "
          f"(target {VIDEO_TARGET_FPS:.0f}: {'met' if video['fps'] >= VIDEO_TARGET_FPS else 'not met'}); "
          f"MTCNN on every frame: {baseline['fps']:.1f} frames/s; x{result['video_speedup_vs_baseline']:.1f}")
    sharded = result["photos"]["sharded"]
    best = max(photos_per_s, sharded["per_s"] if sharded else 0.0)
    print(f"1-MP photos: {photos_per_s:.2f}/s per-file analysis ({result['photos']['per_cpu_s']:.2f} per CPU-second), "
          f"{len(photos) / e2e:.2f}/s end to end"
          + (f", {sharded['per_s']:.2f}/s with {sharded['ranks']} torchrun processes" if sharded else "")
          + f" (target {PHOTO_TARGET:.0f}: {'met' if best >= PHOTO_TARGET else 'not met'})")
    ev = result["evidence_cost"]
    print("with evidence / without (same run, alternating): photos/s x{photos_per_s:.2f} (CPU x{photos_per_cpu_s:.2f}), "
          "video frames/s x{frames_per_s:.2f} (CPU x{frames_per_cpu_s:.2f})".format(**ev["ratios"])
          + f"; target >= {EVIDENCE_RATIO_TARGET:.2f}")
    rt, ratio = result["runtimes"], result["runtimes"]["ratio_onnx_over_torch"]
    t_rt, o_rt = rt["torch"], rt["onnx"]
    video_met = "met" if o_rt["video_fps"] >= VIDEO_TARGET_FPS_ONNX else "not met"
    photos_met = "met" if o_rt["photos_per_s"] >= PHOTO_TARGET else "not met"
    print(f"runtimes, same run, evidence on: video {t_rt['video_fps']:.1f} (torch) vs {o_rt['video_fps']:.1f} (onnx) "
          f"frames/s, x{ratio['video_fps']:.2f} (target {VIDEO_TARGET_FPS_ONNX:.0f}: {video_met}); 1-MP photos through "
          f"the scan's loop {t_rt['photos_per_s']:.2f} vs {o_rt['photos_per_s']:.2f}/s, x{ratio['photos_per_s']:.2f} "
          f"(target {PHOTO_TARGET:.0f}: {photos_met}); same verdicts: {rt['same_photo_verdicts']}")
    if temporal is not None:
        print(f"temporal, same run: {temporal['off']['frames_per_s']:.1f} frames/s without, "
              f"{temporal['on']['frames_per_s']:.1f} with (x{temporal['ratio_fps']:.2f}; target "
              f"{VIDEO_TARGET_FPS:.0f}: {'met' if temporal['on']['frames_per_s'] >= VIDEO_TARGET_FPS else 'not met'})")
    print(f"bundle {source_dir} sha256 {source_sha}")
    print(f"load average {load_start} -> {load_end}; wrote {args.out}")


def temporal_cost(ctx, out: Path, repeats: int) -> dict | None:
    """The whole clip with and without the bundle's video model (flicker segments, temporal and fused scores),
    alternating runs; None when the bundle has no video model."""
    model = ctx.bundle.video_model
    if model is None:
        return None
    totals = {mode: {"wall": 0.0, "cpu": 0.0, "frames": 0, "temporal_cpu": 0.0} for mode in ("off", "on")}
    try:
        for r in range(repeats):
            for mode in (("off", "on") if r % 2 == 0 else ("on", "off")):
                ctx.bundle.video_model = model if mode == "on" else None
                wall, cpu, stages, entry = time_file(CLIP, ctx, out / mode)
                t = totals[mode]
                t["wall"] += wall
                t["cpu"] += cpu
                t["frames"] += entry["video"]["frames_analysed"]
                t["temporal_cpu"] += stages.get("temporal", 0.0)
                if mode == "on":
                    t["available"] = all(u["temporal"]["available"] for u in entry["faces"])
    finally:
        ctx.bundle.video_model = model
    rates = {mode: {"frames_per_s": t["frames"] / t["wall"], "frames_per_cpu_s": t["frames"] / t["cpu"],
                    "temporal_cpu_ms_per_frame": 1000 * t["temporal_cpu"] / t["frames"]} for mode, t in totals.items()}
    return {"repeats": repeats, "frames": totals["on"]["frames"] // repeats, "off": rates["off"], "on": rates["on"],
            "scored_every_track": bool(totals["on"].get("available")),
            "ratio_fps": rates["on"]["frames_per_s"] / rates["off"]["frames_per_s"], "target_fps": VIDEO_TARGET_FPS}


def temporal_lines(t: dict | None) -> list[str]:
    if t is None:
        return ["## Temporal flicker", "", "The bundle carries no video model: no temporal step to time.", ""]
    met = "met" if t["on"]["frames_per_s"] >= t["target_fps"] else "not met"
    return [
        "## Temporal flicker (the bundle's video model)",
        "",
        f"The whole clip ({t['frames']} frames, detection every 10) with and without the video model, alternating, "
        f"{t['repeats']} rounds (the scan's default runtime, evidence on). Every track got a temporal score: "
        f"{t['scored_every_track']}.",
        "",
        "| measure | without temporal | with temporal | ratio |",
        "|---|---|---|---|",
        f"| frames/s (wall) | {t['off']['frames_per_s']:.1f} | **{t['on']['frames_per_s']:.1f}** | {t['ratio_fps']:.2f} |",
        f"| frames per CPU-second | {t['off']['frames_per_cpu_s']:.1f} | {t['on']['frames_per_cpu_s']:.1f} | "
        f"{t['on']['frames_per_cpu_s'] / t['off']['frames_per_cpu_s']:.2f} |",
        f"| temporal stage, CPU ms per frame | {t['off']['temporal_cpu_ms_per_frame']:.2f} | "
        f"{t['on']['temporal_cpu_ms_per_frame']:.2f} | |",
        "",
        f"Target (issue #19): >= {t['target_fps']:.0f} analysed frames/s with temporal: **{met}**.",
        "",
    ]


def write_report(r: dict, path: Path) -> None:
    v, b, p = r["video"], r["baseline_every_frame"], r["photos"]
    vt, pt = r["targets"]["video_fps"], r["targets"]["photos_per_s"]
    lines = [
        "# Scan throughput",
        "",
        f"`python benchmarks/bench_scan.py` on {r['cpu']} ({r['cores']} cores, torch threads {r['torch_threads']}). "
        f"Load average (1/5/15 min): {r['load_average_start']} at the start, {r['load_average_end']} at the end. "
        "The machine is shared: with a load above its core count, other jobs hold most of the CPU and the wall-clock "
        "rates below are lower than an idle machine gives. The CPU-time columns (`time.thread_time` per stage, "
        "`time.process_time` per file) do not count the time spent waiting for the CPU.",
        "",
        f"Model bundle: {r['bundle']['kind']} (`{r['bundle']['path']}`, sha256 `{r['bundle']['sha256']}`, without "
        "its ONNX export); detectors "
        f"{', '.join(r['bundle']['detectors'])}; faces aligned at {r['bundle']['face_size']} px. The benchmark scans "
        "with a copy of it exported to ONNX in the work folder (`forensics detect export --onnx`, "
        f"{r['bundle']['onnx_export']['seconds']} s): the sections below run on the scan's default runtime, which "
        "is then ONNX Runtime; the runtime section runs both. Every per-file figure goes through `analyse_file`, "
        "the scan's per-file step (hash before and after, decode, detection, tracking, alignment, scoring, "
        "verdicts, pictures).",
        "",
    ]
    lines += runtime_lines(r)
    lines += [
        "## Video: 640x360 clip (`WolfgangLanger_Pexels.mp4`)",
        "",
        "| setting | frames | frames/s (wall) | frames per CPU-second | CPU ms/frame: decode | detect | track | align | "
        "score | temporal | other |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, run in ((f"detection every {v['every']} frames (scan default)", v), ("baseline: MTCNN on every frame", b)):
        st = run["cpu_ms_per_frame"]
        lines.append(f"| {name} | {run['frames']} | **{run['fps']:.1f}** | {run['frames_per_cpu_s']:.1f} | " + " | ".join(
            f"{st[s]:.2f}" for s in (*STAGES, "other")) + " |")
    lines += [
        "",
        f"`other`: hashing, verdicts, crops, the thumbnail and the timeline plot. Decode, detection, tracking and "
        "alignment run in a second thread, one chunk of frames ahead of scoring (`forensics.scan.prefetch`), so with "
        "two free cores the wall-clock rate approaches the larger of the two threads' CPU costs rather than their sum. "
        f"Detection every {v['every']} frames: **{r['video_speedup_vs_baseline']:.1f}x** the every-frame baseline in "
        f"wall-clock rate ({v['fps']:.1f} vs {b['fps']:.1f} frames/s), "
        f"{v['frames_per_cpu_s'] / b['frames_per_cpu_s']:.1f}x in frames per CPU-second. Target {vt:.0f} frames/s "
        f"(wall clock): **{'met' if v['fps'] >= vt else 'not met'}** in this run. {v['tracks']} track(s), "
        f"{v['faces']} scored faces.",
        "",
        "## Photos: one megapixel",
        "",
        f"{p['n']} starter stills upscaled to about 1 MP ({', '.join(f'{w}x{h}' for w, h in p['sizes'])}), JPEG 90.",
        "",
        "| measure | photos/s |",
        "|---|---|",
        f"| per-file analysis (`analyse_file`), wall clock | **{p['per_s']:.2f}** |",
        f"| per-file analysis, photos per CPU-second | {p['per_cpu_s']:.2f} |",
        "| whole scan (`run_scan`: + journal, scan.json, summary.csv, report.html), wall clock | "
        f"{p['end_to_end_per_s']:.2f} |",
    ]
    if p.get("sharded"):
        lines.append(f"| `forensics scan` under torchrun, {p['sharded']['ranks']} processes (first file started to last "
                     f"finished), wall clock | {p['sharded']['per_s']:.2f} |")
    best = max(p["per_s"], (p.get("sharded") or {}).get("per_s", 0.0))
    lines += [
        "",
        "CPU milliseconds per photo by stage: " + ", ".join(f"{k} {ms:.1f}" for k, ms in p["cpu_ms_per_photo"].items())
        + f". Target {pt:.0f} photos/s (wall clock, best of the rows measured in this run: {best:.2f}): "
        f"**{'met' if best >= pt else 'not met'}**.",
        "",
    ]
    lines += evidence_lines(r["evidence_cost"])
    lines += temporal_lines(r.get("temporal_cost"))
    lines += [
        "Raw figures: `reports/scan_throughput.json`.",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def runtime_lines(r: dict) -> list[str]:
    rt, ratio = r["runtimes"], r["runtimes"]["ratio_onnx_over_torch"]
    t, o = rt["torch"], rt["onnx"]
    vt, pt = r["targets"]["video_fps_onnx"], r["targets"]["photos_per_s"]
    exp = r["bundle"]["onnx_export"]
    diffs = "; ".join(f"{n}: " + ", ".join(f"{k} {v:.1g}" for k, v in sorted(d.items()))
                      for n, d in sorted(exp["max_abs_diff"].items()))

    def row(name: str, key: str, digits: int, target: float | None = None) -> str:
        met = "" if target is None else (" (met)" if o[key] >= target else " (not met)")
        return f"| {name} | {t[key]:.{digits}f} | **{o[key]:.{digits}f}**{met} | x{ratio[key]:.2f} |"

    return [
        "## Runtimes: torch vs ONNX Runtime (same run)",
        "",
        f"The same files, evidence on, {rt['rounds']} rounds alternating torch / onnx (`forensics scan --runtime`). "
        f"Exported: {', '.join(exp['models'])}"
        + (f"; kept on their own runtime: {exp['not_exported']}" if exp["not_exported"] else "")
        + f". Largest difference from torch / numpy on the export's probe crops: {diffs}.",
        "",
        "| measure | torch | onnx | onnx / torch |",
        "|---|---|---|---|",
        row(f"video frames/s (wall), 640x360, detection every {r['video']['every']}", "video_fps", 1, vt),
        row("video frames per CPU-second", "video_frames_per_cpu_s", 1),
        row(f"1-MP photos/s, the scan's loop (`run_scan` on {t['photos_scanned']} photos: read-ahead, hashes, "
            "evidence, pictures, journal; first file started to last finished), wall", "photos_per_s", 2, pt),
        row("1-MP photos/s, the whole `run_scan` call (+ loading the bundle, scan.json, report.html), wall",
            "photos_whole_call_per_s", 2),
        row("1-MP photos per CPU-second (the whole call)", "photos_per_cpu_s", 2),
        row("1-MP photos/s, one file at a time (`analyse_file`, no read-ahead), wall", "photos_per_file_per_s", 2),
        "",
        "CPU ms per video frame by stage, torch / onnx: " + ", ".join(
            f"{k} {t['video_cpu_ms_per_frame'][k]:.2f} / {o['video_cpu_ms_per_frame'][k]:.2f}"
            for k in t["video_cpu_ms_per_frame"]) + ".",
        f"Photo verdicts equal on both runtimes: **{rt['same_photo_verdicts']}**. Targets (issue #21, onnx, "
        f"evidence on): {vt:.0f} frames/s, {pt:.0f} photos/s.",
        "",
    ]


def evidence_lines(e: dict) -> list[str]:
    off, on, ratio, target = e["off"], e["on"], e["ratios"], e["target"]

    def row(name: str, key: str, digits: int) -> str:
        verdict = "met" if ratio[key] >= target else "not met"
        return (f"| {name} | {off[key]:.{digits}f} | {on[key]:.{digits}f} | **{ratio[key]:.2f}** | {verdict} |")

    return [
        "## The cost of the evidence sections",
        "",
        f"The same files without and with the evidence sections (metadata, JPEG history, C2PA, Grad-CAM, noise, "
        f"spectrum and mask maps, the agreement table), alternating file by file, {e['repeats']} rounds: "
        f"{e['photos']} photos and {e['video_frames']} clip frames per mode per round. Without evidence is the scan "
        "as it was before the evidence step. The file sections run in a worker thread while the faces are scored, "
        "so with a free second core the wall-clock cost is below the CPU cost.",
        "",
        f"| measure | without evidence | with evidence | ratio | >= {target:.2f} |",
        "|---|---|---|---|---|",
        row("1-MP photos/s (wall)", "photos_per_s", 2),
        row("photos per CPU-second", "photos_per_cpu_s", 2),
        row("video frames/s (wall)", "frames_per_s", 1),
        row("video frames per CPU-second", "frames_per_cpu_s", 1),
        "",
        f"Evidence stage on the scan's own thread: {on['evidence_cpu_ms_per_photo']:.1f} CPU ms per photo (Grad-CAM, "
        "mask, noise, spectrum and their pictures; the file sections' CPU is in the process's total). A video pays "
        "for the face maps once per track, a photo once per face: that is why videos keep their rate and photos do "
        "not.",
        "",
    ]


if __name__ == "__main__":
    main()
