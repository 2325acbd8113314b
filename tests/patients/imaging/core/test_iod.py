"""What the US Image IODs require of the stored copy: Type 2 attributes and the lung's laterality."""
from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from patients.imaging.core.iod import TYPE2, conform_us, zone_laterality


@pytest.mark.parametrize(("zone", "side"), [("R1", "R"), ("l3", "L"), (" L8", "L"), ("", ""), ("A1", "")])
def test_zone_laterality(zone: str, side: str) -> None:
    assert zone_laterality(zone) == side


def test_missing_type2_attributes_come_back_empty_and_values_stay() -> None:
    ds = Dataset()
    ds.Manufacturer, ds.InstanceNumber, ds.StudyID = "Philips", 5, "S7"
    conform_us(ds, zone="R2")
    for keyword in TYPE2:
        assert keyword in ds, keyword
    assert (ds.Manufacturer, ds.InstanceNumber, ds.StudyID) == ("Philips", 5, "S7")
    assert ds.AccessionNumber == "" and ds.PatientOrientation == "" and ds.SeriesNumber in (None, "")
    assert ds.ImageLaterality == "R" and "Laterality" not in ds


def test_laterality_follows_the_zone() -> None:
    empty, valued, unknown = Dataset(), Dataset(), Dataset()
    empty.Laterality, valued.Laterality = "", "L"
    conform_us(empty, zone="L5")
    conform_us(valued, zone="L5")
    conform_us(unknown, zone="")
    # With Image Laterality, an empty series Laterality is not applicable and goes; a device's
    # value stays; without a side, Laterality is present and empty (Type 2C: unknown).
    assert empty.ImageLaterality == "L" and "Laterality" not in empty
    assert valued.ImageLaterality == "L" and valued.Laterality == "L"
    assert "ImageLaterality" not in unknown and unknown.Laterality == ""


def test_an_upload_image_laterality_stays_when_the_zone_names_no_side() -> None:
    ds = Dataset()
    ds.ImageLaterality = "R"
    conform_us(ds, zone="")
    assert ds.ImageLaterality == "R" and "Laterality" not in ds
