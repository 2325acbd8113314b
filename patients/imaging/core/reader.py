"""Read an uploaded lung-ultrasound clip (DICOM, video or still image) into grey frames.

Pure Python: no Django import, so the scoring worker, the ingest service and the tests share it.

Public contract
---------------
``read_clip(source) -> Clip`` where ``source`` is a path, a bytes-like object or a binary file
object. The format is sniffed from the first bytes (:func:`probe_format`), never from the file
name, because uploads arrive with arbitrary or missing extensions.

``Clip.frames`` is ``uint8 [T, H, W]``: colour is reduced to ITU-R BT.601 luma
(``Y = 0.299 R + 0.587 G + 0.114 B``, rounded), palette colour is expanded through its lookup
table first, MONOCHROME1 is inverted, and data of more than 8 bits is windowed (VOI window when
the file has one, otherwise the clip's own min..max) into 0..255.

Every failure the uploader can cause raises a :class:`ClipReadError` subclass whose message is
fit for a clinician-facing 400 response and whose ``code`` is a stable machine-readable slug.
A missing path (``FileNotFoundError``) is a programming error and is not wrapped.
"""
from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO

import numpy as np

logger = logging.getLogger(__name__)

Source = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]

# Number of leading bytes probe_format needs: 128-byte DICOM preamble + "DICM".
PROBE_BYTES = 132

_META_KEYS = (
    "format", "codec", "transfer_syntax", "photometric", "rows", "columns", "frame_count", "fps",
    "manufacturer", "model", "transducer", "sop_instance_uid", "study_instance_uid", "series_instance_uid",
    "modality", "sop_class_uid", "sop_class_name", "bits_stored", "declared_frame_count",
)


# --- errors --------------------------------------------------------------------------------


class ClipReadError(ValueError):
    """The file cannot be turned into frames. ``str(exc)`` is a user-facing explanation."""

    code = "unreadable"


class UnsupportedFormat(ClipReadError):
    """Not a DICOM, video or image file we recognise."""

    code = "unsupported_format"


class EmptyFile(ClipReadError):
    """Zero bytes."""

    code = "empty_file"


class CorruptFile(ClipReadError):
    """A recognised format whose structure cannot be parsed."""

    code = "corrupt"


class TruncatedFile(CorruptFile):
    """The file ends before its own headers say it should (interrupted upload or copy)."""

    code = "truncated"


class NoPixelData(ClipReadError):
    """A valid DICOM object without an image (structured report, DICOMDIR, waveform ...)."""

    code = "no_pixel_data"


class NoFrames(ClipReadError):
    """A container that holds an image element / video stream but zero frames."""

    code = "no_frames"


class UndecodableCodec(ClipReadError):
    """A recognised file whose compression (transfer syntax or video codec) we cannot decode."""

    code = "undecodable_codec"


