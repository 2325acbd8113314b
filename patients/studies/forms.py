"""Study pages' forms: a new study, its settings, a member, the audit filter."""
from __future__ import annotations

import re
from typing import Any

from django import forms

from patients.audit.models import AuditAction
from patients.studies.models import DicomPatientMatch, Role
from patients.studies.protocols import PROTOCOL_CHOICES


class StudyForm(forms.Form):
    name = forms.CharField(max_length=200)
    protocol = forms.ChoiceField(choices=PROTOCOL_CHOICES, help_text="Lung zones recorded at each exam")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    deidentify = forms.BooleanField(
        required=False, initial=True, label="De-identify uploads",
        help_text="Clean DICOM headers (PS3.15 basic profile) and redact burned-in text outside the sector")
    keep_original = forms.BooleanField(
        required=False, initial=False, label="Also keep the untouched original",
        help_text="Only clinicians and study admins can download it; every download is audited")


class StudySettingsForm(forms.Form):
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    deidentify = StudyForm.base_fields["deidentify"]
    keep_original = StudyForm.base_fields["keep_original"]
    # Receiving from ultrasound machines (DICOM C-STORE, STOW-RS); checked by services.study_update.
    dicom_calling_aets = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, label="Calling AE titles allowed to send",
        help_text="The AE titles of the ultrasound machines that send to this study, one per line or "
                  "comma-separated (up to 16 characters each). Any other caller is refused.")
    dicom_patient_match = forms.ChoiceField(
        choices=DicomPatientMatch.choices, required=False, label="PatientID names the patient's",
        help_text="Which patient field a received instance's PatientID is compared with")
    dicom_zone_tag = forms.CharField(
        max_length=64, required=False, label="Zone read from the DICOM attribute",
        help_text="A DICOM keyword: SeriesDescription, ImageComments, ProtocolName ...")
    dicom_zone_pattern = forms.CharField(
        max_length=200, required=False, strip=False, label="Zone pattern",
        help_text="A regular expression on that attribute's value; its first group (or whole match) is the "
                  "zone code. Instances it cannot read wait in the study's inbox.")

    def clean_dicom_calling_aets(self) -> list[str]:
        text = self.cleaned_data.get("dicom_calling_aets") or ""
        return [t.strip() for t in re.split(r"[,\n]", text) if t.strip()]

    def clean(self) -> dict[str, Any]:
        """A post without a DICOM field leaves that setting as it is (the service checks the rest)."""
        cleaned = super().clean() or {}
        for key in ("dicom_calling_aets", "dicom_patient_match", "dicom_zone_tag", "dicom_zone_pattern"):
            if key not in self.data:
                cleaned.pop(key, None)
        return cleaned


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(choices=[("", "any action"), *AuditAction.choices], required=False)
    user = forms.CharField(required=False, max_length=150)
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


class MemberForm(forms.Form):
    username = forms.CharField(max_length=254, label="Username or e-mail",
                               help_text="An e-mail address without an account creates the account and e-mails "
                                         "them a link to choose their password.")
    role = forms.ChoiceField(choices=Role.choices)
