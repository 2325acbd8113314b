"""patients.imaging.core.phantoms: ground truth, rendering speed and the DICOM / MP4 / GIF / PNG writers."""
from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest

from patients.imaging.core.phantoms import (
    FINDINGS,
    JPEG_BASELINE,
    US_MULTIFRAME_SOP_CLASS,
    PhantomClip,
    PhantomSpec,
    phantom_cohort_clip,
    render_phantom,
    write_dicom,
    write_mp4,
)
from patients.imaging.core.reader import read_clip
from tests.patients.imaging.core.phantom_images import write_gif, write_png


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _below_pleura(clip: PhantomClip) -> np.ndarray:
    return clip.sector_mask & (np.nan_to_num(clip.depth_map, nan=-1) > clip.lung_top + 0.03)


@pytest.fixture(scope="module")
def small() -> PhantomClip:
    return phantom_cohort_clip(2, seed=11, n_frames=12, rows=96, columns=112)


# --- rendering and ground truth ------------------------------------------------------------


@pytest.mark.parametrize("geometry", ["convex", "linear"])
def test_shapes_and_types(geometry: str) -> None:
    clip = render_phantom(PhantomSpec(geometry=geometry, n_frames=9, rows=80, columns=100, seed=1))  # type: ignore[arg-type]
    assert clip.frames.shape == (9, 80, 100) and clip.frames.dtype == np.uint8
    assert clip.frame_scores.shape == (9,) and clip.frame_scores.dtype.kind == "i"
    assert set(clip.frame_findings) == set(FINDINGS)
    assert all(v.shape == (9,) and v.dtype == bool for v in clip.frame_findings.values())
    assert clip.sector_mask.shape == (80, 100) and clip.sector_mask.dtype == bool
    outside = ~clip.sector_mask & ~clip.text_mask
    assert clip.frames[:, outside].max() == 0  # black outside the sector, except annotations
    assert clip.frames[:, clip.sector_mask].mean() > 20


def test_deterministic_in_the_seed() -> None:
    a, b = phantom_cohort_clip(1, seed=4, n_frames=6), phantom_cohort_clip(1, seed=4, n_frames=6)
    c = phantom_cohort_clip(1, seed=5, n_frames=6)
    assert np.array_equal(a.frames, b.frames) and not np.array_equal(a.frames, c.frames)


def test_convex_is_a_fan_and_linear_a_rectangle() -> None:
    convex = render_phantom(PhantomSpec(geometry="convex", n_frames=1, rows=120, columns=120))
    linear = render_phantom(PhantomSpec(geometry="linear", n_frames=1, rows=120, columns=120))
    top, bottom = convex.sector_mask[8].sum(), convex.sector_mask[110].sum()
    assert bottom > 2 * top  # widens with depth
    rows = linear.sector_mask.any(axis=1)
    widths = linear.sector_mask[rows].sum(axis=1)
    assert widths.min() == widths.max()  # constant width


@pytest.mark.parametrize("geometry", ["convex", "linear"])
def test_brightness_below_the_pleura_increases_with_score(geometry: str) -> None:
    means = []
    for score in range(4):
        per_seed = []
        for seed in range(3):
            clip = phantom_cohort_clip(score, seed=seed, geometry=geometry, n_frames=8, rows=128, columns=128)  # type: ignore[arg-type]
            assert clip.clip_score == score  # the cohort helper keeps its promise
            per_seed.append(clip.frames[:, _below_pleura(clip)].mean())
        means.append(float(np.mean(per_seed)))
    assert means == sorted(means) and means[3] > means[0] + 30, means


def test_b_line_columns_are_brighter_than_neighbours() -> None:
    spec = PhantomSpec(geometry="linear", score=2, a_lines=False, b_lines=True, n_frames=6, rows=160, columns=200,
                       seed=3, burned_in_text=False)
    clip = render_phantom(spec)
    assert clip.b_lines_u.shape[1] >= 3 and clip.frame_findings["b_lines"].all()
    x0, _y0, x1, _y1 = clip.meta["region"]
    rows = np.flatnonzero(_below_pleura(clip).any(axis=1))
    for t in range(clip.frames.shape[0]):
        profile = clip.frames[t][rows].mean(axis=0)
        for u in clip.b_lines_u[t]:
            col = int(round(x0 + u * (x1 - x0)))
            neighbours = np.concatenate([profile[max(x0, col - 14): col - 6], profile[col + 7: min(x1, col + 15)]])
            assert profile[col] > neighbours.mean() + 40, (t, u)


