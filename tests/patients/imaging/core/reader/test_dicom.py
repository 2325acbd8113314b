"""patients.imaging.core.reader.dicom: real vendor DICOMs (shipped with pydicom) and every photometric path."""
from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

from patients.imaging.core.reader import read_clip
from tests.patients.imaging.core.reader.builders import US_MULTIFRAME, dicom_bytes, image_ds, pydicom_file


def test_sonosite_multiframe_jpeg_baseline_ybr() -> None:
    clip = read_clip(pydicom_file("examples_ybr_color.dcm"))
    assert clip.frames.shape == (30, 240, 320) and clip.frames.dtype == np.uint8
    assert clip.fps == pytest.approx(30.0, abs=0.01)
    meta = clip.meta
    assert meta["format"] == "dicom" and meta["manufacturer"] == "SonoSite, Inc."
    assert meta["transfer_syntax"] == "1.2.840.10008.1.2.4.50" and meta["codec"] == "JPEG Baseline (Process 1)"
    assert meta["photometric"] == "YBR_FULL_422" and meta["modality"] == "US"
    assert meta["sop_class_uid"] == US_MULTIFRAME and meta["frame_count"] == 30
    assert (meta["rows"], meta["columns"]) == (240, 320)
    ds = pydicom.dcmread(pydicom_file("examples_ybr_color.dcm"))
    assert meta["sop_instance_uid"] == ds.SOPInstanceUID and meta["study_instance_uid"] == ds.StudyInstanceUID
    json.dumps(meta)  # stored as a JSON field


def test_ybr_jpeg_is_converted_once_to_bt601_luma() -> None:
    """Grey must equal the luma of pydicom's own RGB rendering (within RGB clipping/rounding),
    proving the YCbCr data was not converted twice."""
    path = pydicom_file("examples_ybr_color.dcm")
    ds = pydicom.dcmread(path)
    rgb = ds.pixel_array.astype(np.float64)  # pydicom default: as RGB
    luma = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    diff = np.abs(read_clip(path).frames - luma)
    assert diff.mean() < 0.6 and diff.max() <= 8


@pytest.mark.parametrize("name, shape, manufacturer", [
    ("examples_rgb_color.dcm", (1, 240, 320), "G.E. Medical Systems"),
    ("examples_palette.dcm", (1, 350, 800), "Philips Medical Systems"),
    ("examples_jpeg2k.dcm", (1, 480, 640), "G.E. Medical Systems"),
])
def test_other_vendor_files(name: str, shape: tuple[int, int, int], manufacturer: str) -> None:
    clip = read_clip(pydicom_file(name))
    assert clip.frames.shape == shape and clip.fps is None
    assert clip.meta["manufacturer"] == manufacturer and clip.meta["modality"] == "US"


def test_palette_colour_goes_through_the_lut() -> None:
    from pydicom.pixels import apply_color_lut

    path = pydicom_file("examples_palette.dcm")
    ds = pydicom.dcmread(path)
    rgb = apply_color_lut(ds.pixel_array, ds).astype(np.float64)
    if rgb.max() > 255:
        rgb = np.floor(rgb / 257)
    luma = np.rint(rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114)
    frames = read_clip(path).frames[0]
    assert np.abs(frames - luma).max() <= 1
    assert frames.std() > 5  # not a blank or an index image


def test_rgb_luminance_of_known_colours() -> None:
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 200, 30], [255, 255, 255]], dtype=np.uint8)
    pixels = np.tile(colours[None, None, :, :], (2, 3, 1, 1))  # [T=2, H=3, W=5, 3]
    clip = read_clip(dicom_bytes(image_ds(pixels, photometric="RGB")))
    assert clip.frames.shape == (2, 3, 5)
    assert clip.frames[0, 0].tolist() == [76, 150, 29, 124, 255]  # round(0.299 R + 0.587 G + 0.114 B)


def test_uncompressed_ybr_full_uses_its_luma() -> None:
    from pydicom.pixels import convert_color_space

    rgb = np.random.default_rng(1).integers(0, 256, (3, 8, 10, 3), dtype=np.uint8)
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    clip = read_clip(dicom_bytes(image_ds(ybr, photometric="YBR_FULL")))
    assert np.array_equal(clip.frames, ybr[..., 0])


def test_monochrome1_is_inverted() -> None:
    grey = np.random.default_rng(2).integers(0, 256, (2, 6, 7), dtype=np.uint8)
    assert np.array_equal(read_clip(dicom_bytes(image_ds(grey, photometric="MONOCHROME1"))).frames, 255 - grey)
    assert np.array_equal(read_clip(dicom_bytes(image_ds(grey))).frames, grey)


def test_high_bit_depth_is_windowed_or_stretched() -> None:
    ramp = np.linspace(0, 4095, 64, dtype=np.float64).reshape(1, 8, 8).repeat(2, axis=0)
    clip = read_clip(dicom_bytes(image_ds(ramp, bits=12)))
    assert clip.frames.min() == 0 and clip.frames.max() == 255  # min..max without a VOI window
    ds = image_ds(ramp, bits=12)
    ds.WindowCenter, ds.WindowWidth = 1024, 2048  # window 0..2048
    frames = read_clip(dicom_bytes(ds)).frames
    assert frames[0, 0, 0] == 0 and frames[0, -1, -1] == 255
    assert frames[0].ravel()[16] == pytest.approx(16 * 4095 / 63 / 2048 * 255, abs=1)


@pytest.mark.parametrize("compressed, reference", [
    ("MR_small_RLE.dcm", "MR_small.dcm"),  # RLE lossless, 16-bit MONOCHROME2
    ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"),
    ("SC_rgb_jpeg_gdcm.dcm", "SC_rgb_rle.dcm"),  # JPEG lossless (process 14) vs RLE, RGB
    ("SC_rgb_rle_2frame.dcm", "SC_rgb_rle_2frame.dcm"),
])
def test_lossless_syntaxes_decode_identically(compressed: str, reference: str) -> None:
    a, b = read_clip(pydicom_file(compressed)), read_clip(pydicom_file(reference))
    assert np.array_equal(a.frames, b.frames) and a.frames.std() > 10


def test_monochrome2_16bit_ct() -> None:
    clip = read_clip(pydicom_file("CT_small.dcm"))
    assert clip.frames.shape == (1, 128, 128) and clip.meta["bits_stored"] == 16
    assert clip.meta["manufacturer"] == "GE MEDICAL SYSTEMS" and clip.frames.std() > 10
