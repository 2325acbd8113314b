"""Hostile input files, made at test time (never committed): decompression bombs, containers and
DICOM headers that lie, files cut one byte short.

The interface, for every suite that feeds them to the platform (the reader's, ingest's, the
end-to-end upload -> worker suite)::

    HOSTILE: dict[str, Hostile]     # name -> how to make it and how it must be refused
    hostile = HOSTILE["h264_4k_300_black"]
    path = hostile.make(folder)     # writes <folder>/<file name> once, then reuses it; returns the path
    hostile.code                    # the ClipReadError / IngestError code with the default budget
    hostile.setting                 # the LUSWEB_* setting the message names (None: a structural refusal)
    hostile.pattern                 # a regex the message matches

``tests/conftest.py`` has the session fixture ``hostile_file(name) -> Path`` (files cached in the
session's pytest tmp dir). Each file is made in a few seconds on a 2-core machine, the largest is
42 MB, and each exceeds the default limits (``LUSWEB_MAX_FRAMES`` 2000,
``LUSWEB_MAX_PIXELS_PER_FRAME`` 1920 x 1080 x 3, ``LUSWEB_MAX_DECODED_MB`` 256) the way the
issue's originals did: what they would decode to is in each ``summary``.
"""
from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FRAMES, PIXELS, DECODED = "LUSWEB_MAX_FRAMES", "LUSWEB_MAX_PIXELS_PER_FRAME", "LUSWEB_MAX_DECODED_MB"
US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"
EXPLICIT_LE = "1.2.840.10008.1.2.1"


@dataclass(frozen=True)
class Hostile:
    """One hostile file: its name on disk, how to write it, and the refusal it must get."""

    filename: str
    write: Callable[[Path], None]
    code: str
    setting: str | None
    pattern: str
    summary: str

    def make(self, folder: Path) -> Path:
        """The file in ``folder``, written on first use (a half-written file is never left there)."""
        path = Path(folder) / self.filename
        if not path.exists():
            partial = path.with_name(path.name + ".part")
            self.write(partial)
            partial.rename(path)
        return path


# --- videos ----------------------------------------------------------------------------------


def write_black_video(path: Path, *, width: int, height: int, frames: int, codec: str = "libx264",
                      container: str = "mp4") -> None:
    """Black frames: H.264 codes all but the first as skipped blocks, so 300 4K frames are 60 kB."""
    import av  # lazy: PyAV only for the video generators

    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "30"}
        black = av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), format="rgb24").reformat(
            format="yuv420p")
        for i in range(frames):
            black.pts = i
            for packet in stream.encode(black):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def write_avi_declaring(path: Path, *, declared: int, width: int, height: int, frames: int, codec: str) -> None:
    """An AVI whose headers (main header's total frames, the video stream header's length) declare
    ``declared`` frames while its index and data hold ``frames``; FFmpeg reports the declared
    count and decodes them all."""
    write_black_video(path, width=width, height=height, frames=frames, codec=codec, container="avi")
    data = bytearray(path.read_bytes())
    avih, strh = data.find(b"avih"), data.find(b"strh")
    assert struct.unpack_from("<I", data, avih + 8 + 16)[0] == frames
    assert struct.unpack_from("<I", data, strh + 8 + 32)[0] == frames
    struct.pack_into("<I", data, avih + 8 + 16, declared)  # MainAVIHeader.dwTotalFrames
    struct.pack_into("<I", data, strh + 8 + 32, declared)  # AVIStreamHeader.dwLength
    path.write_bytes(bytes(data))


# --- images ----------------------------------------------------------------------------------