# --- result --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    """Decoded clip.

    ``frames``: ``uint8 [T, H, W]`` grey. ``fps``: frames per second, ``None`` for a still or
    when the file does not say. ``meta``: JSON-serialisable description; always has every key of
    ``_META_KEYS`` (``None`` where unknown) plus format-specific extras.
    """

    frames: np.ndarray
    fps: float | None
    meta: dict[str, Any] = field(default_factory=dict)


def _new_meta(fmt: str) -> dict[str, Any]:
    meta: dict[str, Any] = dict.fromkeys(_META_KEYS)
    meta["format"] = fmt
    return meta


def _finish(frames: np.ndarray, fps: float | None, meta: dict[str, Any]) -> Clip:
    """Validate the frame stack and fill the shape-derived meta fields."""
    if frames.ndim != 3 or frames.shape[0] == 0:
        raise NoFrames(f"{meta['format']} file contains no frames")
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    if frames.shape[0] == 1:
        fps = None  # a still has no frame rate, whatever the container claims
    fps = round(float(fps), 6) if fps else None
    meta.update(rows=int(frames.shape[1]), columns=int(frames.shape[2]), frame_count=int(frames.shape[0]), fps=fps)
    return Clip(frames=frames, fps=fps, meta=meta)


# --- format sniffing -----------------------------------------------------------------------


def _looks_like_bare_dicom(head: bytes) -> bool:
    """A DICOM data set without the 128-byte preamble (old ACR-NEMA style or raw network dumps).

    The first element is then a tag of group 0x0002 (file meta) or 0x0008 (identifying),
    little- or big-endian, followed by a two-letter explicit VR or (little-endian only) a
    small implicit length.
    """
    if len(head) < 8:
        return False
    vr = head[4:6]
    explicit = vr.isalpha() and vr.isupper()
    if head[0:2] in (b"\x00\x02", b"\x00\x08") and explicit:
        return True  # Explicit VR Big Endian
    if head[0:2] not in (b"\x02\x00", b"\x08\x00") or head[3] != 0:
        return False
    return explicit or int.from_bytes(head[4:8], "little") < 0x10000


def probe_format(head: bytes) -> str | None:
    """Name the container format from the first bytes of a file (at least 132 for DICOM).

    Returns one of ``'dicom', 'mp4', 'mov', 'avi', 'mpeg', 'gif', 'png', 'jpeg'`` or ``None``.
    Sniffing by magic bytes, never by file name.
    """
    head = bytes(head[:PROBE_BYTES])
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head[4:8] == b"ftyp":
        # ISO base media: Apple QuickTime declares the 'qt  ' major brand, everything else is MP4-ish.
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return "mov"  # pre-ftyp QuickTime files start directly with an atom
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "mpeg"  # MPEG program stream pack header / elementary-stream sequence header
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if _looks_like_bare_dicom(head):
        return "dicom"
    return None


# --- entry point ---------------------------------------------------------------------------


@contextmanager
def _open_source(source: Source) -> Iterator[BinaryIO]:
    """Yield a seekable binary stream positioned at 0 for any accepted source type."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fh:
            yield fh
    else:
        fp: Any = source
        if not (hasattr(fp, "seekable") and fp.seekable()):
            fp = io.BytesIO(fp.read())  # sockets / pipes: decoders need random access
        else:
            fp.seek(0)
        yield fp


def read_clip(source: Source) -> Clip:
    """Decode a DICOM, video (MP4/MOV/AVI/MPEG) or image (GIF/PNG/JPEG) clip to grey frames.

    Raises a :class:`ClipReadError` subclass with a user-facing message for any bad content.
    """
    with _open_source(source) as fp:
        head = fp.read(PROBE_BYTES)
        fp.seek(0)
        if not head:
            raise EmptyFile("file is empty (0 bytes): nothing to read")
        fmt = probe_format(head)
        if fmt is None:
            raise UnsupportedFormat(
                "not a recognised DICOM, video or image file (expected DICOM, MP4, MOV, AVI, MPEG, GIF, PNG or JPEG)"
            )
        if fmt == "dicom":
            return _finish(*_read_dicom(fp))
        if fmt in ("mp4", "mov", "avi", "mpeg"):
            return _finish(*_read_video(fp, fmt))
        return _finish(*_read_image(fp, fmt))


# --- shared pixel helpers ------------------------------------------------------------------


def _luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of ``[..., 3]`` samples: uint8 in -> uint8 out (rounded), else float32."""
    if rgb.dtype == np.uint8:
        # Integer arithmetic: exact rounding and ~3x faster than float on large clips.
        acc = rgb[..., 0] * np.uint32(299) + rgb[..., 1] * np.uint32(587) + rgb[..., 2] * np.uint32(114)
        return ((acc + 500) // 1000).astype(np.uint8)
    f = rgb.astype(np.float32)
    return f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114


def _scale_to_uint8(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map ``lo..hi`` linearly onto 0..255 (clipped, rounded)."""
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.uint8)
    out = (values.astype(np.float32) - np.float32(lo)) * np.float32(255.0 / (hi - lo))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# --- DICOM ---------------------------------------------------------------------------------

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


def _dint(ds: Any, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return None if value is None or value == "" else int(value)
    except (TypeError, ValueError):
        return None


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
            "x0": _dint(item, "RegionLocationMinX0"), "y0": _dint(item, "RegionLocationMinY0"),
            "x1": _dint(item, "RegionLocationMaxX1"), "y1": _dint(item, "RegionLocationMaxY1"),
            "spatial_format": _dint(item, "RegionSpatialFormat"), "data_type": _dint(item, "RegionDataType"),
        })
    return regions or None


