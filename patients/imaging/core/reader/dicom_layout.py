"""What a DICOM header says its pixel data is, checked against the budget and against the bytes.

* :func:`check_declared_budget`: Rows x Columns x Samples per Pixel x Number of Frames (and the
  bytes per pixel decoding keeps) against the :class:`~patients.imaging.core.reader.budget.Budget`,
  from a header read without its pixel data.
* :func:`describe_cut`: pydicom does not raise when a file ends inside its last element (it keeps a
  value shorter than the element's declared length, or an encapsulated Pixel Data whose closing
  delimiter is cut), so a file cut one byte short would be accepted.
* :func:`check_pixel_data`: native pixel data must hold what Rows x Columns x Samples x Bits x
  Frames needs (shorter is truncated; a whole frame or more beyond it is a header that hides
  frames), and encapsulated pixel data must hold as many frames as Number of Frames says, as
  far as its offset tables or fragment count tell.
"""
from __future__ import annotations

from struct import unpack_from
from typing import Any, BinaryIO

from patients.imaging.core.reader.budget import Budget
from patients.imaging.core.reader.clip import CorruptFile, PixelDataMismatch, TruncatedFile

UNDEFINED = 0xFFFFFFFF
_ITEM, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE0DD
_MONO = ("MONOCHROME1", "MONOCHROME2")
RLE_LOSSLESS = "1.2.840.10008.1.2.5"


