"""The pages' reading forms: a score override (with its reason) and an adjudication."""
from __future__ import annotations

from django import forms


class OverrideForm(forms.Form):
    score = forms.TypedChoiceField(choices=[(i, str(i)) for i in range(4)], coerce=int)
    reason = forms.CharField(max_length=2000)


class AdjudicationForm(forms.Form):
    score = forms.TypedChoiceField(choices=[(i, str(i)) for i in range(4)], coerce=int)
    comment = forms.CharField(max_length=2000, required=False)
