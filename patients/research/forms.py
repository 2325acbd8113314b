"""The export page's form."""
from __future__ import annotations

from django import forms


class ExportForm(forms.Form):
    level = forms.ChoiceField(choices=[("zone", "Zone: one row per patient x exam x zone"),
                                       ("exam", "Exam: one row per exam"),
                                       ("patient", "Patient: one row per patient")])
    format = forms.ChoiceField(choices=[("long", "Long"), ("wide", "Wide (a column per zone; zone or exam level)")])
    window_hours = forms.FloatField(initial=12, min_value=0.1, max_value=336, label="Blood-gas window (hours)")
