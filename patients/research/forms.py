"""The export page's form."""
from __future__ import annotations

from typing import Any

from django import forms


class ExportForm(forms.Form):
    level = forms.ChoiceField(choices=[("zone", "Zone: one row per patient x exam x zone"),
                                       ("exam", "Exam: one row per exam"),
                                       ("patient", "Patient: one row per patient")])
    format = forms.ChoiceField(choices=[("long", "Long"),
                                        ("wide", "Wide (zone or exam level only): exam level, one row per exam "
                                                 "with a column per zone; zone level, one row per patient x zone "
                                                 "with a column per exam")],
                               help_text="The patient level has one format: one row per patient.")
    window_hours = forms.FloatField(initial=12, min_value=0.1, max_value=336, label="Blood-gas window (hours)")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("level") == "patient" and data.get("format") == "wide":
            raise forms.ValidationError("The wide format needs the zone or exam level; "
                                        "the patient level is one row per patient.")
        return data
