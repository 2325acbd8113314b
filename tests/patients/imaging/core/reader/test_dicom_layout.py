"""The DICOM pixel data against its header: cut short by a byte, shorter or longer than Rows x
Columns x Samples x Bits x Frames, encapsulated frames against Number of Frames."""
from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate, encapsulate_extended

from patients.imaging.core import deid
from patients.imaging.core.reader import CorruptFile, PixelDataMismatch, TruncatedFile, read_clip
from patients.imaging.core.sector import Sector
from tests.hostile import rle_constant_frame, us_dataset, write_native
from tests.patients.imaging.core.reader.builders import dicom_bytes, image_ds, pydicom_file

RLE, JPEG_BASELINE = "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.50"


def _native(side: int, frames: int, pixel: bytes) -> bytes:
    ds = us_dataset(rows=side, columns=side, frames=frames)
    ds.PixelData = pixel  # type: ignore[attr-defined]
    return dicom_bytes(ds)  # type: ignore[arg-type]


def _encapsulated(syntax: str, frames: int, value: bytes, **extra: object) -> bytes:
    ds = us_dataset(rows=256, columns=256, frames=frames, syntax=syntax)
    ds.PixelData = value  # type: ignore[attr-defined]
    ds["PixelData"].VR, ds["PixelData"].is_undefined_length = "OB", True  # type: ignore[index]
    for keyword, item in extra.items():
        setattr(ds, keyword, item)
    return dicom_bytes(ds)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["examples_rgb_color.dcm", "MR_small.dcm", "SC_rgb_rle_2frame.dcm",
                                  "examples_ybr_color.dcm", "examples_palette.dcm"])
def test_real_files_cut_one_byte_short_are_refused(name: str) -> None:
    """pydicom accepts all of these cut one byte short (inside a trailing padding element or the
    delimiter closing encapsulated pixel data); read whole, they decode."""
    raw = pydicom_file(name).read_bytes()
    assert read_clip(raw).frames.size
    with pytest.raises(TruncatedFile, match=r"^file is truncated: the DICOM (file is cut off|pixel data is shorter "
                                            r"than its header says): the file ends (1 byte before the end of|inside) its"):
        read_clip(raw[:-1])


def test_cut_inside_the_header_of_an_element_after_the_pixel_data(tmp_path: Path) -> None:
    path = tmp_path / "a.dcm"
    write_native(path, side=16, frames=2, trailing_padding=True, cut=25)  # 3 of the padding element's 12 header bytes
    with pytest.raises(TruncatedFile, match=r"the file ends inside the header of an element after its Pixel Data"):
        read_clip(path)


def test_native_length_against_the_header() -> None:
    ramp = (np.arange(256) % 251).astype(np.uint8).tobytes()
    with pytest.raises(TruncatedFile, match=r"it holds 512 bytes, its header describes 3 frames of 16 x 16 pixels x "
                                            r"1 sample x 8 bits = 768 bytes"):
        read_clip(_native(16, 3, ramp * 2))
    with pytest.raises(PixelDataMismatch, match=r"holds 512 bytes, 256 more than its header describes \(1 frame of "
                                                r"16 x 16 pixels x 1 sample x 8 bits = 256 bytes\): room for 1 more frame "
                                                r"that the header does not show"):
        read_clip(_native(16, 1, ramp * 2))
    # Less than a frame beyond the header: decoded, and the excess is noted (pydicom warns too).
    with pytest.warns(UserWarning, match="100 bytes of excess padding"):
        clip = read_clip(_native(16, 1, ramp + bytes(100)))
    assert clip.frames.shape == (1, 16, 16) and clip.meta["pixel_data_excess_bytes"] == 100
    # An odd length padded to even is no excess.
    odd = read_clip(_native(3, 3, bytes(range(27))))
    assert odd.frames.shape == (3, 3, 3) and "pixel_data_excess_bytes" not in odd.meta


def test_encapsulated_frames_against_number_of_frames() -> None:
    frame = rle_constant_frame(256, 256)
    with pytest.raises(PixelDataMismatch, match=r"it holds 3 fragments, Number of Frames says 2"):
        read_clip(_encapsulated(RLE, 2, encapsulate([frame] * 3, has_bot=False)))  # RLE: one fragment per frame
    with pytest.raises(PixelDataMismatch, match=r"it holds 2 fragments, Number of Frames says 3"):
        read_clip(_encapsulated(JPEG_BASELINE, 3, encapsulate([b"\xff\xd8" + bytes(30)] * 2, has_bot=False)))
    value, table, lengths = encapsulate_extended([frame] * 4)
    with pytest.raises(PixelDataMismatch, match=r"its Extended Offset Table lists 4 frames, Number of Frames says 5"):
        read_clip(_encapsulated(RLE, 5, value, ExtendedOffsetTable=table, ExtendedOffsetTableLengths=lengths))
    assert read_clip(_encapsulated(RLE, 4, value, ExtendedOffsetTable=table,
                                   ExtendedOffsetTableLengths=lengths)).frames.shape == (4, 256, 256)
    assert read_clip(_encapsulated(RLE, 3, encapsulate([frame] * 3, has_bot=False))).frames.shape == (3, 256, 256)


def test_encapsulated_items_that_do_not_add_up() -> None:
    bot = b"\xfe\xff\x00\xe0" + struct.pack("<I", 0)
    overlong = bot + b"\xfe\xff\x00\xe0" + struct.pack("<I", 1000) + bytes(100)
    with pytest.raises(TruncatedFile, match=r"its last fragment is cut off"):
        read_clip(_encapsulated(RLE, 1, overlong))
    stray = bot + b"\x08\x00\x05\x00" + struct.pack("<I", 4) + bytes(4)
    with pytest.raises(CorruptFile, match=r"unexpected item \(0008,0005\) at byte 8 of the pixel data"):
        read_clip(_encapsulated(RLE, 1, stray))


def test_deidentification_stores_nothing_beyond_what_the_header_describes() -> None:
    ramp = (np.arange(256) % 251).astype(np.uint8).tobytes()
    raw = _native(16, 1, ramp + b"hidden text" + bytes(89))
    with pytest.warns(UserWarning, match="excess padding"):
        frames = read_clip(raw).frames
    nowhere = Sector(mask=np.ones((16, 16), bool), found=False, method="none")  # nothing to redact
    result = deid.deidentify_dataset(raw, secret="s", grey_frames=frames, sector=nowhere, patient_pseudonym="p")
    assert result.pixels == "unchanged" and b"hidden text" not in result.data
    stored = pydicom.dcmread(io.BytesIO(result.data))
    assert stored.PixelData == ramp and np.array_equal(read_clip(result.data).frames, frames)


def test_within_its_header_every_photometric_still_decodes() -> None:
    rgb = np.random.default_rng(3).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    assert read_clip(dicom_bytes(image_ds(rgb, photometric="RGB"))).frames.shape == (2, 5, 7)
    deep = np.random.default_rng(4).integers(0, 4096, (3, 5, 7)).astype(np.float64)
    assert read_clip(dicom_bytes(image_ds(deep, bits=12))).frames.shape == (3, 5, 7)
