"""The metadata section on JPEGs built here with known EXIF, dates and an EXIF thumbnail of the same or another picture.

Pillow's `Image.Exif` writes IFD0 and its Exif/GPS sub-IFDs but not IFD1 (the thumbnail directory), and piexif is
not installed. So `exif_with_thumbnail` serialises IFD1 with Pillow's own `TiffImagePlugin.ImageFileDirectory_v2`
placed after Pillow's EXIF block, appends the thumbnail JPEG after it, and sets IFD0's 4-byte next-IFD offset to
point at it: the layout the EXIF standard describes, built with Pillow's IFD writer.
"""
from __future__ import annotations

import io
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, TiffImagePlugin, TiffTags

from forensics.data.media import read_image
from forensics.evidence.metadata import compare_thumbnail, image_metadata_section
from forensics.evidence.section import NO_INFORMATION, NO_SIGN, SUGGESTS_MANIPULATION

STARTER = Path(__file__).resolve().parents[1] / "forensics" / "assets" / "starter"


def jpeg_bytes(rgb: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def exif_with_thumbnail(exif: Image.Exif, thumbnail_jpeg: bytes) -> bytes:
    """`Exif\\0\\0` + TIFF block whose IFD0 links to an IFD1 describing `thumbnail_jpeg`, stored right after it."""
    block = exif.tobytes()  # b"Exif\0\0" + TIFF header + IFD0 (+ sub-IFDs), IFD0's next-IFD offset = 0
    tiff = bytearray(block[6:])
    endian = "<" if tiff[:2] == b"II" else ">"
    ifd1_offset = len(tiff) + (len(tiff) & 1)  # IFDs start on a word boundary
    tiff += b"\x00" * (ifd1_offset - len(tiff))

    def ifd1_bytes(thumb_offset: int) -> bytes:
        ifd1 = TiffImagePlugin.ImageFileDirectory_v2(ifh=bytes(tiff[:8]))
        ifd1.tagtype[ExifTags.Base.JpegIFOffset] = TiffTags.LONG
        ifd1.tagtype[ExifTags.Base.JpegIFByteCount] = TiffTags.LONG
        ifd1[ExifTags.Base.Compression] = 6  # JPEG
        ifd1[ExifTags.Base.JpegIFOffset] = thumb_offset
        ifd1[ExifTags.Base.JpegIFByteCount] = len(thumbnail_jpeg)
        return ifd1.tobytes(ifd1_offset)

    size = len(ifd1_bytes(0))  # LONG values sit inside the entries: the length does not depend on them
    tiff += ifd1_bytes(ifd1_offset + size) + thumbnail_jpeg
    ifd0_offset = struct.unpack(endian + "I", tiff[4:8])[0]
    n_entries = struct.unpack(endian + "H", tiff[ifd0_offset:ifd0_offset + 2])[0]
    next_at = ifd0_offset + 2 + 12 * n_entries
    tiff[next_at:next_at + 4] = struct.pack(endian + "I", ifd1_offset)
    return b"Exif\x00\x00" + bytes(tiff)


def camera_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Canon"
    exif[ExifTags.Base.Model] = "Canon EOS 5D Mark II"
    exif[ExifTags.Base.Software] = "Firmware 2.1.2"
    exif[ExifTags.Base.DateTime] = "2020:05:10 10:04:01"
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.DateTimeOriginal] = "2020:05:10 10:04:01"
    sub[ExifTags.Base.DateTimeDigitized] = "2020:05:10 10:04:01"
    return exif


def thumbnail_of(rgb: np.ndarray) -> bytes:
    im = Image.fromarray(rgb)
    im.thumbnail((160, 160))
    return jpeg_bytes(np.asarray(im), quality=85)


def save_with_exif(path: Path, rgb: np.ndarray, exif_block: bytes) -> Path:
    Image.fromarray(rgb).save(path, "JPEG", quality=92, exif=exif_block)
    os.utime(path, (1_700_000_000, 1_700_000_000))  # 2023-11-14: after the EXIF dates
    return path


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return read_image(STARTER / "grace_hopper.jpg")  # [600,512,3]


@pytest.fixture(scope="module")
def other() -> np.ndarray:
    return read_image(STARTER / "franck_01829.jpg")[:, 40:552]  # [576,512,3], another picture


def test_own_thumbnail_matches_and_camera_tags_read_back(tmp_path: Path, face: np.ndarray) -> None:
    path = save_with_exif(tmp_path / "camera.jpg", face, exif_with_thumbnail(camera_exif(), thumbnail_of(face)))
    section = image_metadata_section(path, read_image(path))
    f = section.fields
    assert f["camera"]["make"] == "Canon" and f["camera"]["model"] == "Canon EOS 5D Mark II"
    assert f["software"] == "Firmware 2.1.2" and f["editors"] == [] and f["generators"] == []
    assert f["dates"]["original"] == "2020-05-10T10:04:01" and f["dates"]["modified"] == "2020-05-10T10:04:01"
    assert f["dates"]["consistent"] is True
    assert f["thumbnail"]["match"] is True and f["thumbnail"]["correlation"] > 0.95
    assert Image.open(io.BytesIO(section.assets["exif-thumbnail.png"])).size == tuple(f["thumbnail"]["size"])
    assert section.signal.stance == NO_SIGN
    json.dumps(f)  # JSON-able


