"""Forms of the alerts pages: acknowledging an alert, and a study's rules (one row per rule)."""
from __future__ import annotations

from typing import Any

from django import forms

from patients.alerts.models import AlertKind, AlertRule
from patients.alerts.rules import THRESHOLDS


class AcknowledgeForm(forms.Form):
    comment = forms.CharField(max_length=2000, strip=True)


class RulesForm(forms.Form):
    """``<kind>-enabled``, ``<kind>-threshold`` (rules that have one) and ``<kind>-email`` per rule."""

    def __init__(self, *args: Any, rules: dict[str, AlertRule], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kinds = list(rules)
        for kind, rule in rules.items():
            default, low, high, unit = THRESHOLDS[kind]
            self.fields[f"{kind}-enabled"] = forms.BooleanField(required=False, initial=rule.enabled,
                                                                label=AlertKind(kind).label)
            if default is not None:
                self.fields[f"{kind}-threshold"] = forms.FloatField(
                    initial=rule.threshold, min_value=low, max_value=high, label=f"threshold ({unit})")
            self.fields[f"{kind}-email"] = forms.BooleanField(required=False, initial=rule.email, label="e-mail")

    def rows(self) -> list[dict[str, Any]]:
        """One row per rule for the template: its label and its bound fields."""
        return [{"kind": kind, "label": AlertKind(kind).label, "enabled": self[f"{kind}-enabled"],
                 "threshold": self[f"{kind}-threshold"] if f"{kind}-threshold" in self.fields else None,
                 "email": self[f"{kind}-email"]} for kind in self.kinds]

    def rules(self) -> list[dict[str, Any]]:
        """The cleaned data as the service takes it."""
        out = []
        for kind in self.kinds:
            item: dict[str, Any] = {"kind": kind, "enabled": self.cleaned_data[f"{kind}-enabled"],
                                    "email": self.cleaned_data[f"{kind}-email"]}
            if f"{kind}-threshold" in self.fields:
                item["threshold"] = self.cleaned_data[f"{kind}-threshold"]
            out.append(item)
        return out
