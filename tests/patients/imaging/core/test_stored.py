"""The stored copy's writer: a big endian data set re-encoded little endian (``to_little_endian``)."""
from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian

from patients.imaging.core.stored import file_bytes, to_little_endian


def _read(name: str) -> pydicom.Dataset:
    path = get_testdata_file(name)
    assert path is not None, name
    return pydicom.dcmread(path)


@pytest.mark.parametrize(("big", "little"), [
    ("MR_small_bigendian.dcm", "MR_small.dcm"),  # 16-bit OW: each word byte-swapped
    ("SC_rgb_small_odd_big_endian.dcm", "SC_rgb_small_odd.dcm"),  # 8-bit RGB, odd length, 3 frames
    ("ExplVR_BigEnd.dcm", None),  # RGB colour-by-plane
])
def test_a_big_endian_data_set_is_written_little_endian_with_the_same_pixels(big: str, little: str | None) -> None:
    ds = _read(big)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRBigEndian
    expected = (_read(little) if little else _read(big)).pixel_array
    header = {k: ds[k].value for k in ("Rows", "Columns", "BitsAllocated", "PixelRepresentation")}
    to_little_endian(ds)
    out = pydicom.dcmread(io.BytesIO(file_bytes(ds)))
    assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert out.original_encoding == (False, True)
    assert {k: out[k].value for k in header} == header
    np.testing.assert_array_equal(out.pixel_array, expected)
    assert out.get("PlanarConfiguration", 0) == 0


def test_words_are_swapped_in_sequences_and_unknown_values_dropped() -> None:
    ds = _read("MR_small_bigendian.dcm")
    item = pydicom.Dataset()
    item.add_new(0x00283006, "OW", b"\x01\x02\x03\x04")  # LUT Data, two big endian words: 0x0102, 0x0304
    ds.ModalityLUTSequence = [item]
    ds.add_new(0x00291010, "UN", b"\x00\x01")  # a private value of unknown structure
    ds.add_new(0x00189999, "UN", b"\x00\x01")  # and a public one pydicom does not know
    to_little_endian(ds)
    out = pydicom.dcmread(io.BytesIO(file_bytes(ds)))
    assert out.ModalityLUTSequence[0][0x00283006].value == b"\x02\x01\x04\x03"
    assert 0x00291010 not in out and 0x00189999 not in out


def test_a_little_endian_data_set_is_left_as_it_is() -> None:
    ds = _read("MR_small.dcm")
    before = file_bytes(ds)
    to_little_endian(ds)
    assert file_bytes(ds) == before