def test_thumbnail_of_another_picture_is_a_mismatch(tmp_path: Path, face: np.ndarray, other: np.ndarray) -> None:
    path = save_with_exif(tmp_path / "swapped.jpg", face, exif_with_thumbnail(camera_exif(), thumbnail_of(other)))
    section = image_metadata_section(path, read_image(path))
    thumb = section.fields["thumbnail"]
    assert thumb["compared"] and thumb["match"] is False
    assert section.signal.stance == SUGGESTS_MANIPULATION and "thumbnail" in section.signal.reason


def test_local_edit_after_the_thumbnail_is_a_mismatch(tmp_path: Path, face: np.ndarray) -> None:
    """A retouch of one region (a grey patch over the face) after the thumbnail was written."""
    edited = face.copy()
    edited[150:350, 150:350] = 128
    path = save_with_exif(tmp_path / "retouched.jpg", edited, exif_with_thumbnail(camera_exif(), thumbnail_of(face)))
    thumb = image_metadata_section(path, read_image(path)).fields["thumbnail"]
    assert thumb["match"] is False and thumb["max_block_abs_diff"] > 30


def test_crop_after_the_thumbnail_is_an_aspect_mismatch(face: np.ndarray) -> None:
    thumb = np.asarray(Image.open(io.BytesIO(thumbnail_of(face))).convert("RGB"))
    result = compare_thumbnail(thumb, face[:300])
    assert result["aspect_mismatch"] is True and result["match"] is False


def test_editor_generator_dates_and_gps(tmp_path: Path, face: np.ndarray) -> None:
    exif = camera_exif()
    exif[ExifTags.Base.Software] = "Adobe Photoshop CC 2018 (Windows)"
    exif[ExifTags.Base.DateTime] = "2019:01:01 00:00:00"  # modified before capture: impossible order
    exif[ExifTags.Base.ImageDescription] = "made with Stable Diffusion XL"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "S"
    gps[ExifTags.GPS.GPSLatitude] = (33.0, 51.0, 36.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (151.0, 12.0, 36.0)
    path = save_with_exif(tmp_path / "edited.jpg", face, exif.tobytes())
    section = image_metadata_section(path, read_image(path))
    f = section.fields
    assert f["editors"] == ["Adobe Photoshop"] and f["generators"] == ["Stable Diffusion"]
    assert f["dates"]["consistent"] is False and any("impossible order" in c for c in f["dates"]["checks"])
    assert f["gps"]["present"]
    assert f["gps"]["latitude"] == pytest.approx(-33.86) and f["gps"]["longitude"] == pytest.approx(151.21)
    assert section.signal.stance == SUGGESTS_MANIPULATION
    assert "Stable Diffusion" in section.signal.reason and "edited with Adobe Photoshop" in section.signal.reason
    assert "33." not in section.signal.reason  # coordinates stay in the fields
    assert f["thumbnail"] is None


def test_exif_date_after_mtime_is_flagged(tmp_path: Path, face: np.ndarray) -> None:
    path = save_with_exif(tmp_path / "future.jpg", face, camera_exif().tobytes())
    os.utime(path, (1_500_000_000, 1_500_000_000))  # 2017: before the 2020 EXIF capture date
    dates = image_metadata_section(path, None).fields["dates"]
    assert dates["consistent"] is False and any("mtime" in c for c in dates["checks"])


def test_xmp_digital_source_type_declares_generation(tmp_path: Path, face: np.ndarray) -> None:
    xmp = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
           'Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"/>'
           '</rdf:RDF></x:xmpmeta>').encode()
    path = tmp_path / "xmp.jpg"
    Image.fromarray(face).save(path, "JPEG", xmp=xmp)
    section = image_metadata_section(path, None)
    assert section.fields["digital_source_type"] == "trainedAlgorithmicMedia"
    assert section.fields["present"]["xmp"] is True
    assert section.signal.stance == SUGGESTS_MANIPULATION and "trainedAlgorithmicMedia" in section.signal.reason


def test_png_generator_parameters_chunk(tmp_path: Path, face: np.ndarray) -> None:
    from PIL.PngImagePlugin import PngInfo
    info = PngInfo()
    info.add_text("parameters", "a portrait, Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1")
    path = tmp_path / "gen.png"
    Image.fromarray(face).save(path, pnginfo=info)
    section = image_metadata_section(path, None)
    assert section.fields["generators"] == ["PNG text 'parameters'"]
    assert section.signal.stance == SUGGESTS_MANIPULATION


def test_no_metadata_is_no_information(tmp_path: Path, face: np.ndarray) -> None:
    path = tmp_path / "plain.jpg"
    path.write_bytes(jpeg_bytes(face))
    section = image_metadata_section(path, face)
    assert section.fields["tag_count"] == 0 and section.fields["thumbnail"] is None
    assert section.signal.stance == NO_INFORMATION and "proves nothing" in section.signal.reason


def test_unreadable_file_gives_an_error_field(tmp_path: Path) -> None:
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    section = image_metadata_section(path, None)
    assert str(path) in section.fields["error"] and section.signal.stance == NO_INFORMATION
    missing = image_metadata_section(tmp_path / "missing.jpg", None)
    assert "missing.jpg" in missing.fields["error"]

