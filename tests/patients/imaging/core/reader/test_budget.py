"""patients.imaging.core.reader.budget: the limits, their messages, the frame stack, and every
reader checking the header before decoding and counting while it decodes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from patients.imaging.core.reader import (
    Budget,
    ClipReadError,
    CorruptFile,
    DecodedTooLarge,
    EmptyFile,
    FrameTooLarge,
    NoFrames,
    NoPixelData,
    OverBudget,
    PixelDataMismatch,
    TooManyFrames,
    TruncatedFile,
    UndecodableCodec,
    UnsupportedFormat,
    read_clip,
)
from patients.imaging.core.reader.budget import MB, FrameStack
from tests.hostile import write_avi_declaring, write_black_video, write_gif, write_native, write_png, write_rle
from tests.patients.imaging.core.reader.builders import dicom_bytes, image_ds, mp4_bytes

# --- the budget and its messages -------------------------------------------------------------


def test_defaults_are_the_settings_defaults() -> None:
    assert Budget() == Budget(max_frames=2000, max_pixels_per_frame=1920 * 1080 * 3, max_decoded_bytes=256 * MB)


@pytest.mark.parametrize("field, value", [("max_frames", 0), ("max_pixels_per_frame", -1), ("max_decoded_bytes", 1.5),
                                          ("max_frames", True)])
def test_bad_limits_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"Budget.{field} must be a positive integer"):
        Budget(**{field: value})  # type: ignore[arg-type]


def test_messages_name_the_limit_the_value_and_the_setting() -> None:
    budget = Budget()
    with pytest.raises(TooManyFrames, match=r"^the clip has 3,000 frames \(declared in its header\), over the limit of "
                                            r"2,000 frames \(LUSWEB_MAX_FRAMES\)$"):
        budget.check_declared(frames=3000, width=64, height=64)
    with pytest.raises(FrameTooLarge, match=r"^a frame of the clip is 1921 x 1080 pixels x 3 samples = 6,224,040 "
                                            r"samples, over the limit of 6,220,800 samples per frame "
                                            r"\(LUSWEB_MAX_PIXELS_PER_FRAME\)$"):
        budget.check_declared(frames=1, width=1921, height=1080, samples=3)
    with pytest.raises(DecodedTooLarge, match=r"^the clip would decode to 300.0 MB \(300 frames of 1024 x 1024\), over "
                                              r"the limit of 256 MB of decoded frames \(LUSWEB_MAX_DECODED_MB\)$"):
        budget.check_declared(frames=300, width=1024, height=1024)
    with pytest.raises(DecodedTooLarge, match=r"300 frames of 1024 x 1024, 3 bytes per pixel\)"):
        budget.check_declared(frames=300, width=1024, height=1024, bytes_per_pixel=3)
    # Exactly at every limit is allowed.
    Budget(max_decoded_bytes=2000 * 1920 * 1080).check_declared(frames=2000, width=1920, height=1080, samples=3)


def test_errors_are_clip_read_errors_with_distinct_codes() -> None:
    classes = [ClipReadError, UnsupportedFormat, EmptyFile, CorruptFile, TruncatedFile, NoPixelData, NoFrames,
               UndecodableCodec, PixelDataMismatch, OverBudget, TooManyFrames, FrameTooLarge, DecodedTooLarge]
    assert len({c.code for c in classes}) == len(classes)
    assert all(issubclass(c, OverBudget) for c in (TooManyFrames, FrameTooLarge, DecodedTooLarge))
    assert issubclass(PixelDataMismatch, CorruptFile) and issubclass(OverBudget, ClipReadError)


# --- the frame stack -------------------------------------------------------------------------


def _frames(n: int, shape: tuple[int, int] = (3, 4)) -> list[np.ndarray]:
    return [np.full(shape, i, dtype=np.uint8) for i in range(n)]


@pytest.mark.parametrize("expected", [None, 1, 5, 40])
def test_stack_holds_what_was_appended(expected: int | None) -> None:
    stack = FrameStack(Budget(), expected=expected)
    for frame in _frames(37):
        stack.append(frame)
    out = stack.frames()
    assert out.shape == (37, 3, 4) and out.dtype == np.uint8 and out.flags.c_contiguous
    assert [int(f[0, 0]) for f in out] == list(range(37))


def test_stack_refuses_the_frame_after_the_limit_before_storing_it() -> None:
    stack = FrameStack(Budget(max_frames=10))
    for frame in _frames(10):
        stack.append(frame)
    with pytest.raises(TooManyFrames, match=r"more than 10 frames \(decoding stopped at frame 11\)"):
        stack.append(_frames(1)[0])
    assert stack.count == 10


def test_stack_refuses_past_the_decoded_bytes() -> None:
    stack = FrameStack(Budget(max_decoded_bytes=5 * 12 + 11))  # room for 5 frames of 12 bytes
    for frame in _frames(5):
        stack.append(frame)
    with pytest.raises(DecodedTooLarge, match=r"decoding stopped at frame 6, 0.0 MB\), over the limit of 71 bytes of "
                                              r"decoded frames \(LUSWEB_MAX_DECODED_MB\)"):
        stack.append(_frames(1)[0])
    # A first frame alone over the budget is refused too; the caller's reserve counts.
    with pytest.raises(DecodedTooLarge, match="stopped at frame 1"):
        FrameStack(Budget(max_decoded_bytes=11)).append(_frames(1)[0])
    with pytest.raises(DecodedTooLarge, match="stopped at frame 3"):
        reserved = FrameStack(Budget(max_decoded_bytes=2 * 24 + 1), reserve_per_pixel=1)
        for frame in _frames(3):
            reserved.append(frame)


def test_stack_refuses_a_frame_of_another_shape() -> None:
    stack = FrameStack(Budget())
    stack.append(np.zeros((3, 4), np.uint8))
    with pytest.raises(ValueError, match=r"frame 2 is \(4, 3\), the first was \(3, 4\)"):
        stack.append(np.zeros((4, 3), np.uint8))


def test_empty_stack() -> None:
    assert FrameStack(Budget()).frames().shape == (0, 0, 0)


# --- each reader: the header first, then counting while decoding ------------------------------


def test_video_header_frame_count_and_size(tmp_path: Path) -> None:
    data = mp4_bytes(12)  # 12 frames of 80 x 64
    assert read_clip(data, Budget(max_frames=12)).frames.shape == (12, 64, 80)
    with pytest.raises(TooManyFrames, match=r"12 frames \(declared in its header\), over the limit of 11 frames"):
        read_clip(data, Budget(max_frames=11))
    with pytest.raises(FrameTooLarge, match=r"80 x 64 pixels x 3 samples = 15,360 samples, over the limit of 15,359"):
        read_clip(data, Budget(max_pixels_per_frame=80 * 64 * 3 - 1))
    assert read_clip(data, Budget(max_decoded_bytes=12 * 80 * 64)).frames.shape[0] == 12
    with pytest.raises(DecodedTooLarge, match=r"would decode to 0.1 MB \(12 frames of 80 x 64\)"):
        read_clip(data, Budget(max_decoded_bytes=12 * 80 * 64 - 1))


def test_video_that_declares_fewer_frames_is_counted_while_decoding(tmp_path: Path) -> None:
    path = tmp_path / "lies.avi"
    write_avi_declaring(path, declared=2, width=64, height=48, frames=30, codec="mpeg4")
    clip = read_clip(path)
    assert clip.frames.shape == (30, 48, 64) and clip.meta["declared_frame_count"] == 2
    with pytest.raises(TooManyFrames, match=r"more than 20 frames \(decoding stopped at frame 21\)"):
        read_clip(path, Budget(max_frames=20))
    with pytest.raises(DecodedTooLarge, match=r"decoding stopped at frame 11,"):
        read_clip(path, Budget(max_decoded_bytes=10 * 64 * 48))


def test_black_4k_video_is_refused_from_its_header(tmp_path: Path) -> None:
    path = tmp_path / "4k.mp4"
    write_black_video(path, width=3840, height=2160, frames=3)
    with pytest.raises(FrameTooLarge, match=r"3840 x 2160 pixels x 3 samples"):
        read_clip(path)
    clip = read_clip(path, Budget(max_pixels_per_frame=3840 * 2160 * 3))
    assert clip.frames.shape == (3, 2160, 3840) and clip.frames.max() == 0


def test_images_header_and_pillow_guard(tmp_path: Path) -> None:
    gif, png = tmp_path / "a.gif", tmp_path / "a.png"
    write_gif(gif, side=40, frames=25)
    clip = read_clip(gif)
    assert clip.frames.shape == (25, 40, 40) and clip.fps == pytest.approx(25.0)
    assert int(clip.frames[-1].sum()) == 12 * 255  # every other frame drew one white pixel, kept on the canvas
    with pytest.raises(TooManyFrames, match=r"25 frames \(declared in its header\), over the limit of 24"):
        read_clip(gif, Budget(max_frames=24))
    with pytest.raises(DecodedTooLarge, match=r"25 frames of 40 x 40"):
        read_clip(gif, Budget(max_decoded_bytes=25 * 1600 - 1))
    write_png(png, side=300)
    assert read_clip(png).frames.shape == (1, 300, 300)
    # Pillow's own guard follows the budget: it warns past the limit (the budget refuses) ...
    with pytest.raises(FrameTooLarge, match=r"300 x 300 pixels x 1 sample = 90,000 samples"), \
            pytest.warns(Image.DecompressionBombWarning, match="exceeds limit of 89999 pixels"):
        read_clip(png, Budget(max_pixels_per_frame=89_999))
    # ... and past twice the limit it refuses at open, before the budget's own check.
    with pytest.raises(FrameTooLarge, match=r"a frame of the image has 90,000 pixels, over the limit of 40,000 "):
        read_clip(png, Budget(max_pixels_per_frame=40_000))
    assert Image.MAX_IMAGE_PIXELS == 40_000
    read_clip(png)
    assert Budget().max_pixels_per_frame == Image.MAX_IMAGE_PIXELS


def test_dicom_header_is_checked_before_the_pixel_data(tmp_path: Path) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (6, 20, 30), dtype=np.uint8)
    data = dicom_bytes(image_ds(pixels))
    assert np.array_equal(read_clip(data, Budget(max_frames=6, max_decoded_bytes=pixels.nbytes)).frames, pixels)
    with pytest.raises(TooManyFrames, match=r"6 frames \(declared in its header\)"):
        read_clip(data, Budget(max_frames=5))
    with pytest.raises(FrameTooLarge, match=r"30 x 20 pixels x 1 sample = 600 samples"):
        read_clip(data, Budget(max_pixels_per_frame=599))
    with pytest.raises(DecodedTooLarge, match=r"6 frames of 30 x 20\)"):
        read_clip(data, Budget(max_decoded_bytes=pixels.nbytes - 1))
    rgb = np.random.default_rng(2).integers(0, 256, (2, 20, 30, 3), dtype=np.uint8)
    with pytest.raises(FrameTooLarge, match=r"30 x 20 pixels x 3 samples = 1,800 samples"):
        read_clip(dicom_bytes(image_ds(rgb, photometric="RGB")), Budget(max_pixels_per_frame=1799))


def test_deep_grey_counts_the_samples_kept_until_the_range_is_known() -> None:
    ramp = np.linspace(0, 4095, 64, dtype=np.float64).reshape(1, 8, 8).repeat(4, axis=0)
    data = dicom_bytes(image_ds(ramp, bits=12))  # 16-bit samples, no VOI window: min..max of the clip
    frames = read_clip(data, Budget(max_decoded_bytes=4 * 64 * 3)).frames
    assert frames.min() == 0 and frames.max() == 255
    with pytest.raises(DecodedTooLarge, match=r"4 frames of 8 x 8, 3 bytes per pixel"):
        read_clip(data, Budget(max_decoded_bytes=4 * 64 * 3 - 1))
    ds = image_ds(ramp, bits=12)
    ds.WindowCenter, ds.WindowWidth = 1024, 2048  # a window: each frame goes to uint8 as it comes
    assert read_clip(dicom_bytes(ds), Budget(max_decoded_bytes=4 * 64)).frames.shape == (4, 8, 8)


def test_generated_dicoms_decode_when_they_tell_the_truth(tmp_path: Path) -> None:
    write_rle(tmp_path / "rle.dcm", side=256, frames=3)
    clip = read_clip(tmp_path / "rle.dcm")
    assert clip.frames.shape == (3, 256, 256) and clip.frames.max() == 0 and clip.meta["codec"] == "RLE Lossless"
    write_native(tmp_path / "native.dcm", side=16, frames=4)
    ramp = (np.arange(256) % 251).astype(np.uint8).reshape(16, 16)
    assert np.array_equal(read_clip(tmp_path / "native.dcm").frames, np.stack([ramp] * 4))
