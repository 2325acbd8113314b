"""Alerts pages: a study's alerts and rules (``/studies/<id>/alerts/``), the list's fragment the
live pages fetch (``.../alerts/list/``), the user's open alerts over their studies (``/alerts/``)
and the Acknowledge form's post (``/alerts/<id>/acknowledge/``)."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from lusweb.errors import ServiceError
from patients.alerts import rules as alert_rules
from patients.alerts import selectors, services
from patients.alerts.forms import AcknowledgeForm, RulesForm
from patients.alerts.models import Alert, AlertState
from patients.studies import permissions
from patients.studies.selectors import study_for

RECENT_ACKNOWLEDGED = 20


@login_required
def study_alerts(request: HttpRequest, pk: int) -> HttpResponse:
    """The study's open alerts, the latest acknowledged ones and its rules (study admins change them)."""
    study, role = study_for(user=request.user, pk=pk)
    is_admin = role in permissions.ADMIN_ROLES and not study.archived
    rules = alert_rules.study_rules(study)
    form = RulesForm(request.POST if request.method == "POST" else None, rules=rules)
    if request.method == "POST":
        permissions.require_admin(request.user, study)
        if form.is_valid():
            try:
                alert_rules.alert_rules_update(study=study, by=request.user, rules=form.rules())
            except ServiceError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, "Alert rules saved.")
                return redirect("study-alerts", pk=study.pk)
    acknowledged = selectors.study_alerts(study, state=AlertState.ACKNOWLEDGED)[:RECENT_ACKNOWLEDGED]
    return render(request, "alerts/study_alerts.html", {
        "study": study, "role": role, "is_admin": is_admin, "form": form, "rules": rules.values(),
        "rows": selectors.alert_rows(selectors.study_alerts(study, state=AlertState.OPEN), user=request.user),
        "acknowledged": selectors.alert_rows(acknowledged, user=request.user),
    })


@login_required
@require_GET
def study_alerts_list(request: HttpRequest, pk: int) -> HttpResponse:
    """The study's open alerts as the study page shows them (fetched when the live channel says one
    changed); ``?back=``: the page their Acknowledge forms return to."""
    study, _role = study_for(user=request.user, pk=pk)
    rows = selectors.alert_rows(selectors.study_alerts(study, state=AlertState.OPEN), user=request.user)
    back = request.GET.get("back", "")
    if not back or not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = study.get_absolute_url()
    return render(request, "alerts/_list.html", {"rows": rows, "study": study, "show_study": False, "back": back})


@login_required
def my_alerts(request: HttpRequest) -> HttpResponse:
    """The open alerts of every study the user is a member of."""
    rows = selectors.alert_rows(selectors.user_open_alerts(request.user), user=request.user)
    return render(request, "alerts/my_alerts.html", {"rows": rows, "show_study": True})


@login_required
@require_POST
def alert_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    """The Acknowledge form: a comment is required; back to the page it came from."""
    alert = Alert.objects.select_related("study", "patient").filter(pk=pk).first()
    if alert is None or permissions.role_in_study(request.user, alert.study) is None:
        raise Http404("Not found")
    form = AcknowledgeForm(request.POST)
    try:
        if not form.is_valid():
            raise ServiceError("acknowledging an alert needs a comment", code="missing_comment")
        services.alert_acknowledge(alert=alert, by=request.user, comment=form.cleaned_data["comment"])
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Alert for {alert.patient.code} acknowledged.")
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect("study-alerts", pk=alert.study_id)
