"""De-identification keeps the header valid: Type 2 emptied (not removed), other dates removed,
laterality from the zone, a frame time on every multi-frame copy (pure: no database)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest

from patients.imaging.core import deid
from patients.imaging.core.phantoms import PhantomSpec, render_phantom, write_dicom
from patients.imaging.core.sector import find_sector
from tests.dicom3tools import dciodvfy


def _phantom_with_dates() -> tuple[bytes, np.ndarray]:
    phantom = render_phantom(PhantomSpec(n_frames=4, seed=7, burned_in_text=True))
    buf = io.BytesIO()
    write_dicom(phantom, buf, patient_name="Doe^Jane", patient_id="H100001", study_date="20260304")
    ds = pydicom.dcmread(io.BytesIO(buf.getvalue()))
    ds.AccessionNumber = "ACC-998877"
    ds.AcquisitionDateTime, ds.SeriesDate, ds.AcquisitionTime = "20260304101010", "20260304", "101010"
    ds.Laterality = ""
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue(), phantom.frames


def test_accession_number_is_emptied_and_other_dates_removed(tmp_path: Path) -> None:
    raw, frames = _phantom_with_dates()
    result = deid.deidentify_dataset(raw, secret="s3cret", grey_frames=frames, sector=find_sector(frames),
                                     patient_pseudonym="p1", zone="L4")
    ds = pydicom.dcmread(io.BytesIO(result.data))
    assert "AccessionNumber" in ds and ds.AccessionNumber == "" and b"ACC-998877" not in result.data
    assert ds.StudyDate == "" and ds.ContentDate == "" and b"20260304" not in result.data
    for keyword in ("AcquisitionDateTime", "SeriesDate", "AcquisitionTime"):
        assert keyword not in ds, keyword
    assert ds.ImageLaterality == "L" and "Laterality" not in ds and ds.PatientOrientation == ""
    (tmp_path / "deid.dcm").write_bytes(result.data)
    verdict = dciodvfy(tmp_path / "deid.dcm")
    assert verdict.ok and verdict.iod == "USMultiFrameImage", str(verdict)


@pytest.mark.parametrize(("fps", "frame_time", "cine_rate"), [(30.0, "33.3333", 30), (None, "50", None)])
def test_frames_become_a_multiframe_with_a_frame_time(tmp_path: Path, fps: float | None, frame_time: str,
                                                      cine_rate: int | None) -> None:
    grey = (np.arange(3 * 48 * 64) % 251).astype(np.uint8).reshape(3, 48, 64)
    result = deid.dicom_from_frames(grey, secret="s3cret", source_sha256="ab" * 32, patient_pseudonym="p1",
                                    fps=fps, zone="R6")
    ds = pydicom.dcmread(io.BytesIO(result.data))
    assert ds.FrameTime == frame_time and ds.FrameIncrementPointer == pydicom.tag.Tag("FrameTime")
    assert ds.get("CineRate") == cine_rate and ds.ImageLaterality == "R"
    (tmp_path / "frames.dcm").write_bytes(result.data)
    verdict = dciodvfy(tmp_path / "frames.dcm")
    assert verdict.ok and verdict.iod == "USMultiFrameImage", str(verdict)