def _dicom_meta(ds: Any, tsyntax: Any) -> dict[str, Any]:
    from pydicom.uid import UID

    meta = _new_meta("dicom")
    sop_class = _dstr(ds, "SOPClassUID") or _dstr(ds.get("file_meta") or {}, "MediaStorageSOPClassUID")
    meta.update(
        codec=tsyntax.name if tsyntax else None, transfer_syntax=str(tsyntax) if tsyntax else None,
        photometric=_dstr(ds, "PhotometricInterpretation"),
        manufacturer=_dstr(ds, "Manufacturer"), model=_dstr(ds, "ManufacturerModelName"),
        transducer=_dstr(ds, "TransducerData") or _dstr(ds, "TransducerType"),
        sop_instance_uid=_dstr(ds, "SOPInstanceUID"), study_instance_uid=_dstr(ds, "StudyInstanceUID"),
        series_instance_uid=_dstr(ds, "SeriesInstanceUID"), modality=_dstr(ds, "Modality"),
        sop_class_uid=sop_class, sop_class_name=UID(sop_class).name if sop_class else None,
        bits_stored=_dint(ds, "BitsStored"), declared_frame_count=_dint(ds, "NumberOfFrames"),
        ultrasound_regions=_us_regions(ds),
    )
    return meta


def _dicom_transfer_syntax(ds: Any) -> Any:
    """The file's transfer syntax; for meta-less files infer it from how pydicom parsed them."""
    from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

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
    from pydicom.pixels import apply_color_lut

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
        return _luma(_palette_to_rgb8(arr, ds))
    if arr.ndim == 3 and arr.shape[-1] == 3:
        if pi in _LUMA_FIRST:
            # Y of YCbCr *is* the BT.601 luma of the RGB it encodes: taking it avoids a lossy
            # YCbCr->RGB->Y round trip and can never double-convert.
            return arr[..., 0]
        return _luma(arr)  # RGB, YBR_RCT already undone by the JPEG 2000 decoders, ...
    raise UndecodableCodec(f"DICOM photometric interpretation {pi!r} is not supported")


def _dicom_to_uint8(stack: np.ndarray, ds: Any, pi: str) -> np.ndarray:
    """Bring >8-bit, signed or 1-bit grey into 0..255; invert MONOCHROME1."""
    bits = _dint(ds, "BitsStored") or 8
    if stack.dtype != np.uint8 or bits != 8:
        if pi in _MONO:
            slope = float(ds.get("RescaleSlope") or 1.0)
            values = stack.astype(np.float32) * np.float32(slope) + np.float32(float(ds.get("RescaleIntercept") or 0.0))
            window = _voi_window(ds)
            lo, hi = window if window else (float(values.min()), float(values.max()))
            stack = _scale_to_uint8(values, lo, hi)
        else:  # colour samples: full scale of the stored bits
            stack = _scale_to_uint8(stack, 0.0, float(2**bits - 1))
    if pi == "MONOCHROME1":
        stack = 255 - stack
    return stack


def _voi_window(ds: Any) -> tuple[float, float] | None:
    """The first VOI window (Window Center / Width) as (low, high), if the file has a usable one."""
    try:
        center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
        if center is None or width is None:
            return None
        center = float(center[0] if _is_multi(center) else center)
        width = float(width[0] if _is_multi(width) else width)
    except (TypeError, ValueError, IndexError):
        return None
    return (center - width / 2, center + width / 2) if width > 1 else None


def _dicom_decode(ds: Any, tsyntax: Any) -> tuple[np.ndarray, str]:
    """Decode every frame to grey (native depth) with the pydicom pixel backend."""
    from pydicom.pixels import get_decoder

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
    grey: list[np.ndarray] = []
    pi = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    try:
        # as_rgb=False: we want what the codec produced; its own reported photometric tells us
        # whether a JPEG decoder already converted YCbCr to RGB (so we never convert twice).
        for arr, info in decoder.iter_array(ds, as_rgb=False):
            pi = str(info.get("photometric_interpretation", pi))
            grey.append(_dicom_frame_grey(arr, pi, ds))
    except ClipReadError:
        raise
    except (ValueError, EOFError) as exc:
        if "less than expected" in str(exc) or isinstance(exc, EOFError):
            raise TruncatedFile(f"file is truncated: the DICOM pixel data is shorter than its header says ({exc})") from exc
        raise CorruptFile(f"DICOM pixel data could not be decoded ({tsyntax.name}): {exc}") from exc
    except AttributeError as exc:  # pydicom: "Missing required element: (0028,0100) 'Bits Allocated'"
        raise CorruptFile(f"DICOM image header is incomplete: {exc}") from exc
    except Exception as exc:  # the plugins raise RuntimeError, KeyError, ...: all mean "cannot decode"
        raise UndecodableCodec(f"DICOM pixel data ({tsyntax.name}) could not be decoded: {_one_line(exc)}") from exc
    if not grey:
        raise NoFrames("DICOM file contains no frames")
    return np.stack(grey), pi


