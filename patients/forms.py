from __future__ import annotations

from django import forms

from patients.models import AuditAction, BloodGas, ClinicalInfo, GasUnit, Patient, Role
from patients.protocols import PROTOCOL_CHOICES


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


class ExportForm(forms.Form):
    level = forms.ChoiceField(choices=[("zone", "Zone: one row per patient x exam x zone"),
                                       ("exam", "Exam: one row per exam"),
                                       ("patient", "Patient: one row per patient")])
    format = forms.ChoiceField(choices=[("long", "Long"), ("wide", "Wide (a column per zone; zone or exam level)")])
    window_hours = forms.FloatField(initial=12, min_value=0.1, max_value=336, label="Blood-gas window (hours)")


class OverrideForm(forms.Form):
    score = forms.TypedChoiceField(choices=[(i, str(i)) for i in range(4)], coerce=int)
    reason = forms.CharField(max_length=2000)


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(choices=[("", "any action"), *AuditAction.choices], required=False)
    user = forms.CharField(required=False, max_length=150)
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices)


class PatientForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Patient
        fields = ["code", "sex", "birth_year", "admission_date", "name", "hospital_number"]
        widgets = {"admission_date": forms.DateInput(attrs={"type": "date"})}


class ExamForm(forms.Form):
    acquired_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    protocol = forms.ChoiceField(choices=PROTOCOL_CHOICES)
    device = forms.CharField(max_length=200, required=False)
    probe = forms.CharField(max_length=200, required=False)
    operator = forms.CharField(max_length=200, required=False)
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class ClipUploadForm(forms.Form):
    zone = forms.CharField(max_length=8)
    file = forms.FileField()
    replace = forms.BooleanField(required=False)


class ClinicalInfoForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = ClinicalInfo
        exclude = ["patient", "created_at"]
        widgets = {"recorded_at": forms.DateTimeInput(attrs={"type": "datetime-local"})}


class BloodGasForm(forms.ModelForm):  # type: ignore[type-arg]
    unit = forms.ChoiceField(choices=GasUnit.choices, initial=GasUnit.MMHG,
                             help_text="Unit of PaCO2 and PaO2 as entered")
    paco2 = forms.FloatField(required=False, label="PaCO2")
    pao2 = forms.FloatField(required=False, label="PaO2")

    class Meta:
        model = BloodGas
        fields = ["sampled_at", "ph", "hco3", "lactate", "sao2", "fio2"]
        widgets = {"sampled_at": forms.DateTimeInput(attrs={"type": "datetime-local"})}
