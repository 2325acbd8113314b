"""Phantoms as files the platform ingests: DICOM (uncompressed or JPEG) and MP4."""
from __future__ import annotations

import datetime as dt
import io
import os
from fractions import Fraction
from typing import Any

import numpy as np

from patients.imaging.core.phantoms.spec import JPEG_BASELINE, MANUFACTURER, US_MULTIFRAME_SOP_CLASS, PhantomClip


def _us_region_item(phantom: PhantomClip) -> Any:
    from pydicom.dataset import Dataset  # lazy: pydicom only when a DICOM is written

    x0, y0, x1, y1 = phantom.meta["region"]
    cm_per_px = phantom.meta["depth_cm"] / max(1, y1 - y0)
    item = Dataset()
    item.RegionSpatialFormat = 1  # 2D
    item.RegionDataType = 1  # tissue
    item.RegionFlags = 0
    item.RegionLocationMinX0, item.RegionLocationMinY0 = x0, y0
    item.RegionLocationMaxX1, item.RegionLocationMaxY1 = x1, y1
    item.PhysicalUnitsXDirection = item.PhysicalUnitsYDirection = 3  # cm
    item.PhysicalDeltaX = item.PhysicalDeltaY = float(cm_per_px)
    item.ReferencePixelX0, item.ReferencePixelY0 = (x0 + x1) // 2, y0
    return item


def _encode_jpeg_frames(frames: np.ndarray, quality: int) -> list[bytes]:
    from PIL import Image  # lazy: Pillow only when JPEG frames are written

    out = []
    for frame in frames:
        buf = io.BytesIO()
        Image.fromarray(frame, mode="L").save(buf, format="JPEG", quality=quality)
        out.append(buf.getvalue())
    return out


def write_dicom(phantom: PhantomClip, path: str | os.PathLike[str] | io.BytesIO, *, jpeg: bool = False,
                jpeg_quality: int = 92, patient_name: str = "Phantom^LUSWeb", patient_id: str = "PHANTOM",
                study_uid: str | None = None, series_uid: str | None = None, sop_uid: str | None = None,
                study_date: str = "", series_number: int = 1, instance_number: int = 1) -> str:
    """Write an Ultrasound Multi-frame Image Storage object; return its SOP Instance UID.

    8-bit MONOCHROME2, uncompressed (Explicit VR Little Endian) or, with ``jpeg=True``, JPEG
    baseline frames encoded by Pillow from grey images (single component, so MONOCHROME2 too).
    """
    # lazy: pydicom only when a DICOM is written (the demo and the tests)
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    sop_uid = sop_uid or str(generate_uid())
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(US_MULTIFRAME_SOP_CLASS)
    ds.file_meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    ds.file_meta.TransferSyntaxUID = UID(JPEG_BASELINE) if jpeg else ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = US_MULTIFRAME_SOP_CLASS, sop_uid
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    now = dt.datetime.now()
    ds.StudyDate = study_date or now.strftime("%Y%m%d")
    ds.ContentDate, ds.ContentTime = ds.StudyDate, now.strftime("%H%M%S")
    ds.StudyTime = ds.ContentTime
    ds.AccessionNumber, ds.StudyID, ds.ReferringPhysicianName = "", "1", ""
    ds.SeriesNumber, ds.InstanceNumber = series_number, instance_number
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = patient_name, patient_id, "", ""
    _describe_image(ds, phantom)
    _put_pixels(ds, phantom.frames, jpeg, jpeg_quality)
    ds.save_as(path, enforce_file_format=True)
    return str(sop_uid)


def _describe_image(ds: Any, phantom: PhantomClip) -> None:
    """Equipment, image pixel and cine attributes of the phantom's frames."""
    from pydicom.tag import Tag  # lazy: pydicom only when a DICOM is written

    frames, spec = phantom.frames, phantom.spec
    ds.Modality = "US"
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = f"Phantom {'C5-2' if spec.geometry == 'convex' else 'L12-4'}"
    ds.TransducerData = "C5-2" if spec.geometry == "convex" else "L12-4"
    ds.TransducerType = "CURVED LINEAR" if spec.geometry == "convex" else "LINEAR"
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.ImageComments = "Synthetic lung-ultrasound phantom (LUSWeb); not patient data"
    ds.BurnedInAnnotation = "YES" if phantom.text_mask.any() else "NO"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = int(frames.shape[1]), int(frames.shape[2])
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.NumberOfFrames = int(frames.shape[0])
    ds.FrameTime = f"{1000.0 / spec.fps:.4f}".rstrip("0").rstrip(".")
    ds.CineRate = round(spec.fps)
    ds.RecommendedDisplayFrameRate = round(spec.fps)
    ds.FrameIncrementPointer = Tag("FrameTime")
    ds.SequenceOfUltrasoundRegions = [_us_region_item(phantom)]


def _put_pixels(ds: Any, frames: np.ndarray, jpeg: bool, jpeg_quality: int) -> None:
    """Uncompressed 8-bit pixel data, or JPEG baseline frames (encapsulated)."""
    if jpeg:
        from pydicom.encaps import encapsulate  # lazy: pydicom only when a DICOM is written

        ds.LossyImageCompression = "01"
        encoded = _encode_jpeg_frames(frames, jpeg_quality)
        ds.LossyImageCompressionRatio = f"{frames.nbytes / sum(len(f) for f in encoded):.2f}"[:16]
        ds.LossyImageCompressionMethod = "ISO_10918_1"
        ds.PixelData = encapsulate(encoded)
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    else:
        ds.LossyImageCompression = "00"
        ds.PixelData = np.ascontiguousarray(frames, dtype=np.uint8).tobytes()
        ds["PixelData"].VR = "OB"


def _even(frames: np.ndarray) -> np.ndarray:
    """Pad to even height/width with black: 4:2:0 H.264 needs it."""
    _, h, w = frames.shape
    return np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2)))


def _mp4_codec() -> str:
    import av  # lazy: PyAV only when a video is written

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def write_mp4(phantom: PhantomClip, path: str | os.PathLike[str] | io.BytesIO, *, crf: int = 18) -> str:
    """Write an MP4 (H.264 through libx264 when the PyAV wheel has it, else MPEG-4 part 2).

    Odd frame sizes are padded by one black row/column (4:2:0 chroma needs even sizes).
    Returns the codec used.
    """
    import av  # lazy: PyAV only when a video is written

    codec = _mp4_codec()
    frames = _even(phantom.frames)
    target = os.fspath(path) if isinstance(path, (str, os.PathLike)) else path
    with av.open(target, mode="w", format="mp4") as container:
        stream: Any = container.add_stream(codec, rate=Fraction(phantom.spec.fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "veryfast"}
        else:
            stream.bit_rate = 4_000_000
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="gray")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return codec