def header_int(ds: Any, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return None if value is None or value == "" else int(value)
    except (TypeError, ValueError):
        return None


def frame_count(ds: Any) -> int:
    """Number of Frames, 1 when absent (a single-frame image)."""
    return header_int(ds, "NumberOfFrames") or 1


def voi_window(ds: Any) -> tuple[float, float] | None:
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


def _is_multi(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue"


def needs_clip_range(ds: Any, photometric: str, *, uint8: bool) -> bool:
    """Grey data that is not plain 8-bit unsigned (deeper, signed or 1-bit) and has no VOI window
    is scaled by the clip's own min..max, so its native samples are kept until the last frame is
    decoded. ``uint8``: whether the decoder gives uint8 samples."""
    bits = header_int(ds, "BitsStored") or 8
    return photometric in _MONO and (not uint8 or bits != 8) and voi_window(ds) is None


def check_declared_budget(head: Any, budget: Budget) -> None:
    """The header's frame size, frame count and decoded size against the budget (no pixel data read)."""
    rows, columns = header_int(head, "Rows"), header_int(head, "Columns")
    if not rows or not columns or rows < 0 or columns < 0:
        return  # not an image header: the pixel-data checks name the problem
    frames = header_int(head, "NumberOfFrames")
    allocated = header_int(head, "BitsAllocated") or 8
    itemsize = 1 if allocated <= 8 else 2 if allocated <= 16 else 4
    uint8 = itemsize == 1 and not header_int(head, "PixelRepresentation")
    keep = 1 + itemsize if needs_clip_range(head, str(head.get("PhotometricInterpretation", "")), uint8=uint8) else 1
    budget.check_declared(frames=frames if frames and frames > 0 else 1, width=columns, height=rows,
                          samples=header_int(head, "SamplesPerPixel") or 1, bytes_per_pixel=keep)


def describe_cut(ds: Any, fp: BinaryIO, *, deflated: bool) -> str | None:
    """Why the file ends before its last element does, or ``None``. Call before anything reads
    the elements' values (pydicom keeps the raw, unconverted element until then)."""
    tags = list(ds.keys())
    if not tags or deflated:  # deflated: positions are in the inflated stream, not the file
        return None
    last = ds.get_item(tags[-1])
    length, value, tell = getattr(last, "length", None), getattr(last, "value", None), getattr(last, "value_tell", None)
    if not isinstance(value, bytes) or length is None or tell is None:
        return None
    name = "its Pixel Data element" if tags[-1] == 0x7FE00010 else f"its last element, {tags[-1]}"
    size = fp.seek(0, 2)
    if length == UNDEFINED:
        end = tell + len(value) + 8
        fp.seek(end - 8)
        closing = fp.read(8)
        fp.seek(0)
        if closing not in (b"\xfe\xff\xdd\xe0\x00\x00\x00\x00", b"\xff\xfe\xe0\xdd\x00\x00\x00\x00"):
            return f"the file ends inside {name}, before the delimiter that closes it ({size - tell:,} bytes of it)"
        return None
    fp.seek(0)
    if len(value) < length:
        short = length - len(value)
        return (f"the file ends {short:,} byte{'s' if short != 1 else ''} before the end of {name} "
                f"({len(value):,} of {length:,} bytes)")
    if 0 < size - (tell + length) < 8:  # pydicom drops an element header the file ends inside
        return f"the file ends inside the header of an element after {name}"
    return None


def refuse_cut(reason: str, *, pixel: bool) -> TruncatedFile:
    what = "the DICOM pixel data is shorter than its header says" if pixel else "the DICOM file is cut off"
    return TruncatedFile(f"file is truncated: {what}: {reason}")


def check_pixel_data(ds: Any, tsyntax: Any, meta: dict[str, Any]) -> None:
    """Refuse pixel data that does not match what the header describes (see the module doc)."""
    if "PixelData" not in ds:
        return
    if tsyntax.is_encapsulated:
        _check_fragments(ds, tsyntax)
    else:
        _check_native_length(ds, meta)


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _native_frame_bits(ds: Any) -> tuple[int, str] | None:
    """Bits of one uncompressed frame and how the header gives them (words for a message)."""
    rows, columns = header_int(ds, "Rows"), header_int(ds, "Columns")
    samples, bits = header_int(ds, "SamplesPerPixel") or 1, header_int(ds, "BitsAllocated")
    if not rows or not columns or not bits or rows < 0 or columns < 0 or bits < 0:
        return None  # the decoder names what is missing
    if str(ds.get("PhotometricInterpretation", "")) == "YBR_FULL_422":
        samples, words = 2, "2 samples (YBR_FULL_422)"  # chroma at half the horizontal resolution
    else:
        words = _plural(samples, "sample")
    return rows * columns * samples * bits, f"{rows} x {columns} pixels x {words} x {_plural(bits, 'bit')}"


def native_pixel_bytes(ds: Any) -> int | None:
    """Bytes of uncompressed pixel data the header describes (before padding to even), if it says."""
    geometry = _native_frame_bits(ds)
    return None if geometry is None else -(-geometry[0] * frame_count(ds) // 8)


def _check_native_length(ds: Any, meta: dict[str, Any]) -> None:
    """Uncompressed: the Pixel Data length against Rows x Columns x Samples x Bits x Frames."""
    geometry = _native_frame_bits(ds)
    if geometry is None:
        return
    frame_bits, words = geometry
    frames = frame_count(ds)
    expected = -(-frame_bits * frames // 8)  # 1-bit data packs the frames end to end
    actual = len(ds.PixelData)
    described = f"{_plural(frames, 'frame')} of {words} = {_plural(expected, 'byte')}"
    if actual < expected:
        raise refuse_cut(f"it holds {actual:,} bytes, its header describes {described}", pixel=True)
    excess = actual - expected - expected % 2  # an odd length is padded to even
    if excess <= 0:
        return
    frame_bytes = -(-frame_bits // 8)
    if excess >= frame_bytes:
        raise PixelDataMismatch(
            f"the DICOM pixel data holds {actual:,} bytes, {excess:,} more than its header describes ({described}): "
            f"room for {_plural(excess // frame_bytes, 'more frame')} that the header does not show; refusing a file "
            "whose header does not describe its pixel data"
        )
    meta["pixel_data_excess_bytes"] = excess  # less than a frame of trailing bytes: noted, not shown


def _walk_items(data: bytes, endian: str) -> tuple[int, int]:
    """(entries of the Basic Offset Table, number of fragments) of encapsulated pixel data."""
    pos, items, table = 0, 0, 0
    while pos + 8 <= len(data):
        group, element, length = unpack_from(f"{endian}HHL", data, pos)
        tag = group << 16 | element
        if tag == _SEQUENCE_END:
            break
        if tag != _ITEM or length == UNDEFINED:
            raise CorruptFile(f"DICOM encapsulated pixel data is corrupt: unexpected item ({group:04X},{element:04X}) "
                              f"at byte {pos:,} of the pixel data")
        if items == 0:
            table = length // 4
        items += 1
        pos += 8 + length
    if pos > len(data) or (items == 0 and data):
        raise refuse_cut("its last fragment is cut off", pixel=True)
    return table, max(items - 1, 0)


def _check_fragments(ds: Any, tsyntax: Any) -> None:
    """Encapsulated: the frames that the offset tables or fragments hold against Number of Frames."""
    frames = frame_count(ds)
    table, fragments = _walk_items(ds.PixelData, "<" if tsyntax.is_little_endian else ">")
    extended = ds.get("ExtendedOffsetTable")
    if extended:
        found, source = len(extended) // 8, f"its Extended Offset Table lists {_plural(len(extended) // 8, 'frame')}"
    elif table:
        found, source = table, f"its Basic Offset Table lists {_plural(table, 'frame')}"
    elif fragments < frames or (str(tsyntax) == RLE_LOSSLESS and fragments != frames):
        # RLE has one fragment per frame; the other syntaxes at least one.
        found, source = fragments, f"it holds {_plural(fragments, 'fragment')}"
    else:
        return
    if found != frames:
        raise PixelDataMismatch(
            f"the DICOM pixel data does not match its header: {source}, Number of Frames says {frames:,}; "
            "refusing a file whose header does not describe its pixel data"
        )
