"""DICOM: pydicom and its pixel-data codecs (JPEG, JPEG 2000, RLE through pylibjpeg)."""
from __future__ import annotations

import logging
from typing import Any, BinaryIO

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut, get_decoder
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from patients.imaging.core.reader.budget import Budget, FrameStack
from patients.imaging.core.reader.clip import (
    ClipReadError,
    CorruptFile,
    NoFrames,
    NoPixelData,
    TruncatedFile,
    UndecodableCodec,
    luma,
    new_meta,
    scale_to_uint8,
)
from patients.imaging.core.reader.dicom_layout import (
    check_declared_budget,
    check_pixel_data,
    describe_cut,
    frame_count,
    header_int,
    needs_clip_range,
    refuse_cut,
    voi_window,
)

logger = logging.getLogger(__name__)


_MONO = ("MONOCHROME1", "MONOCHROME2")
_LUMA_FIRST = ("YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_PARTIAL_422", "YBR_PARTIAL_420")


def _dstr(ds: Any, keyword: str) -> str | None:
    """A DICOM element as a plain string (multi-values joined by ``\\``), ``None`` if absent/empty."""
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    if _is_multi(value):
        joined = "\\".join(str(v) for v in value)
        return joined or None
    return str(value)


def _is_multi(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue"


def _dicom_fps(ds: Any) -> float | None:
    """Frame rate from Frame Time (ms), Frame Time Vector, Cine Rate or Recommended Display Frame Rate."""
    try:
        frame_time = float(ds.get("FrameTime") or 0)
        if frame_time > 0:
            return 1000.0 / frame_time
        vector = [float(v) for v in (ds.get("FrameTimeVector") or [])[1:]]  # first entry is always 0
        if vector and sum(vector) > 0:
            return 1000.0 * len(vector) / sum(vector)
        for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
            rate = float(ds.get(keyword) or 0)
            if rate > 0:
                return rate
    except (TypeError, ValueError):
        logger.info("ignoring an unparsable DICOM frame rate")
    return None


def _us_regions(ds: Any) -> list[dict[str, Any]] | None:
    """Sequence of Ultrasound Regions (0018,6011) boxes: where the image data sits in the frame."""
    regions = []
    for item in ds.get("SequenceOfUltrasoundRegions") or []:
        regions.append({
            "x0": header_int(item, "RegionLocationMinX0"), "y0": header_int(item, "RegionLocationMinY0"),
            "x1": header_int(item, "RegionLocationMaxX1"), "y1": header_int(item, "RegionLocationMaxY1"),
            "spatial_format": header_int(item, "RegionSpatialFormat"), "data_type": header_int(item, "RegionDataType"),
        })
    return regions or None


def _dicom_meta(ds: Any, tsyntax: Any) -> dict[str, Any]:
    meta = new_meta("dicom")
    sop_class = _dstr(ds, "SOPClassUID") or _dstr(ds.get("file_meta") or {}, "MediaStorageSOPClassUID")
    meta.update(
        codec=tsyntax.name if tsyntax else None, transfer_syntax=str(tsyntax) if tsyntax else None,
        photometric=_dstr(ds, "PhotometricInterpretation"),
        manufacturer=_dstr(ds, "Manufacturer"), model=_dstr(ds, "ManufacturerModelName"),
        transducer=_dstr(ds, "TransducerData") or _dstr(ds, "TransducerType"),
        sop_instance_uid=_dstr(ds, "SOPInstanceUID"), study_instance_uid=_dstr(ds, "StudyInstanceUID"),
        series_instance_uid=_dstr(ds, "SeriesInstanceUID"), modality=_dstr(ds, "Modality"),
        sop_class_uid=sop_class, sop_class_name=UID(sop_class).name if sop_class else None,
        bits_stored=header_int(ds, "BitsStored"), declared_frame_count=header_int(ds, "NumberOfFrames"),
        ultrasound_regions=_us_regions(ds),
    )
    return meta


def _dicom_transfer_syntax(ds: Any) -> Any:
    """The file's transfer syntax; for meta-less files infer it from how pydicom parsed them."""
    tsyntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if tsyntax:
        return UID(str(tsyntax))
    implicit, little = getattr(ds, "original_encoding", (True, True))
    tsyntax = ImplicitVRLittleEndian if implicit else (ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    ds.file_meta.TransferSyntaxUID = tsyntax  # the pixel decoders look it up there
    return tsyntax


_PIXEL_DATA_TAGS = (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10")  # (7FE0,0010) little / big endian


def _pixel_tag_in_file(fp: BinaryIO) -> bool:
    fp.seek(0)
    raw = fp.read()
    fp.seek(0)
    return any(tag in raw for tag in _PIXEL_DATA_TAGS)


def _dicom_cut_short(ds: Any) -> bool:
    """True when pydicom hit the end of the file inside the data set.

    pydicom does not raise on that: it keeps a last element whose value is shorter than its
    declared length, or (cut inside an element header) no data set elements at all.
    """
    tags = list(ds.keys())
    if not tags:
        return True
    last = ds.get_item(tags[-1])  # raw element: value bytes + declared length, not converted
    length, value = getattr(last, "length", None), getattr(last, "value", None)
    undefined = 0xFFFFFFFF
    return isinstance(value, bytes) and length is not None and length != undefined and len(value) < length


def _check_dicom_has_pixels(ds: Any, meta: dict[str, Any], fp: BinaryIO) -> None:
    """Refuse objects without an image, telling apart 'not an image' from 'image cut off'."""
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        sop_name = meta.get("sop_class_name") or "unknown"
        # pydicom silently drops a Pixel Data element that the file ends inside; the element's
        # tag present in the bytes but absent from the parsed data set means exactly that.
        if _pixel_tag_in_file(fp):
            raise TruncatedFile("file is truncated: the DICOM pixel data is cut off before its end")
        if _dicom_cut_short(ds):
            raise TruncatedFile(
                f"file is truncated: the DICOM file ends inside its header (SOP class {sop_name}), "
                "before any pixel data"
            )
        if "Image Storage" in sop_name or "Rows" in ds:
            raise NoPixelData(
                f"DICOM file has no pixel data (SOP class {sop_name}): the image is missing; "
                "the file may be truncated or a header-only export"
            )
        raise NoPixelData(f"DICOM file has no pixel data (SOP class {sop_name}): not an image")
    declared = meta.get("declared_frame_count")
    if declared is not None and declared <= 0:
        raise NoFrames(f"DICOM file has no frames (Number of Frames is {declared}): zero frames to show")
    if "PixelData" in ds and not ds.PixelData:
        raise NoFrames("DICOM pixel data is empty: zero frames to show")


def _palette_to_rgb8(arr: np.ndarray, ds: Any) -> np.ndarray:
    rgb = apply_color_lut(arr, ds)
    if rgb.dtype != np.uint8:
        # 16-bit LUT entries span 0..65535, but some writers fill them with 8-bit values.
        rgb = (rgb // 257).astype(np.uint8) if int(rgb.max(initial=0)) > 255 else rgb.astype(np.uint8)
    return rgb


def _dicom_frame_grey(arr: np.ndarray, pi: str, ds: Any) -> np.ndarray:
    """One decoded frame (in the photometric interpretation the decoder reports) to grey."""
    if pi in _MONO:
        return arr
    if pi == "PALETTE COLOR":
        return luma(_palette_to_rgb8(arr, ds))
    if arr.ndim == 3 and arr.shape[-1] == 3:
        if pi in _LUMA_FIRST:
            # Y of YCbCr *is* the BT.601 luma of the RGB it encodes: taking it avoids a lossy
            # YCbCr->RGB->Y round trip and can never double-convert.
            return arr[..., 0]
        return luma(arr)  # RGB, YBR_RCT already undone by the JPEG 2000 decoders, ...
    raise UndecodableCodec(f"DICOM photometric interpretation {pi!r} is not supported")


class _Grey8:
    """Brings one decoded grey frame to uint8 0..255, as the whole clip would be: >8-bit, signed
    or 1-bit grey through the VOI window (else the clip's own min..max: ``range`` set after the
    last frame), colour of more than 8 bits by its full scale; MONOCHROME1 inverted."""

    def __init__(self, ds: Any, pi: str, dtype: np.dtype) -> None:  # type: ignore[type-arg]
        self.pi = pi
        bits = header_int(ds, "BitsStored") or 8
        self.scaled = dtype != np.uint8 or bits != 8
        self.slope = np.float32(float(ds.get("RescaleSlope") or 1.0))
        self.intercept = np.float32(float(ds.get("RescaleIntercept") or 0.0))
        self.full_scale = float(2**bits - 1)
        self.window = voi_window(ds)
        self.needs_range = needs_clip_range(ds, pi, uint8=dtype == np.uint8)

    def set_range(self, native: np.ndarray) -> None:
        """The clip's min..max after rescale (float32, as elementwise), from its native samples."""
        ends = [np.float32(np.float32(v) * self.slope + self.intercept) for v in (native.min(), native.max())]
        self.window = (float(min(ends)), float(max(ends)))

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if self.scaled:
            if self.pi in _MONO:
                values = frame.astype(np.float32) * self.slope + self.intercept
                lo, hi = self.window or (0.0, 0.0)
                frame = scale_to_uint8(values, lo, hi)
            else:  # colour samples: full scale of the stored bits
                frame = scale_to_uint8(frame, 0.0, self.full_scale)
        return 255 - frame if self.pi == "MONOCHROME1" else frame


def _decoder_for(tsyntax: Any) -> Any:
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError as exc:
        raise UndecodableCodec(
            f"DICOM transfer syntax {tsyntax.name} ({tsyntax}) cannot be decoded by this server"
        ) from exc
    if not decoder.is_available:
        raise UndecodableCodec(
            f"DICOM transfer syntax {tsyntax.name} ({tsyntax}) cannot be decoded by this server "
            "(no decoder plugin installed)"
        )
    return decoder


def _decode_frames(ds: Any, decoder: Any, budget: Budget) -> tuple[FrameStack | None, _Grey8 | None]:
    """Decode frame by frame (pydicom's ``iter_array``) into a budgeted stack of uint8 frames, or
    of native samples when the clip's range is needed first."""
    stack: FrameStack | None = None
    to8: _Grey8 | None = None
    pi = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    # as_rgb=False: we want what the codec produced; its own reported photometric tells us
    # whether a JPEG decoder already converted YCbCr to RGB (so we never convert twice).
    for arr, info in decoder.iter_array(ds, as_rgb=False):
        pi = str(info.get("photometric_interpretation", pi))
        grey = _dicom_frame_grey(arr, pi, ds)
        if to8 is None:
            to8 = _Grey8(ds, pi, grey.dtype)
            stack = FrameStack(budget, expected=frame_count(ds), reserve_per_pixel=1 if to8.needs_range else 0)
        assert stack is not None
        stack.append(grey if to8.needs_range else to8(grey))
    return stack, to8


def _dicom_decode(ds: Any, tsyntax: Any, budget: Budget) -> tuple[np.ndarray, str]:
    """Decode every frame to uint8 grey with the pydicom pixel backend, within the budget."""
    decoder = _decoder_for(tsyntax)
    try:
        stack, to8 = _decode_frames(ds, decoder, budget)
    except ClipReadError:
        raise
    except (ValueError, EOFError) as exc:
        if "less than expected" in str(exc) or isinstance(exc, EOFError):
            raise TruncatedFile(
                f"file is truncated: the DICOM pixel data is shorter than its header says ({exc})") from exc
        raise CorruptFile(f"DICOM pixel data could not be decoded ({tsyntax.name}): {exc}") from exc
    except AttributeError as exc:  # pydicom: "Missing required element: (0028,0100) 'Bits Allocated'"
        raise CorruptFile(f"DICOM image header is incomplete: {exc}") from exc
    except Exception as exc:  # the plugins raise RuntimeError, KeyError, ...: all mean "cannot decode"
        raise UndecodableCodec(f"DICOM pixel data ({tsyntax.name}) could not be decoded: {_one_line(exc)}") from exc
    if stack is None or to8 is None or not stack.count:
        raise NoFrames("DICOM file contains no frames")
    frames = stack.frames()
    if to8.needs_range:
        native, frames = frames, np.empty(frames.shape, dtype=np.uint8)
        to8.set_range(native)
        for i, frame in enumerate(native):
            frames[i] = to8(frame)
    return frames, to8.pi


def _one_line(exc: BaseException) -> str:
    """Flatten pydicom's multi-line 'all plugins failed' messages into one readable line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines).replace(":;", ":")[:500] or type(exc).__name__


def _parse(fp: BinaryIO, *, header_only: bool) -> Any:
    fp.seek(0)
    try:
        return pydicom.dcmread(fp, force=True, stop_before_pixels=header_only)
    except (InvalidDicomError, EOFError, OSError) as exc:
        raise TruncatedFile(f"file is truncated or not valid DICOM: {exc}") from exc
    except Exception as exc:  # pydicom raises assorted errors on garbage headers
        raise CorruptFile(f"DICOM header could not be parsed: {exc}") from exc


def read_dicom(fp: BinaryIO, budget: Budget) -> tuple[np.ndarray, float | None, dict[str, Any]]:
    """Frames (uint8 [T,H,W]), fps and meta of a DICOM file; ClipReadError subclasses on bad content.

    The header is read and checked against ``budget`` before the pixel data is even read; then
    the pixel data is checked against the header (length, frames), then decoded frame by frame.
    """
    check_declared_budget(_parse(fp, header_only=True), budget)
    ds = _parse(fp, header_only=False)
    tsyntax = _dicom_transfer_syntax(ds)
    cut = describe_cut(ds, fp, deflated=tsyntax.is_deflated)  # before anything converts the raw elements
    meta = _dicom_meta(ds, tsyntax)
    _check_dicom_has_pixels(ds, meta, fp)
    if cut:
        raise refuse_cut(cut, pixel="Pixel Data" in cut)
    check_pixel_data(ds, tsyntax, meta)
    frames, decoded_pi = _dicom_decode(ds, tsyntax, budget)
    meta["decoded_photometric"] = decoded_pi
    return frames, _dicom_fps(ds), meta
