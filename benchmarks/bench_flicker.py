"""Face-swap creation report: swapped frames (grid), fake videos next to their source (strip), flicker figures.

    .venv/bin/python benchmarks/bench_flicker.py --ckpt generators/checkpoints/faceswap_small \
        --data data/starter/manifest.parquet --work runs/faceswap_report --out reports/faceswap

Writes reports/faceswap/{swap_grid.png, strip_<video>.png, flicker.json, flicker.md}; the fake datasets
(videos, crops, masks, manifest) go to --work (not committed). Flicker is measured on the decoded MP4s, real
re-encode and fakes alike, in the face ellipse of the *source's* MTCNN boxes, with the source's optical flow.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from forensics.data.manifest import dataset_root, read_manifest
from forensics.data.media import iter_frames, write_image
from forensics.temporal import background_mask, ellipse_mask, flicker_vs_source
from generators.checkpoint import load_generator
from generators.faceswap_video import (
    FaceSwapper,
    _other,
    main_face,
    synthesize_faceswap_video,
    variant,
    video_tracks,
)
from generators.merge import MergeOptions


def _label(img: np.ndarray, text: str) -> np.ndarray:
    img = img.copy()
    cv2.putText(img, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
    return img


def _zoom_box(boxes: list[np.ndarray], shape: tuple[int, int], grow: float = 1.8) -> tuple[int, int, int, int]:
    """One fixed square around the median face box (so motion and flicker stay visible)."""
    b = np.median(np.stack(boxes), axis=0)
    cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    half = max(b[2] - b[0], b[3] - b[1]) * grow / 2
    h, w = shape
    x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
    x1, y1 = int(min(w, cx + half)), int(min(h, cy + half))
    return x0, y0, x1, y1


def _fit(img: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_CUBIC)


def swap_grid(ckpt: Path, data: Path, out: Path, per_identity: int = 4, seed: int = 0) -> dict:
    """Rows: source frame | swapped frame | mask | source face | swapped face, for frames of each identity."""
    ck = load_generator(ckpt)
    real = read_manifest(data)
    root = dataset_root(data)
    videos = real[real["media"] == "video"].set_index("video_id")["path"].to_dict()
    rows, outside_changed = [], 0
    for k, ident in enumerate(ck.config.identities):
        swapper = FaceSwapper(ck.model, _other(ck.config, ident), MergeOptions())
        pool = real[(real["identity"] == ident) & (real["media"] == "frame") & real["video_id"].isin(videos)]
        pool = pool.sort_values("sample_id", kind="stable")
        picks = pool.iloc[np.sort(np.random.default_rng(seed + k).choice(len(pool), per_identity, replace=False))]
        for vid, group in picks.groupby("video_id"):
            wanted = {int(r["frame_idx"]): r for r in group.to_dict("records")}
            for idx, frame in iter_frames(root / videos[vid], max_frames=max(wanted) + 1):
                if idx not in wanted:
                    continue
                post = json.loads(wanted[idx]["postproc"])
                res = swapper.swap_frame(frame, np.asarray(post["landmarks"]))
                fake, mask = res.merged.frame, res.merged.mask
                outside_changed += int((fake[mask == 0] != frame[mask == 0]).any())
                scale = 240 / frame.shape[0]
                small = lambda im: cv2.resize(im, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)  # noqa: E731
                lm = np.asarray(post["landmarks"])
                box = np.array([lm[:, 0].min(), lm[:, 1].min(), lm[:, 0].max(), lm[:, 1].max()])
                x0, y0, x1, y1 = _zoom_box([box + np.array([-0.6, -0.8, 0.6, 0.6]) * (box[2] - box[0])],
                                            frame.shape[:2], grow=1.2)
                tiles = [_label(small(frame), f"source {ident} f{idx}"), _label(small(fake), f"swapped -> {swapper.target}"),
                         _label(small(np.repeat(mask[:, :, None], 3, 2)), "mask (label)"),
                         _label(_fit(frame[y0:y1, x0:x1], 240), "source face"),
                         _label(_fit(fake[y0:y1, x0:x1], 240), "swapped face")]
                rows.append(np.concatenate(tiles, axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0))) for r in rows]
    write_image(out / "swap_grid.png", np.concatenate(rows, axis=0))
    return {"frames": len(rows), "frames_with_pixels_changed_outside_mask": outside_changed}


def _read(path: Path) -> list[np.ndarray]:
    return [f for _, f in iter_frames(path)]


def video_report(ckpt: Path, data: Path, work: Path, out: Path, video_id: str, variants: list[str],
                 max_frames: int | None) -> dict:
    t0 = time.perf_counter()
    real = read_manifest(data)
    vrow = real[(real["media"] == "video") & (real["video_id"] == video_id)].iloc[0]
    src_path = dataset_root(data) / vrow["path"]
    tracks = video_tracks(src_path, 1, max_frames)
    fakes = {}
    for name in variants:
        df = synthesize_faceswap_video(ckpt, data, work, video_id, variant(name, max_frames), tracks=tracks)
        row = df[(df["media"] == "video") & (df["label"] == 1) & df["video_id"].str.startswith(f"{video_id}__faceswap_{name}_")]
        fakes[name] = work / row.iloc[0]["path"]
    source = _read(work / "real" / "videos" / f"{video_id}.mp4")
    idx_with_face = [i for i in range(len(source)) if main_face(tracks.get(i, [])) is not None]
    shape = source[0].shape[:2]
    boxes = {i: main_face(tracks[i]).box for i in idx_with_face}
    # Longest run of consecutive frames with a face: flicker is measured between neighbours only.
    runs, cur = [], []
    for i in range(len(source)):
        if i in boxes:
            cur.append(i)
        else:
            runs, cur = runs + [cur], []
    runs.append(cur)
    run = max(runs, key=len)
    face_masks = [ellipse_mask(shape, boxes[i], 0.85) for i in run]
    bg_masks = [background_mask(shape, boxes[i]) for i in run]
    src_run = [source[i] for i in run]
    figures: dict[str, dict] = {}
    strip_rows = []
    x0, y0, x1, y1 = _zoom_box([boxes[i] for i in run], shape)
    picks = [run[int(p)] for p in np.linspace(0, len(run) - 1, 6)]
    strip_rows.append(np.concatenate([_label(_fit(source[i][y0:y1, x0:x1], 160), f"source f{i}") for i in picks], 1))
    for name, path in fakes.items():
        fake = _read(path)
        fk, src = flicker_vs_source([fake[i] for i in run], src_run, face_masks, bg_masks)
        figures["source"] = src.to_dict()
        figures[name] = fk.to_dict()
        strip_rows.append(np.concatenate([_label(_fit(fake[i][y0:y1, x0:x1], 160), f"{name} f{i}") for i in picks], 1))
    # a second strip row per fake: |frame t+1 - frame t| in the zoomed face, to show flicker as an image
    for name, path in [("source", work / "real" / "videos" / f"{video_id}.mp4"), *fakes.items()]:
        fr = _read(path)
        diffs = [np.abs(fr[i + 1].astype(np.int16) - fr[i].astype(np.int16)).astype(np.uint8)[y0:y1, x0:x1] * 4
                 for i in picks if i + 1 < len(fr)]
        strip_rows.append(np.concatenate([_label(_fit(d, 160), f"|diff| x4 {name}") for d in diffs]
                                         + [np.zeros((160, 160, 3), np.uint8)] * (6 - len(diffs)), 1))
    write_image(out / f"strip_{video_id}.png", np.concatenate(strip_rows, 0))
    return {"video_id": video_id, "identity": vrow["identity"], "frames_measured": len(run),
            "frames_with_face": len(idx_with_face), "frames": len(source), "fakes": {k: str(v) for k, v in fakes.items()},
            "figures": figures, "wall_s": round(time.perf_counter() - t0, 1)}


def _face_features(windows: np.ndarray, marks: np.ndarray) -> np.ndarray:
    """Inner-face structure only: gray, outside the landmark face hull zeroed, 32x32, standardised per image."""
    from generators.merge import face_region_mask

    feats = []
    for w, m in zip(windows, marks):
        g = cv2.cvtColor(w, cv2.COLOR_RGB2GRAY).astype(np.float32) * face_region_mask(m, w.shape[0])
        g = cv2.resize(g, (32, 32), interpolation=cv2.INTER_AREA).ravel()
        feats.append((g - g.mean()) / (g.std() + 1e-6))
    return np.stack(feats)


def swap_quality(ckpt: Path, data: Path) -> dict:
    """Reconstruction of each identity by its own decoder, and an identity-transfer rate: a logistic regression
    trained to tell the two people apart from inner-face structure (real train-split crops; colour removed by
    per-image standardisation, since creation transfers colour) labels merged swaps as the target how often?"""
    import dataclasses

    import torch
    from sklearn.linear_model import LogisticRegression

    from generators.faceswap import load_identity, ssim
    from generators.merge import merge_face

    ck = load_generator(ckpt)
    cfg = ck.config
    out: dict = {"reconstruction": {}, "identity_transfer": {}}
    sets = {}
    for split_set, name in ((("train",), "train"), (("val", "test"), "heldout")):
        for k, ident in enumerate(cfg.identities):
            sets[(name, k)] = load_identity(data, dataclasses.replace(cfg, splits=split_set), ident)[:2]
    for k, ident in enumerate(cfg.identities):
        imgs = np.concatenate([sets[("train", k)][0], sets[("heldout", k)][0]])
        x = torch.from_numpy(imgs.transpose(0, 3, 1, 2)).float() / 255.0
        with torch.no_grad():
            rec, _ = ck.model(x, k)
        out["reconstruction"][ident] = {"n": len(imgs), "l1": round(float((rec - x).abs().mean()), 4),
                                        "ssim": round(float(ssim(rec, x)), 4)}
    xtr = np.concatenate([_face_features(*sets[("train", k)]) for k in (0, 1)])
    ytr = np.concatenate([np.full(len(sets[("train", k)][0]), k) for k in (0, 1)])
    clf = LogisticRegression(C=0.05, max_iter=3000).fit(xtr, ytr)
    for k, ident in enumerate(cfg.identities):
        windows, marks = sets[("heldout", k)]
        if len(windows) == 0:
            continue
        swapper = FaceSwapper(ck.model, _other(cfg, ident), MergeOptions())
        merged, raw = [], []
        eye = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        for w, m in zip(windows, marks):
            swapped, _ = swapper.decode(w)
            raw.append(swapped)
            merged.append(merge_face(w, w, swapped, eye, m, MergeOptions()).frame)
        real_acc = float((clf.predict(_face_features(windows, marks)) == k).mean())
        to_target = float((clf.predict(_face_features(np.stack(merged), marks)) == 1 - k).mean())
        out["identity_transfer"][f"{ident}->{swapper.target}"] = {
            "n_heldout": len(windows), "real_classified_as_self": round(real_acc, 3),
            "swaps_classified_as_target": round(to_target, 3),
            "decoder_output_classified_as_target": round(
                float((clf.predict(_face_features(np.stack(raw), marks)) == 1 - k).mean()), 3)}
    return out


def write_markdown(report: dict, path: Path) -> None:
    lines = ["# Face-swap flicker", "",
             f"Checkpoint `{report['checkpoint']}` (sha256 {report['checkpoint_sha256'][:12]}, "
             f"{report['train_steps']} steps). Measured on the decoded MP4s (real re-encode and fakes written by the "
             "same writer, codec mp4v), inside the face ellipse of the source's MTCNN boxes; warping error uses the "
             "source's Farneback flow. Command: `" + report["command"] + "`", "",
             "| video | variant | face energy | bg energy | face/bg | face energy / source | change per texture | "
             "(/ source) | warp error | warp error / source | HF variation |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for v in report["videos"]:
        for name, f in v["figures"].items():
            lines.append(f"| {v['video_id']} ({v['frames_measured']} fr) | {name} | {f['face_energy']:.2f} | "
                         f"{f['background_energy']:.2f} | {f['face_bg_ratio']:.2f} | {f['face_energy_vs_source']:.2f} | "
                         f"{f['change_per_texture']:.3f} | {f['change_per_texture_vs_source']:.2f} | "
                         f"{f['warp_error']:.2f} | {f['warp_error_vs_source']:.2f} | {f['hf_variation']:.3f} |")
    lines += ["", "Reading: *warp error / source* isolates the flicker the swap adds (the source's own motion is "
              "compensated by its flow); *change per texture* needs no source and discounts the 64 px decoder's "
              "blur, which makes raw face energy of a fake *lower* than the sharp source's."]
    lines += ["", "Variants: " + "; ".join(f"**{k}**: {json.dumps(v)}" for k, v in report["variants"].items()), ""]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", type=Path, default=Path("generators/checkpoints/faceswap_small"))
    ap.add_argument("--data", type=Path, default=Path("data/starter/manifest.parquet"))
    ap.add_argument("--work", type=Path, default=Path("runs/faceswap_report"))
    ap.add_argument("--out", type=Path, default=Path("reports/faceswap"))
    ap.add_argument("--videos", default="single_face,WolfgangLanger_Pexels")
    ap.add_argument("--variants", default="naive,jittered,smoothed")
    ap.add_argument("--max-frames", type=int, default=120)
    ap.add_argument("--quality-only", action="store_true", help="only reconstruction / identity-transfer figures")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.quality_only:
        q = swap_quality(args.ckpt, args.data)
        (args.out / "quality.json").write_text(json.dumps(q, indent=2, sort_keys=True) + "\n")
        print(json.dumps(q, indent=1))
        return
    ck = load_generator(args.ckpt)
    grid = swap_grid(args.ckpt, args.data, args.out)
    print("grid:", grid)
    variants = args.variants.split(",")
    videos = [video_report(args.ckpt, args.data, args.work, args.out, v, variants, args.max_frames)
              for v in args.videos.split(",")]
    report = {"checkpoint": args.ckpt.as_posix(), "checkpoint_sha256": ck.sha256, "train_steps": ck.train_steps,
              "command": "python benchmarks/bench_flicker.py " + " ".join(
                  f"--{k.replace('_', '-')} {v.as_posix() if isinstance(v, Path) else v}" for k, v in vars(args).items()),
              "grid": grid, "variants": {v: variant(v, args.max_frames).to_dict() for v in variants}, "videos": videos}
    (args.out / "flicker.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    write_markdown(report, args.out / "flicker.md")
    for v in videos:
        for name, f in v["figures"].items():
            print(f"{v['video_id']:24s} {name:9s} face/bg {f['face_bg_ratio']:.2f}  face_vs_src "
                  f"{f['face_energy_vs_source']:.2f}  change/texture {f['change_per_texture']:.3f} "
                  f"(vs src {f['change_per_texture_vs_source']:.2f})  warp {f['warp_error']:.2f} "
                  f"(vs src {f['warp_error_vs_source']:.2f})")


if __name__ == "__main__":
    main()
