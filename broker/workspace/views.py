"""The operators' workspace: the queues only operators work through, and the tools of last resort.

Every page is for operators only (404 to anyone else). Each change goes
through the service that owns it, which checks the operator's right itself;
a refusal becomes a message on the page.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from broker import incidents, services
from broker.errors import TiersError
from broker.models import Incident, IncidentNotice, IssuedToken, OAuthClient, Organisation, User
from broker.workspace.decorators import operator_only, operator_required, second_factor_missing
from broker.workspace.forms import IncidentForm, ReasonForm
from sharing import services as sharing_services
from sharing.forms import ReviewForm, SignForm
from sharing.models import AccessRequest, Agreement, Dataset, Grant
from sharing.views import RECIPIENTS, purpose_label

OPEN_INCIDENTS = (Incident.State.OPEN, Incident.State.NOTIFIED)


def _pending_organisations() -> QuerySet[Organisation]:
    return Organisation.objects.filter(verification_state=Organisation.Verification.PENDING).order_by("created_at")


def _awaiting_countersignature() -> QuerySet[Agreement]:
    return Agreement.objects.filter(state=Agreement.State.SIGNED).select_related("holder").order_by("holder_signed_at")


def _ethics_queue() -> QuerySet[AccessRequest]:
    return (
        AccessRequest.objects.filter(reviewer=Agreement.ApprovalMode.ETHICS, state=AccessRequest.State.PENDING)
        .select_related("organisation", "agreement__holder")
        .order_by("submitted_at")
    )


def _refused(request: HttpRequest, exc: TiersError) -> None:
    messages.error(request, exc.detail)


@operator_required
def dashboard(request: HttpRequest, operator: User) -> HttpResponse:
    """What waits for an operator, with a count for each queue."""
    by_state = {
        row["verification_state"]: row["n"]
        for row in Organisation.objects.order_by().values("verification_state").annotate(n=Count("pk"))
    }
    counts = {
        "pending_organisations": by_state.get(Organisation.Verification.PENDING, 0),
        "verified_organisations": by_state.get(Organisation.Verification.VERIFIED, 0),
        "excluded_organisations": by_state.get(Organisation.Verification.EXCLUDED, 0),
        "agreements": _awaiting_countersignature().count(),
        "ethics": _ethics_queue().count(),
        "incidents": Incident.objects.filter(state__in=OPEN_INCIDENTS).count(),
        "unsent_notices": IncidentNotice.objects.filter(sent_at__isnull=True).count(),
    }
    return render(request, "workspace/dashboard.html", {"counts": counts})


@operator_only
def second_factor(request: HttpRequest, operator: User) -> HttpResponse:
    """Where an operator proves a second factor; the check itself comes later (docs/operations-workspace.md)."""
    next_url = request.GET.get("next", "")
    if not second_factor_missing(request):
        safe = url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()})
        return redirect(next_url if safe and next_url else "workspace")
    return render(request, "workspace/second_factor.html", status=403)


# --- organisations -------------------------------------------------------------------------------


@operator_required
def organisations(request: HttpRequest, operator: User) -> HttpResponse:
    """Applications to verify or reject, and the organisations that may be excluded."""
    context = {
        "pending": _pending_organisations().prefetch_related("memberships__user"),
        "verified": Organisation.objects.verified().order_by("name"),
        "ended": Organisation.objects.filter(
            verification_state__in=[Organisation.Verification.REJECTED, Organisation.Verification.EXCLUDED]
        ).order_by("name"),
    }
    return render(request, "workspace/organisations.html", context)


@operator_required
@require_POST
def organisation_verify(request: HttpRequest, operator: User, slug: str) -> HttpResponse:
    organisation = get_object_or_404(Organisation, slug=slug)
    try:
        services.organisation_verify(actor=operator, organisation=organisation)
    except TiersError as exc:
        _refused(request, exc)
    else:
        messages.success(request, _("%(name)s is verified; its contact is told.") % {"name": organisation.name})
    return redirect("workspace-organisations")


@operator_required
@require_POST
def organisation_reject(request: HttpRequest, operator: User, slug: str) -> HttpResponse:
    organisation = get_object_or_404(Organisation, slug=slug)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say why the application is rejected: the applicant is told."))
        return redirect("workspace-organisations")
    try:
        services.organisation_reject(actor=operator, organisation=organisation, reason=form.cleaned_data["reason"])
    except TiersError as exc:
        _refused(request, exc)
    else:
        messages.success(request, _("The application of %(name)s is rejected.") % {"name": organisation.name})
    return redirect("workspace-organisations")


@operator_required
def organisation_exclude(request: HttpRequest, operator: User, slug: str) -> HttpResponse:
    """What excluding an organisation stops, and the form to do it with the reason (DGA Art. 12(g))."""
    organisation = get_object_or_404(Organisation, slug=slug)
    form = ReasonForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            services.organisation_exclude(actor=operator, organisation=organisation, reason=form.cleaned_data["reason"])
        except TiersError as exc:
            form.add_error(None, exc.detail)
        else:
            messages.success(request, _("%(name)s is excluded: its access has stopped.") % {"name": organisation.name})
            return redirect("workspace-organisations")
    live_tokens = IssuedToken.objects.filter(
        client__organisation=organisation, revoked_at__isnull=True, expires_at__gt=timezone.now()
    )
    context = {
        "organisation": organisation,
        "form": form,
        "clients": OAuthClient.objects.filter(organisation=organisation, disabled_at__isnull=True).count(),
        "tokens": live_tokens.count(),
        "grants": Grant.objects.filter(organisation=organisation, state=Grant.State.ACTIVE).count(),
        "excluded": organisation.verification_state == Organisation.Verification.EXCLUDED,
    }
    return render(request, "workspace/exclude.html", context)


# --- agreements ----------------------------------------------------------------------------------


@operator_required
def agreements(request: HttpRequest, operator: User) -> HttpResponse:
    """Agreements the holder signed, waiting for Tiers' countersignature."""
    return render(
        request,
        "workspace/agreements.html",
        {"agreements": _awaiting_countersignature().prefetch_related("datasets")},
    )


