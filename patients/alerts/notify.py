"""E-mail of a raised alert to the study's clinicians and admins (rules with ``email``), through
Django's mail backend (the console in the demo, locmem in the tests).

Minimal on purpose: the patient's code (never a name), the rule, the message (scores, no dates)
and a link to the exam's page (the patient's for a blood gas). The link is absolute when ``SITE_URL`` (or the first
``CSRF_TRUSTED_ORIGINS`` entry) says where the site is, else a path.
"""
from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mass_mail

from patients.alerts.models import Alert, AlertKind
from patients.alerts.selectors import recipients

logger = logging.getLogger(__name__)


def site_url() -> str:
    explicit = str(getattr(settings, "SITE_URL", "") or "")
    origins = list(getattr(settings, "CSRF_TRUSTED_ORIGINS", []) or [])
    return (explicit or (origins[0] if origins else "")).rstrip("/")


def alert_email(alert: Alert) -> int:
    """Send the alert to each of the study's clinicians and admins; the number of messages sent (0 when
    nobody has an address). A mail server that fails is logged, never raised: the alert stands."""
    to = recipients(alert.study)
    if not to:
        return 0
    rule = AlertKind(alert.kind).label
    page = alert.exam.get_absolute_url() if alert.exam is not None else alert.patient.get_absolute_url()
    link = f"{site_url()}{page}"
    body = (f"Patient {alert.patient.code}, study {alert.study.name}\n"
            f"Rule: {rule}\n{alert.message}\nScore used: {alert.source}\n\n{link}\n")
    try:
        subject = f"[LUSWeb] Alert: {alert.patient.code}: {rule}"
        return send_mass_mail([(subject, body, None, [address]) for address in to])  # one each: no shared list
    except Exception:
        logger.warning("could not e-mail alert %s", alert.pk, exc_info=True)
        return 0
