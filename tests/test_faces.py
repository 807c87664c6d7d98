"""MTCNN (real weights from the facenet-pytorch wheel) on the starter media; alignment, paste-back, tracking."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from forensics.data.faces import (
    Face,
    FaceDetector,
    align_face,
    interpolate_tracks,
    paste_back,
    similarity_transform,
    template_points,
    track_video,
)
from forensics.data.media import read_image
from forensics.data.starter import ASSETS, load_sources

STILLS = [s for s in load_sources() if s.kind == "image"]


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.mark.parametrize("source", STILLS, ids=[s.file for s in STILLS])
def test_mtcnn_finds_the_face_in_each_starter_portrait(detector: FaceDetector, source) -> None:
    faces = detector.detect([read_image(ASSETS / source.file)])[0]
    expected = 5 if source.file == "multi_face.jpg" else 1
    assert len(faces) >= expected
    assert all(f.score >= 0.9 and f.landmarks.shape == (5, 2) for f in faces)
    left_eye, right_eye = faces[0].landmarks[0], faces[0].landmarks[1]
    assert left_eye[0] < right_eye[0]  # landmark order: the image-left eye first


def test_no_face_in_a_blank_image(detector: FaceDetector) -> None:
    assert detector.detect([np.full((200, 200, 3), 127, np.uint8)]) == [[]]


def test_images_too_small_for_any_face_give_none_instead_of_an_error(detector: FaceDetector) -> None:
    """MTCNN raises on an image smaller than its smallest face (its pyramid is empty); 3x2 photos exist."""
    tiny = [np.zeros((2, 3, 3), np.uint8), np.zeros((12, 12, 3), np.uint8), np.zeros((19, 400, 3), np.uint8)]
    assert detector.detect(tiny) == [[], [], []]


def test_similarity_transform_recovers_a_known_transform(rng: np.random.Generator) -> None:
    src = rng.uniform(0, 100, size=(5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -4.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = similarity_transform(src, src @ rot.T + shift)
    np.testing.assert_allclose(matrix[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-9)


@pytest.mark.parametrize("size", [64, 128, 256])
def test_aligned_crop_puts_landmarks_on_the_template(detector: FaceDetector, size: int) -> None:
    image = read_image(ASSETS / "grace_hopper.jpg")
    face = detector.detect([image])[0][0]
    aligned = align_face(image, face, size=size)
    assert aligned.crop.shape == (size, size, 3)
    mapped = face.landmarks @ aligned.matrix[:, :2].T + aligned.matrix[:, 2]
    assert np.abs(mapped - template_points(size, 0.25)).max() < 0.08 * size  # five points, one similarity
    # the crop itself still contains a detectable face
    assert detector.detect([align_face(image, face, size=256).crop])[0]


def test_paste_back_changes_only_the_masked_region(rng: np.random.Generator) -> None:
    frame = rng.integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    face = Face(box=np.array([50.0, 30, 110, 100]), score=1.0, landmarks=np.array([[65, 55], [95, 55], [80, 70], [68, 85], [92, 85]], float))
    aligned = align_face(frame, face, size=64)
    mask = np.zeros((64, 64), np.float32)
    mask[16:48, 16:48] = 1.0
    out = paste_back(frame, np.zeros_like(aligned.crop), aligned.matrix, mask)
    changed = np.any(out != frame, axis=2)
    inverse = cv2.invertAffineTransform(aligned.matrix)
    covered = cv2.warpAffine(mask, inverse, (160, 120), flags=cv2.INTER_LINEAR, borderValue=0.0) > 0
    assert changed.sum() > 0.5 * covered.sum()  # the face region really was replaced
    assert not (changed & ~covered).any()  # and nothing outside the warped mask moved
    # Pasting the unmodified crop back with the full mask reproduces the frame inside the face (interpolation only)
    same = paste_back(frame, aligned.crop, aligned.matrix, mask)
    assert np.abs(same.astype(int) - frame.astype(int))[changed].mean() < 60


def test_interpolation_between_keyframes() -> None:
    a = Face(box=np.array([0.0, 0, 10, 10]), score=0.99, landmarks=np.zeros((5, 2)))
    b = Face(box=np.array([2.0, 0, 12, 10]), score=0.98, landmarks=np.full((5, 2), 4.0))
    far = Face(box=np.array([100.0, 100, 110, 110]), score=0.99, landmarks=np.zeros((5, 2)))
    tracks = interpolate_tracks({0: [a], 4: [b], 8: [far]}, range(10))
    np.testing.assert_allclose(tracks[1][0].landmarks, 1.0)
    np.testing.assert_allclose(tracks[2][0].box, [1, 0, 11, 10])
    assert tracks[5] == []  # b and far do not overlap: no interpolated face between them
    assert tracks[9] == [far]  # after the last keyframe, faces hold


def test_tracker_detects_every_k_frames_and_covers_every_frame(detector: FaceDetector) -> None:
    calls: list[int] = []
    real_detect = detector.detect

    def counting(images):
        calls.append(len(images))
        return real_detect(images)

    detector.detect = counting  # type: ignore[method-assign]
    try:
        tracks = track_video(ASSETS / "carphone_pristine.mp4", detector, every=5, max_frames=40)
    finally:
        detector.detect = real_detect  # type: ignore[method-assign]
    assert sorted(tracks) == list(range(40))
    assert sum(calls) == 9  # keyframes 0, 5, ..., 35 and the last frame (39), so the tail is interpolated
    assert all(len(faces) == 1 for faces in tracks.values())
