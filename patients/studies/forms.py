"""Study pages' forms: a new study, its settings, a member, the audit filter."""
from __future__ import annotations

from django import forms

from patients.audit.models import AuditAction
from patients.studies.models import Role
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
