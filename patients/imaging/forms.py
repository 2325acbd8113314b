"""The exam page's clip upload form."""
from __future__ import annotations

from django import forms


class ClipUploadForm(forms.Form):
    zone = forms.CharField(max_length=8)
    file = forms.FileField()
    replace = forms.BooleanField(required=False)