def test_b_lines_move_with_respiration() -> None:
    spec = PhantomSpec(score=2, b_lines=True, a_lines=False, n_frames=50, seed=2)
    positions = render_phantom(spec).b_lines_u[:, 0]
    assert np.nanmax(positions) - np.nanmin(positions) > 0.02


def test_lung_slides_but_chest_wall_does_not() -> None:
    clip = render_phantom(PhantomSpec(geometry="linear", n_frames=30, rows=128, columns=128, seed=8,
                                      burned_in_text=False))
    depth = np.nan_to_num(clip.depth_map, nan=-1)
    wall = clip.sector_mask & (depth > 0.06) & (depth < clip.pleura_depth - 0.03)
    lung = _below_pleura(clip)
    frames = clip.frames.astype(np.float32)
    wall_change = np.abs(frames[1:, wall] - frames[:-1, wall]).mean()
    lung_change = np.abs(frames[1:, lung] - frames[:-1, lung]).mean()
    assert wall_change < 1.0 < lung_change


def test_intermittent_b_lines_make_frame_scores_vary() -> None:
    for seed in range(20):
        spec = PhantomSpec(score=1, b_lines=True, n_frames=60, seed=seed)
        clip = render_phantom(spec)
        visible = clip.frame_findings["b_lines"]
        assert visible.any() and not visible.all()
        assert np.array_equal(clip.frame_scores, visible.astype(int))  # 1 where a B-line shows, else 0
        assert clip.clip_score == 1  # the label is the maximum frame score
        assert np.isnan(clip.b_lines_u[~visible]).all()


@pytest.mark.parametrize("flags, score, expected", [
    ({"a_lines": True}, 0, 0),
    ({"pleural_irregularity": True}, 1, 1),
    ({"pleural_irregularity": True}, 2, 2),  # broken line
    ({"consolidation": True}, 2, 2),  # subpleural
    ({"consolidation": True}, 3, 3),  # lobar with air bronchograms
    ({"confluent_b_lines": True}, 2, 2),
    ({"confluent_b_lines": True}, 3, 3),  # white lung over >= half the width
    ({"effusion": True, "a_lines": True}, 0, 0),  # effusion does not raise the score
])
def test_frame_scores_follow_the_findings(flags: dict[str, bool], score: int, expected: int) -> None:
    base = dict.fromkeys(FINDINGS, False)
    base.update(flags)
    clip = render_phantom(PhantomSpec(geometry="convex", score=score, n_frames=5, rows=96, columns=96, seed=1, **base))
    assert clip.frame_scores.tolist() == [expected] * 5
    for name, value in flags.items():
        assert clip.frame_findings[name].all() == value


def test_lobar_consolidation_is_tissue_like_with_bright_dots() -> None:
    base = dict.fromkeys(FINDINGS, False)
    clip = render_phantom(PhantomSpec(geometry="linear", score=3, n_frames=3, rows=160, columns=160, seed=5,
                                      burned_in_text=False, **{**base, "consolidation": True}))
    air = render_phantom(PhantomSpec(geometry="linear", score=0, n_frames=3, rows=160, columns=160, seed=5,
                                     burned_in_text=False, **base))
    region = _below_pleura(clip) & (np.nan_to_num(clip.lateral_map) > 0.3) & (np.nan_to_num(clip.lateral_map) < 0.7)
    region &= np.nan_to_num(clip.depth_map) < 0.7
    values = clip.frames[:, region]
    assert values.mean() > air.frames[:, region].mean() + 40  # hepatised, not air
    assert np.percentile(values, 99.8) > 240  # air bronchograms: bright dots


def test_effusion_is_anechoic_above_the_lung() -> None:
    base = dict.fromkeys(FINDINGS, False)
    clip = render_phantom(PhantomSpec(geometry="linear", score=0, n_frames=3, rows=200, columns=160, seed=2,
                                      burned_in_text=False, **{**base, "effusion": True}))
    assert clip.lung_top > clip.pleura_depth + 0.07
    depth = np.nan_to_num(clip.depth_map, nan=-1)
    band = clip.sector_mask & (depth > clip.pleura_depth + 0.03) & (depth < clip.lung_top - 0.03)
    assert clip.frames[:, band].mean() < 8


def test_burned_in_text_is_outside_the_sector() -> None:
    for geometry in ("convex", "linear"):
        clip = phantom_cohort_clip(1, seed=1, geometry=geometry, n_frames=2)  # type: ignore[arg-type]
        assert clip.text_mask.sum() > 50
        assert not (clip.text_mask & clip.sector_mask).any()
        assert (clip.frames[:, clip.text_mask] > 150).all()
        plain = phantom_cohort_clip(1, seed=1, geometry=geometry, n_frames=2, burned_in_text=False)  # type: ignore[arg-type]
        assert not plain.text_mask.any() and plain.frames[:, ~plain.sector_mask].max() == 0


