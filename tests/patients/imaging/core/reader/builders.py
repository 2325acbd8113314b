"""DICOM and MP4 inputs built in memory for the reader tests (pydicom's own test files, nothing downloaded)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from patients.imaging.core.phantoms import phantom_cohort_clip, write_mp4

US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"


def pydicom_file(name: str) -> Path:
    # Only files that ship inside the pydicom wheel: nothing is downloaded.
    return Path(str(get_testdata_file(name)))


def dicom_bytes(ds: pydicom.Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def image_ds(pixels: np.ndarray, *, photometric: str = "MONOCHROME2", frames: int | None = None,
              syntax: str = ExplicitVRLittleEndian, bits: int = 8) -> pydicom.Dataset:
    """A minimal US multi-frame data set around ``pixels`` ([T, H, W] or [T, H, W, 3])."""
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(US_MULTIFRAME)
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    ds.SOPClassUID, ds.SOPInstanceUID = US_MULTIFRAME, ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "US"
    ds.Rows, ds.Columns = int(pixels.shape[1]), int(pixels.shape[2])
    ds.SamplesPerPixel = 3 if pixels.ndim == 4 else 1
    if ds.SamplesPerPixel == 3:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16 if bits > 8 else 8
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits - 1, 0
    ds.NumberOfFrames = pixels.shape[0] if frames is None else frames
    ds.PixelData = pixels.astype(np.uint16 if bits > 8 else np.uint8).tobytes()
    return ds


def mp4_bytes(n_frames: int = 12) -> bytes:
    buf = io.BytesIO()
    write_mp4(phantom_cohort_clip(1, seed=3, n_frames=n_frames, rows=64, columns=80, burned_in_text=False), buf)
    return buf.getvalue()
