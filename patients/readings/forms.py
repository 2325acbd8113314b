"""The pages' reading forms: a zone reading, a score override (with its reason) and an adjudication."""
from __future__ import annotations

from django import forms

from patients.readings.models import FINDINGS

SCORES = [(i, str(i)) for i in range(4)]


class ReadingForm(forms.Form):
    """The exam page's reading of one zone: score, the findings present, an optional comment."""

    score = forms.TypedChoiceField(choices=SCORES, coerce=int)
    findings = forms.MultipleChoiceField(choices=[(k, k) for k in FINDINGS], required=False)
    comment = forms.CharField(max_length=2000, required=False)


class OverrideForm(forms.Form):
    score = forms.TypedChoiceField(choices=SCORES, coerce=int)
    reason = forms.CharField(max_length=2000)


class AdjudicationForm(forms.Form):
    score = forms.TypedChoiceField(choices=SCORES, coerce=int)
    comment = forms.CharField(max_length=2000, required=False)