def _one_line(exc: BaseException) -> str:
    """Flatten pydicom's multi-line 'all plugins failed' messages into one readable line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines).replace(":;", ":")[:500] or type(exc).__name__


def _read_dicom(fp: BinaryIO) -> tuple[np.ndarray, float | None, dict[str, Any]]:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(fp, force=True)
    except (InvalidDicomError, EOFError, OSError) as exc:
        raise TruncatedFile(f"file is truncated or not valid DICOM: {exc}") from exc
    except Exception as exc:  # pydicom raises assorted errors on garbage headers
        raise CorruptFile(f"DICOM header could not be parsed: {exc}") from exc
    tsyntax = _dicom_transfer_syntax(ds)
    meta = _dicom_meta(ds, tsyntax)
    _check_dicom_has_pixels(ds, meta, fp)
    stack, decoded_pi = _dicom_decode(ds, tsyntax)
    frames = _dicom_to_uint8(stack, ds, decoded_pi)
    meta["decoded_photometric"] = decoded_pi
    return frames, _dicom_fps(ds), meta


# --- video (PyAV / FFmpeg) -----------------------------------------------------------------


def _iso_boxes_truncated(fp: BinaryIO, size: int) -> bool:
    """True when a top-level MP4/MOV box claims to extend past the end of the file."""
    pos = 0
    while pos + 8 <= size:
        fp.seek(pos)
        header = fp.read(16)
        box = int.from_bytes(header[0:4], "big")
        if box == 1 and len(header) >= 16:
            box = int.from_bytes(header[8:16], "big")  # 64-bit largesize
        elif box == 0:
            return False  # box runs to end of file by definition
        if box < 8:
            return False  # not a box structure we understand: let FFmpeg judge
        pos += box
    return pos > size


def _video_truncated(fp: BinaryIO, fmt: str) -> bool:
    """Cheap structural check, so a cut-off upload is reported as such rather than as 'corrupt'."""
    size = fp.seek(0, io.SEEK_END)
    try:
        if fmt in ("mp4", "mov"):
            return _iso_boxes_truncated(fp, size)
        if fmt == "avi":
            fp.seek(4)
            return int.from_bytes(fp.read(4), "little") + 8 > size
        return False
    finally:
        fp.seek(0)


def _video_fps(stream: Any) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            fps = float(rate)
            if 0 < fps < 1000:  # 90000 or 1/0 time bases are container noise, not a frame rate
                return fps
    return None


# 8-bit pixel formats whose first plane is the luma (Y) plane, full or limited ("MPEG") range.
_Y_PLANE_FORMATS = frozenset({
    "yuv420p", "yuv422p", "yuv444p", "yuv411p", "yuv410p", "yuv440p", "nv12", "nv21",
    "yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p", "gray",
})
_FULL_RANGE_FORMATS = frozenset({"yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p", "gray"})
_AVCOL_RANGE_JPEG = 2  # FFmpeg AVColorRange: 0 unspecified, 1 MPEG/limited, 2 JPEG/full


def _limited_to_full(luma: np.ndarray) -> np.ndarray:
    """Limited-range luma 16..235 -> 0..255, rounded; bit-exact with swscale's 'gray' output.

    Integer arithmetic: 2x faster than a numpy lookup table (fancy indexing), and the
    per-frame cost matters at ~2000 decoded frames/s.
    """
    wide = np.clip(luma, 16, 235).astype(np.uint16)
    wide -= 16
    wide *= 255
    wide += 109  # + 219 // 2: round half up
    wide //= 219
    return wide.astype(np.uint8)


def _luma_plane(frame: Any, size: dict[str, int]) -> tuple[np.ndarray, bool]:
    """Copy a frame's luma and say whether it is limited range.

    Copying the Y plane is ~5x faster than ``to_ndarray(format='gray')`` (swscale), which
    dominated exam decoding time; other formats (RGB, 10-bit, palette) still go through swscale.
    """
    name = frame.format.name
    if name in _Y_PLANE_FORMATS and frame.width == size["width"] and frame.height == size["height"]:
        plane = frame.planes[0]
        view = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: frame.height, : frame.width]
        limited = name not in _FULL_RANGE_FORMATS and frame.color_range != _AVCOL_RANGE_JPEG
        return np.array(view), limited
    return frame.to_ndarray(format="gray", **size), False


def _decode_video_frames(container: Any, stream: Any, meta: dict[str, Any]) -> list[np.ndarray]:
    import av

    frames: list[np.ndarray] = []
    size: dict[str, int] = {}
    try:
        for frame in container.decode(stream):
            if not size:
                # Fixed output size keeps the stack rectangular if the stream changes resolution.
                size = {"width": frame.width, "height": frame.height}
            luma, limited = _luma_plane(frame, size)
            frames.append(_limited_to_full(luma) if limited else luma)
    except av.FFmpegError as exc:
        if not frames:
            raise UndecodableCodec(f"video stream ({meta['codec']}) could not be decoded: {exc}") from exc
        # A damaged tail after good frames: keep what decoded, like every desktop player does.
        meta["decode_warning"] = f"decoding stopped after {len(frames)} frames: {exc}"
        logger.warning("video decode stopped early: %s", exc)
    return frames


def _read_video(fp: BinaryIO, fmt: str) -> tuple[np.ndarray, float | None, dict[str, Any]]:
    import av

    meta = _new_meta(fmt)
    if _video_truncated(fp, fmt):
        raise TruncatedFile(f"file is truncated: the {fmt.upper()} file ends before its last section")
    try:
        container = av.open(fp, mode="r")
    except av.FFmpegError as exc:
        raise CorruptFile(f"{fmt.upper()} file is corrupt or truncated and could not be opened: {exc}") from exc
    with container:
        if not container.streams.video:
            raise NoFrames(f"{fmt.upper()} file has no video stream: zero frames to show")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads: ~2x on the 2-core workers
        codec = stream.codec_context.name if stream.codec_context else None
        meta.update(codec=codec, photometric=stream.codec_context.pix_fmt if stream.codec_context else None,
                    declared_frame_count=int(stream.frames) or None)
        frames = _decode_video_frames(container, stream, meta)
        fps = _video_fps(stream)
    if not frames:
        raise NoFrames(f"{fmt.upper()} file contains no decodable frames")
    return np.stack(frames), fps, meta


# --- still and animated images (Pillow) ----------------------------------------------------


def _pil_grey(image: Any) -> np.ndarray:
    """A Pillow frame to uint8 grey; Pillow's 'L' conversion is the BT.601 luma."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return (np.asarray(image, dtype=np.uint32) // 257).astype(np.uint8)
    if mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float32)
        return _scale_to_uint8(values, float(values.min()), float(values.max()))
    if mode not in ("L", "P", "RGB", "RGBA", "LA", "PA", "1", "RGBX"):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV ...
    return np.asarray(image.convert("L"), dtype=np.uint8)