@operator_required
@require_POST
def agreement_countersign(request: HttpRequest, operator: User, agreement_id: uuid.UUID) -> HttpResponse:
    """Countersign exactly the content hash the page showed."""
    agreement = get_object_or_404(Agreement, pk=agreement_id)
    form = SignForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Read the text in force and sign it again."))
        return redirect("workspace-agreements")
    try:
        sharing_services.agreement_countersign(
            by=operator, agreement=agreement, content_hash=form.cleaned_data["content_hash"]
        )
    except TiersError as exc:
        _refused(request, exc)
    else:
        messages.success(request, _("“%(title)s” is countersigned: it is in force.") % {"title": agreement.title})
    return redirect("workspace-agreements")


# --- ethics review -------------------------------------------------------------------------------


def _ethics_row(access_request: AccessRequest, datasets: dict[str, Dataset]) -> dict[str, Any]:
    items = [{"dataset": datasets.get(str(item["dataset"])), "fields": item["fields"]} for item in access_request.items]
    present = [sharing_services.RequestItem(dataset=i["dataset"], fields=i["fields"]) for i in items if i["dataset"]]
    return {
        "request": access_request,
        "items": items,
        "purpose": purpose_label(access_request.purpose),
        "recipient": RECIPIENTS.get(access_request.recipient_category, access_request.recipient_category),
        "coverage_now": sharing_services.request_coverage(
            access_request.agreement, present, access_request.purpose, access_request.recipient_category
        ),
    }


@operator_required
def ethics(request: HttpRequest, operator: User) -> HttpResponse:
    """Requests whose agreement leaves the decision to the operator's ethics review."""
    pending = list(_ethics_queue())
    ids = {str(item["dataset"]) for access_request in pending for item in access_request.items}
    datasets = {str(dataset.pk): dataset for dataset in Dataset.objects.filter(pk__in=ids).select_related("holder")}
    rows = [_ethics_row(access_request, datasets) for access_request in pending]
    return render(request, "workspace/ethics.html", {"rows": rows})