def write_gif(path: Path, *, side: int, frames: int) -> None:
    """An animated GIF of ``frames`` frames of ``side`` x ``side``: each frame draws one pixel (a
    1 x 1 sub-image, 30 bytes) on the canvas, but a decoder gives back the whole canvas per frame."""
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", side, side, 0xF0, 0, 0) + b"\x00\x00\x00\xff\xff\xff")
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"  # loop forever
    for i in range(frames):
        out += b"\x21\xf9\x04\x04" + struct.pack("<H", 4) + b"\x00\x00"  # keep the canvas, 40 ms
        out += b"\x2c" + struct.pack("<HHHHB", i % side, (i // side) % side, 1, 1, 0)
        # LZW, minimum code size 2: clear (4), the pixel's colour index, end (5), 3 bits each.
        codes = 4 | ((i % 2) << 3) | (5 << 6)
        out += b"\x02\x02" + struct.pack("<H", codes) + b"\x00"
    path.write_bytes(bytes(out + b"\x3b"))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png(path: Path, *, side: int) -> None:
    """A black 8-bit grey PNG of ``side`` x ``side``, compressed row by row (never held whole)."""
    deflate = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte 0 + a row of zeros
    idat = bytearray()
    for _ in range(side):
        idat += deflate.compress(row)
    idat += deflate.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", bytes(idat))
                     + _png_chunk(b"IEND", b""))


# --- DICOM -----------------------------------------------------------------------------------


def us_dataset(*, rows: int, columns: int, frames: int, syntax: str = EXPLICIT_LE) -> object:
    """An 8-bit MONOCHROME2 Ultrasound Multi-frame data set without pixel data."""
    # lazy: pydicom only for the DICOM generators
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(US_MULTIFRAME)
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    ds.SOPClassUID, ds.SOPInstanceUID = US_MULTIFRAME, ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality = generate_uid(), generate_uid(), "US"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, columns, frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    return ds


def _save(ds: object, path: Path, *, cut: int = 0) -> None:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)  # type: ignore[attr-defined]
    data = buf.getvalue()
    path.write_bytes(data[: len(data) - cut])