def _gif_fps(durations: list[int]) -> float | None:
    # Browsers show frames of <= 10 ms for 100 ms; a clip should play back as it does there.
    shown = [100 if d <= 10 else d for d in durations if d is not None and d >= 0]
    return 1000.0 * len(shown) / sum(shown) if shown and sum(shown) > 0 else None


def _read_image(fp: BinaryIO, fmt: str) -> tuple[np.ndarray, float | None, dict[str, Any]]:
    from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

    meta = _new_meta(fmt)
    frames: list[np.ndarray] = []
    durations: list[int] = []
    try:
        with Image.open(fp) as image:
            meta.update(codec=image.format, photometric=image.mode)
            for frame in ImageSequence.Iterator(image):
                if fmt == "jpeg":
                    frame = ImageOps.exif_transpose(frame)  # phone photos store rotation in EXIF
                frames.append(_pil_grey(frame))
                durations.append(frame.info.get("duration", 0))
    except Image.DecompressionBombError as exc:
        raise ClipReadError(f"image is too large to process safely: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise CorruptFile(f"{fmt.upper()} file is corrupt and could not be decoded") from exc
    except (OSError, EOFError, SyntaxError, ValueError) as exc:
        if "truncated" in str(exc) or isinstance(exc, EOFError):
            raise TruncatedFile(f"file is truncated: the {fmt.upper()} image data is cut off") from exc
        raise CorruptFile(f"{fmt.upper()} file is corrupt and could not be decoded: {exc}") from exc
    if not frames:
        raise NoFrames(f"{fmt.upper()} file contains no frames")
    if len({f.shape for f in frames}) > 1:
        raise CorruptFile(f"{fmt.upper()} frames have different sizes")
    fps = _gif_fps(durations) if len(frames) > 1 else None
    return np.stack(frames), fps, meta