@operator_required
@require_POST
def ethics_decide(request: HttpRequest, operator: User, request_id: uuid.UUID) -> HttpResponse:
    """Approve (creating the grants) or reject, with the reason."""
    access_request = get_object_or_404(AccessRequest, pk=request_id, reviewer=Agreement.ApprovalMode.ETHICS)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose approve or reject, and give the reason for your decision."))
        return redirect("workspace-ethics")
    approve = form.cleaned_data["decision"] == "approve"
    try:
        sharing_services.access_request_review(
            by=operator, access_request=access_request, approve=approve, reason=form.cleaned_data["reason"]
        )
    except TiersError as exc:
        _refused(request, exc)
    else:
        name = access_request.organisation.name
        if approve:
            messages.success(request, _("Request of %(name)s approved: its grants are active.") % {"name": name})
        else:
            messages.success(request, _("Request of %(name)s rejected.") % {"name": name})
    return redirect("workspace-ethics")


# --- incidents -----------------------------------------------------------------------------------


@operator_required
def incident_list(request: HttpRequest, operator: User) -> HttpResponse:
    """Incidents, newest first, and the form to record one."""
    form = IncidentForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            incident = incidents.incident_record(actor=operator, **form.cleaned_data)
        except TiersError as exc:
            for problem in exc.extensions.get("errors") or [{"detail": exc.detail}]:
                field = problem.get("field")
                form.add_error(field if field in form.fields else None, problem["detail"])
        else:
            messages.success(request, _("Incident recorded. Notify those concerned from its page."))
            return redirect("workspace-incident", incident_id=incident.pk)
    listed = Incident.objects.select_related("organisation").annotate(
        notices_total=Count("notices"), notices_sent=Count("notices", filter=Q(notices__sent_at__isnull=False))
    )
    return render(request, "workspace/incidents.html", {"incidents": listed[:100], "form": form})


def _incident(incident_id: uuid.UUID) -> Incident:
    incident = Incident.objects.select_related("organisation", "recorded_by").filter(pk=incident_id).first()
    if incident is None:
        raise Http404("No such incident.")
    return incident


@operator_required
def incident_detail(request: HttpRequest, operator: User, incident_id: uuid.UUID) -> HttpResponse:
    """One incident: what happened, its grants, whom it concerns, and the notices sent."""
    incident = _incident(incident_id)
    holders, citizens = incidents.incident_recipients(incident)
    notices = incident.notices.all()
    context = {
        "incident": incident,
        "grants": incident.grants.select_related("organisation", "dataset__holder"),
        "holders": Organisation.objects.filter(pk__in=holders).order_by("name"),
        "citizen_count": len(citizens),
        "notices": {
            "holders": notices.filter(organisation__isnull=False).count(),
            "citizens": notices.filter(citizen__isnull=False).count(),
            "sent": notices.filter(sent_at__isnull=False).count(),
            "total": notices.count(),
        },
    }
    return render(request, "workspace/incident_detail.html", context)


@operator_required
@require_POST
def incident_notify(request: HttpRequest, operator: User, incident_id: uuid.UUID) -> HttpResponse:
    incident = _incident(incident_id)
    try:
        incidents.incident_notify(actor=operator, incident=incident)
    except TiersError as exc:
        _refused(request, exc)
    else:
        messages.success(request, _("Notices written; Tiers sends them by e-mail."))
    return redirect("workspace-incident", incident_id=incident.pk)


@operator_required
@require_POST
def incident_close(request: HttpRequest, operator: User, incident_id: uuid.UUID) -> HttpResponse:
    incident = _incident(incident_id)
    try:
        incidents.incident_close(actor=operator, incident=incident)
    except TiersError as exc:
        _refused(request, exc)
    else:
        messages.success(request, _("Incident closed."))
    return redirect("workspace-incident", incident_id=incident.pk)
