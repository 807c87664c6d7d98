"""Shared helpers for the scan tests (no tests here): a toy model bundle at the scan's face size, and a folder
of good, bad and faceless media made from the starter corpus."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
STARTER = REPO / "forensics" / "assets" / "starter"


def build_toy_bundle(out: Path, size: int = 128, detectors: tuple[str, ...] = ("spectral", "dct")) -> Path:
    """A real bundle (trained detectors, fitted calibration) on toy textures: real vs nearest-upsampled."""
    from forensics.bundle.build import build_bundle_from_arrays
    from forensics.detectors import toydata

    rng = np.random.default_rng(0)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        images = np.concatenate([toydata.real_images(rng, n, size), toydata.fake_images(rng, n, size, "nearest")])
        return images, np.array([0] * n + [1] * n)

    train, val = split(24), split(16)
    return build_bundle_from_arrays(out, train, (*val, [f"v{i}" for i in range(len(val[1]))]),
                                    {d: {} for d in detectors}, perturbations=("jpeg30",),
                                    face={"size": size, "margin": 0.25}, log=lambda m: None)


def make_media_folder(root: Path) -> dict[str, Path]:
    """Good, bad and faceless files, by role. Videos are cut to a few frames to keep tests fast."""
    import cv2

    from forensics.data.media import iter_frames, read_image, write_video

    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    files["portrait"] = root / "portrait.jpg"
    shutil.copy(STARTER / "0-f1-su-ph.jpg", files["portrait"])
    files["odd_name"] = root / "témoin 2 (copie).JPG"  # spaces, non-ASCII, upper-case extension
    shutil.copy(STARTER / "15-f13-anc-ph.jpg", files["odd_name"])
    png = read_image(STARTER / "grace_hopper.jpg")
    files["png_named_jpg"] = root / "hopper_really_png.jpg"  # content PNG, extension .jpg: noted, still read
    ok, buf = cv2.imencode(".png", cv2.cvtColor(png, cv2.COLOR_RGB2BGR))
    files["png_named_jpg"].write_bytes(buf.tobytes())
    from PIL import Image

    files["gif"] = root / "portrait_anim.gif"  # GIF: the first frame is scanned
    Image.open(STARTER / "45-m7-di-ph.jpg").convert("RGB").save(files["gif"])
    sky = np.zeros((120, 160, 3), np.uint8)
    sky[:] = (90, 140, 220)
    files["faceless"] = root / "sky.png"
    ok, buf = cv2.imencode(".png", sky)
    files["faceless"].write_bytes(buf.tobytes())
    files["empty"] = root / "empty.jpg"
    files["empty"].write_bytes(b"")
    data = (STARTER / "single_face.jpg").read_bytes()
    files["truncated"] = root / "truncated.jpg"
    files["truncated"].write_bytes(data[: len(data) // 3])
    files["text_as_jpg"] = root / "notes.jpg"
    files["text_as_jpg"].write_text("this is not a picture\n")
    files["readme"] = root / "sub" / "README.txt"  # not media, inside a folder: skipped, not failed
    files["readme"].parent.mkdir()
    files["readme"].write_text("case notes\n")
    frames = [f for _, f in iter_frames(STARTER / "single_face.mp4", max_frames=12)]
    files["video"] = root / "sub" / "clip.mp4"
    write_video(files["video"], frames, fps=25.0)
    return files


def run_cli(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    env = {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "forensics", "scan", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
