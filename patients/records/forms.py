"""Record pages' forms: a patient, an exam, a clinical record, a blood gas."""
from __future__ import annotations

from django import forms

from patients.records.models import BloodGas, ClinicalInfo, GasUnit, Patient
from patients.studies.protocols import PROTOCOL_CHOICES


class PatientForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Patient
        fields = ["code", "sex", "birth_year", "admission_date", "name", "hospital_number"]
        widgets = {"admission_date": forms.DateInput(attrs={"type": "date"})}


class ExamForm(forms.Form):
    acquired_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    protocol = forms.ChoiceField(choices=PROTOCOL_CHOICES)
    other_protocol = forms.BooleanField(
        required=False, label="Use a protocol other than the study's default",
        help_text="Needed for an exam of another protocol: it is then compared with the others by "
                  "normalised scores and shared zones only.")
    device = forms.CharField(max_length=200, required=False)
    probe = forms.CharField(max_length=200, required=False)
    operator = forms.CharField(max_length=200, required=False)
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class ClinicalInfoForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = ClinicalInfo
        exclude = ["patient", "created_at"]
        widgets = {"recorded_at": forms.DateTimeInput(attrs={"type": "datetime-local"})}
        labels = {"spo2": "SpO₂ (%)", "respiratory_rate": "Respiratory rate (/min)", "oxygen_support": "O₂ support"}


class BloodGasForm(forms.ModelForm):  # type: ignore[type-arg]
    unit = forms.ChoiceField(choices=GasUnit.choices, initial=GasUnit.MMHG,
                             help_text="Unit of PaCO₂ and PaO₂ as entered")
    paco2 = forms.FloatField(required=False, label="PaCO₂")
    pao2 = forms.FloatField(required=False, label="PaO₂")

    class Meta:
        model = BloodGas
        fields = ["sampled_at", "ph", "hco3", "lactate", "sao2", "fio2"]
        # The symbols the tables use, not Django's capitalised field names ("Ph", "Hco3").
        labels = {"ph": "pH", "hco3": "HCO₃⁻ (mmol/L)", "lactate": "Lactate (mmol/L)", "sao2": "SaO₂ (%)",
                  "fio2": "FiO₂ (fraction)"}
        widgets = {"sampled_at": forms.DateTimeInput(attrs={"type": "datetime-local"})}
