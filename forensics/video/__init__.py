"""Video forensics: clips, face tracks, temporal track features, frame-score aggregation and video-level fusion.

- `clips`: cut a video into short clips (bounded work per video), decode each once;
- `tracks`: MTCNN on every k-th frame of decoded frames, interpolated and linked into face tracks;
- `features`: per-track temporal features that need no source video (flicker, warping error under the
  video's own optical flow, high-frequency variation, landmark jitter, image-score spread);
- `aggregate`: per-frame P(fake) -> one score (mean, max, top-k mean, DFDC-style confident mean);
- `fusion`: the stacked logistic regression over a clip's base scores;
- `codec`: H.264 re-encoding (PyAV) for the robustness sweep;
- `segments`: face tracks cut into fixed-length segments on a stream of frames, with their features (the scan);
- `model`: the video model a bundle carries (temporal detector, fusion with the frame mean, video band);
- `release`: training that model the scan's way on the clip dataset, leave one source video out;
- `report`: its figures.

The temporal detector itself is `forensics.detectors.temporal` ("temporal" in the registry). Only
`release.build_clip_dataset` imports the generator zoo, inside the function; the scan never imports it.
"""