def test_renders_fast() -> None:
    start = time.perf_counter()
    clip = phantom_cohort_clip(3, seed=1, n_frames=150, rows=350, columns=350)
    elapsed = time.perf_counter() - start
    assert clip.frames.shape == (150, 350, 350)
    assert elapsed < 1.0, f"{elapsed:.2f}s"  # measured ~0.15-0.25 s on 2 busy cores


def test_bad_spec_is_refused() -> None:
    with pytest.raises(ValueError, match="score"):
        PhantomSpec(score=4)
    with pytest.raises(ValueError, match="geometry"):
        PhantomSpec(geometry="phased")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="score"):
        phantom_cohort_clip(5, seed=0)


# --- writers -------------------------------------------------------------------------------


def test_dicom_uncompressed_round_trip(tmp_path: Path, small: PhantomClip) -> None:
    path = tmp_path / "p.dcm"
    study = pydicom.uid.generate_uid()
    sop = write_dicom(small, path, patient_name="Doe^Jane", patient_id="H100001", study_uid=study)
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.SOPClassUID == ds.file_meta.MediaStorageSOPClassUID == US_MULTIFRAME_SOP_CLASS
    assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID == sop
    assert ds.StudyInstanceUID == study and ds.SeriesInstanceUID not in (study, sop)
    assert (str(ds.PatientName), ds.PatientID, ds.Modality) == ("Doe^Jane", "H100001", "US")
    assert int(ds.NumberOfFrames) == 12 and (ds.Rows, ds.Columns) == (96, 112)
    assert float(ds.FrameTime) == pytest.approx(40.0) and int(ds.CineRate) == 25
    assert ds.FrameIncrementPointer == pydicom.tag.Tag("FrameTime")
    assert (ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.BitsAllocated) == (1, "MONOCHROME2", 8)
    assert ds.Manufacturer == "LUSWeb Phantom" and ds.ManufacturerModelName and ds.TransducerData
    region = ds.SequenceOfUltrasoundRegions[0]
    assert (region.RegionLocationMinX0, region.RegionLocationMaxY1) == (small.meta["region"][0], small.meta["region"][3])
    assert np.array_equal(ds.pixel_array, small.frames)
    clip = read_clip(path)
    assert np.array_equal(clip.frames, small.frames) and clip.fps == pytest.approx(25.0)
    assert clip.meta["manufacturer"] == "LUSWeb Phantom" and clip.meta["study_instance_uid"] == study
    assert clip.meta["sop_instance_uid"] == sop and clip.meta["transducer"] == ds.TransducerData


def test_dicom_jpeg_baseline_round_trip(small: PhantomClip) -> None:
    buf = io.BytesIO()
    write_dicom(small, buf, jpeg=True)
    ds = pydicom.dcmread(io.BytesIO(buf.getvalue()))
    assert ds.file_meta.TransferSyntaxUID == JPEG_BASELINE and ds["PixelData"].is_undefined_length
    assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.LossyImageCompression == "01"
    assert int(ds.NumberOfFrames) == 12
    clip = read_clip(buf.getvalue())
    assert clip.frames.shape == small.frames.shape and clip.meta["codec"] == "JPEG Baseline (Process 1)"
    assert _psnr(clip.frames, small.frames) > 30


def test_mp4_round_trip(small: PhantomClip) -> None:
    buf = io.BytesIO()
    codec = write_mp4(small, buf)
    clip = read_clip(buf.getvalue())
    assert clip.meta["format"] == "mp4" and clip.meta["codec"] == ("h264" if codec == "libx264" else "mpeg4")
    assert clip.frames.shape == small.frames.shape and clip.fps == pytest.approx(25.0)
    assert _psnr(clip.frames, small.frames) > 30


def test_mp4_with_odd_size_is_padded() -> None:
    odd = phantom_cohort_clip(0, seed=1, n_frames=4, rows=65, columns=81)
    buf = io.BytesIO()
    write_mp4(odd, buf)
    frames = read_clip(buf.getvalue()).frames
    assert frames.shape == (4, 66, 82) and _psnr(frames[:, :65, :81], odd.frames) > 30


def test_gif_and_png(small: PhantomClip) -> None:
    gif, png = io.BytesIO(), io.BytesIO()
    write_gif(small, gif)
    write_png(small, png)
    animated = read_clip(gif.getvalue())
    assert np.array_equal(animated.frames, small.frames) and animated.fps == pytest.approx(25.0)
    still = read_clip(png.getvalue())
    assert np.array_equal(still.frames, small.frames[:1]) and still.fps is None