def rle_constant_frame(rows: int, columns: int) -> bytes:
    """One RLE Lossless frame (8-bit grey, one segment) of zeros, built directly: each row is runs
    of 128 equal bytes (header byte 0x81 = -127, then the value), so 64 MP cost 1 MB to write."""
    assert columns % 128 == 0, "whole runs of 128 only"
    segment = b"\x81\x00" * (columns // 128) * rows
    return struct.pack("<16L", 1, 64, *([0] * 14)) + segment


def write_rle(path: Path, *, side: int, frames: int, declared: int | None = None, cut: int = 0) -> None:
    """RLE Lossless of ``frames`` black ``side`` x ``side`` frames, with a Basic Offset Table, whose
    Number of Frames says ``declared`` (default: the truth); ``cut`` bytes cut off its end."""
    from pydicom.encaps import encapsulate  # lazy: pydicom only for the DICOM generators

    ds = us_dataset(rows=side, columns=side, frames=frames if declared is None else declared, syntax=RLE_LOSSLESS)
    ds.PixelData = encapsulate([rle_constant_frame(side, side)] * frames, has_bot=True)  # type: ignore[attr-defined]
    ds["PixelData"].VR, ds["PixelData"].is_undefined_length = "OB", True  # type: ignore[index]
    _save(ds, path, cut=cut)


def write_native(path: Path, *, side: int, frames: int, pixel_frames: int | None = None, cut: int = 0,
                 trailing_padding: bool = False) -> None:
    """Uncompressed 8-bit grey: ``frames`` declared, ``pixel_frames`` (default: as many) in the
    Pixel Data; ``cut`` bytes cut off the end, optionally after a Data Set Trailing Padding element."""
    ds = us_dataset(rows=side, columns=side, frames=frames)
    count = frames if pixel_frames is None else pixel_frames
    ramp = (np.arange(side * side, dtype=np.uint32) % 251).astype(np.uint8).tobytes()
    ds.PixelData = ramp * count  # type: ignore[attr-defined]
    if trailing_padding:
        ds.DataSetTrailingPadding = b"\x00" * 16  # type: ignore[attr-defined]
    _save(ds, path, cut=cut)


# --- the catalogue -----------------------------------------------------------------------------

_TOO_BIG_FRAME = rf"samples per frame \({PIXELS}\)"
_TOO_MANY = rf"over the limit of 2,000 frames \({FRAMES}\)"
_TOO_MUCH = rf"over the limit of 256 MB of decoded frames \({DECODED}\)"
_MISMATCH = r"refusing a file whose header does not describe its pixel data"
_SHORT = r"^file is truncated: the DICOM pixel data is shorter than its header says: the file ends "

HOSTILE: dict[str, Hostile] = {h.filename.split(".")[0]: h for h in (
    Hostile("h264_4k_300_black.mp4", lambda p: write_black_video(p, width=3840, height=2160, frames=300),
            "frame_too_large", PIXELS, r"3840 x 2160 pixels x 3 samples = 24,883,200 samples.*" + _TOO_BIG_FRAME,
            "the issue's 60 kB H.264 bomb: 300 black 4K frames, 2.4 GB decoded (7.1 GB as RGB)"),
    Hostile("avi_declares_10_holds_2500.avi",
            lambda p: write_avi_declaring(p, declared=10, width=64, height=64, frames=2500, codec="mpeg4"),
            "too_many_frames", FRAMES, r"more than 2,000 frames \(decoding stopped at frame 2,001\)",
            "an AVI whose headers declare 10 frames and hold 2,500 (64 x 64): caught while decoding"),
    Hostile("avi_1080p_declares_10_holds_300.avi",
            lambda p: write_avi_declaring(p, declared=10, width=1920, height=1080, frames=300, codec="libx264"),
            "decoded_too_large", DECODED, r"decoding stopped at frame 130,.*" + _TOO_MUCH,
            "an AVI whose headers declare 10 frames and hold 300 Full HD ones (593 MB decoded): caught while decoding"),
    Hostile("gif_1500_frames_1000sq.gif", lambda p: write_gif(p, side=1000, frames=1500),
            "decoded_too_large", DECODED, r"would decode to 1,430.5 MB \(1,500 frames of 1000 x 1000\).*" + _TOO_MUCH,
            "1,500 frames of 1000 x 1000 in 44 kB: 1.4 GB decoded"),
    Hostile("gif_2500_frames.gif", lambda p: write_gif(p, side=64, frames=2500),
            "too_many_frames", FRAMES, r"2,500 frames \(declared in its header\).*" + _TOO_MANY,
            "2,500 frames of 64 x 64: more frames than the limit"),
    Hostile("png_13000sq.png", lambda p: write_png(p, side=13000),
            "frame_too_large", PIXELS, r"169,000,000 pixels.*" + _TOO_BIG_FRAME,
            "a 13000 x 13000 grey PNG of 170 kB: 169 MB decoded, refused by Pillow's decompression-bomb guard"),
    Hostile("rle_8192sq_40.dcm", lambda p: write_rle(p, side=8192, frames=40),
            "frame_too_large", PIXELS, r"8192 x 8192 pixels x 1 sample = 67,108,864 samples.*" + _TOO_BIG_FRAME,
            "the issue's RLE DICOM: 40 frames of 8192 x 8192 in 42 MB, 2.7 GB decoded"),
    Hostile("rle_declares_2_holds_40.dcm", lambda p: write_rle(p, side=256, frames=40, declared=2),
            "pixel_data_mismatch", None, r"Basic Offset Table lists 40 frames, Number of Frames says 2.*" + _MISMATCH,
            "RLE whose header says 2 frames while its offset table and fragments hold 40"),
    Hostile("rle_declares_40_holds_2.dcm", lambda p: write_rle(p, side=256, frames=2, declared=40),
            "pixel_data_mismatch", None, r"Basic Offset Table lists 2 frames, Number of Frames says 40.*" + _MISMATCH,
            "RLE whose header says 40 frames while its pixel data holds 2"),
    Hostile("dicom_declares_3000_frames.dcm", lambda p: write_native(p, side=64, frames=3000, pixel_frames=2),
            "too_many_frames", FRAMES, r"3,000 frames \(declared in its header\).*" + _TOO_MANY,
            "a header claiming 3,000 frames over 2 frames of pixel data: refused before the pixel data is read"),
    Hostile("dicom_declares_1900_1080sq.dcm", lambda p: write_native(p, side=1080, frames=1900, pixel_frames=1),
            "decoded_too_large", DECODED,
            r"would decode to 2,113.[0-9] MB \(1,900 frames of 1080 x 1080\).*" + _TOO_MUCH,
            "a header claiming 1,900 frames of 1080 x 1080 (2.1 GB) over one frame of pixel data"),
    Hostile("dicom_hides_frames.dcm", lambda p: write_native(p, side=64, frames=1, pixel_frames=3000),
            "pixel_data_mismatch", None, r"room for 2,999 more frames that the header does not show.*" + _MISMATCH,
            "a header claiming one 64 x 64 frame over 3,000 frames of pixel data"),
    Hostile("dicom_truncated_by_one.dcm", lambda p: write_native(p, side=128, frames=30, cut=1),
            "truncated", None, _SHORT + r"1 byte before the end of its Pixel Data element",
            "uncompressed, Pixel Data last, cut one byte short"),
    Hostile("dicom_padding_truncated_by_one.dcm",
            lambda p: write_native(p, side=128, frames=30, cut=1, trailing_padding=True),
            "truncated", None, r"^file is truncated: the DICOM file is cut off: the file ends 1 byte before the end of "
                               r"its last element, \(FFFC,FFFC\)",
            "uncompressed, trailing padding after the Pixel Data, cut one byte short (accepted before issue 15)"),
    Hostile("rle_truncated_by_one.dcm", lambda p: write_rle(p, side=256, frames=4, cut=1),
            "truncated", None, _SHORT + r"inside its Pixel Data element, before the delimiter that closes it",
            "RLE cut one byte short, inside the delimiter that closes its pixel data (accepted before issue 15)"),
)}
