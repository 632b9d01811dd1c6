"""Portal pages of data sharing, under /org/<slug>/: datasets, agreements, reviews, requests and grants.

Every page is for the organisation's members and the operators; anyone else is
told it does not exist. Each change goes through a sharing service, which
checks the caller's rights itself; a refusal becomes a message on the page.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from functools import wraps
from typing import IO, Any, Concatenate, ParamSpec, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Prefetch, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from broker import policy as org_policy
from broker.errors import TiersError
from broker.models import Organisation, User
from broker.policy import OrgAction
from consent.models import ConsentModule
from sharing import ingest, policy, services
from sharing.forms import (
    AccessRequestForm,
    AgreementForm,
    DatasetForm,
    ReasonForm,
    ReviewForm,
    SignForm,
    UploadForm,
    end_of_day,
    start_of_day,
)
from sharing.models import AccessRequest, Agreement, Dataset, Grant
from sharing.vocabulary import GENERAL_INTEREST_PURPOSES

P = ParamSpec("P")
ERRORS_SHOWN = 20  # the first invalid rows of an upload shown on its dataset's page
UPLOADS_SHOWN = 20
RECIPIENTS = dict(Organisation.RecipientCategory.choices)


def org_page(
    view: Callable[Concatenate[HttpRequest, User, Organisation, P], HttpResponse],
) -> Callable[Concatenate[HttpRequest, str, P], HttpResponse]:
    """Log in first; members and operators get the organisation, anyone else a 404. The view gets both."""

    @wraps(view)
    def wrapped(request: HttpRequest, slug: str, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        user = request.user
        organisation = Organisation.objects.filter(slug=slug).first()
        if (
            not isinstance(user, User)
            or organisation is None
            or not org_policy.can(user, OrgAction.VIEW_PRIVATE, organisation)
        ):
            raise Http404("No such organisation.")
        return view(request, user, organisation, *args, **kwargs)

    return login_required(wrapped)


def _one(queryset: QuerySet[Any], object_id: uuid.UUID) -> Any:
    """The object among those the queryset allows (the URL's converter made the id a UUID), or 404."""
    found = queryset.filter(pk=object_id).first()
    if found is None:
        raise Http404("Not found.")
    return found


def _allowed(check: Callable[..., None], *args: Any) -> bool:
    """Whether a sharing.policy check lets this through: for showing a button only where it works."""
    try:
        check(*args)
    except TiersError:
        return False
    return True


def _refusal(request: HttpRequest, exc: TiersError) -> None:
    messages.error(request, exc.detail)


def purpose_label(term: str) -> str:
    label = GENERAL_INTEREST_PURPOSES.get(term)
    return f"{label} ({term})" if label else term


# --- datasets ------------------------------------------------------------------------------------


def _datasets(user: User, organisation: Organisation) -> QuerySet[Dataset]:
    return policy.datasets_visible_to(user).filter(holder=organisation)


@org_page
def dataset_list(request: HttpRequest, user: User, organisation: Organisation) -> HttpResponse:
    """The holder's datasets, with how many records Tiers holds of each hosted one."""
    datasets = _datasets(user, organisation).annotate(record_count=Count("records"))
    context = {
        "organisation": organisation,
        "datasets": datasets,
        "can_manage": org_policy.can(user, OrgAction.MANAGE_DATASETS, organisation),
    }
    return render(request, "sharing/dataset_list.html", context)


@org_page
def dataset_register(request: HttpRequest, user: User, organisation: Organisation) -> HttpResponse:
    """Register a dataset: its schema, where it stays, and what in it is personal."""
    form = DatasetForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            dataset = services.dataset_register(by=user, holder=organisation, **form.cleaned_data)
        except TiersError as exc:
            form.add_error(None, exc.detail)
        else:
            messages.success(request, _("Dataset “%(title)s” registered.") % {"title": dataset.title})
            return redirect("sharing-dataset-detail", slug=organisation.slug, dataset_id=dataset.pk)
    context = {
        "organisation": organisation,
        "form": form,
        "can_manage": org_policy.can(user, OrgAction.MANAGE_DATASETS, organisation),
    }
    return render(request, "sharing/dataset_register.html", context)


@org_page
def dataset_detail(request: HttpRequest, user: User, organisation: Organisation, dataset_id: uuid.UUID) -> HttpResponse:
    """One dataset: its schema, its uploads with their first errors, and the forms to upload or withdraw."""
    dataset: Dataset = _one(_datasets(user, organisation), dataset_id)
    form = UploadForm(request.POST, request.FILES) if request.method == "POST" else UploadForm()
    if form.is_bound and form.is_valid():
        try:
            upload = ingest.upload_receive(
                by=user,
                dataset=dataset,
                body=cast(IO[bytes], form.cleaned_data["file"]),
                content_type=form.content_type,
                on_error=form.cleaned_data["on_error"],
                replace=form.cleaned_data["replace"],
            )
        except TiersError as exc:
            form.add_error("file", exc.detail)
        else:
            text = _("File received (%(size)s bytes); Tiers is checking and loading it. Reload to see the result.")
            messages.success(request, text % {"size": upload.size})
            return redirect("sharing-dataset-detail", slug=organisation.slug, dataset_id=dataset.pk)
    uploads = [
        {
            "upload": sent,
            "errors": list(sent.errors.order_by("line", "pk")[:ERRORS_SHOWN]) if sent.rows_rejected else [],
        }
        for sent in policy.uploads_visible_to(user, dataset)[:UPLOADS_SHOWN]
    ]
    can_manage = _allowed(policy.require_dataset_admin, user, dataset)
    context = {
        "organisation": organisation,
        "dataset": dataset,
        "uploads": uploads,
        "record_count": dataset.records.count() if dataset.mode == Dataset.Mode.HOSTED else None,
        "form": form,
        "can_upload": can_manage and dataset.mode == Dataset.Mode.HOSTED and dataset.state == Dataset.State.ACTIVE,
        "can_withdraw": can_manage and dataset.state == Dataset.State.ACTIVE,
    }
    return render(request, "sharing/dataset_detail.html", context)


@org_page
@require_POST
def dataset_withdraw(
    request: HttpRequest, user: User, organisation: Organisation, dataset_id: uuid.UUID
) -> HttpResponse:
    """Stop offering a dataset, with the reason; its grants end as each agreement says."""
    dataset: Dataset = _one(_datasets(user, organisation), dataset_id)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say why the dataset is withdrawn."))
    else:
        try:
            services.dataset_withdraw(by=user, dataset=dataset, reason=form.cleaned_data["reason"])
        except TiersError as exc:
            _refusal(request, exc)
        else:
            messages.success(request, _("Dataset “%(title)s” withdrawn.") % {"title": dataset.title})
    return redirect("sharing-dataset-detail", slug=organisation.slug, dataset_id=dataset.pk)


# --- agreements ----------------------------------------------------------------------------------


def _agreements(user: User, organisation: Organisation) -> QuerySet[Agreement]:
    return policy.agreements_visible_to(user).filter(holder=organisation)


@org_page
def agreement_list(request: HttpRequest, user: User, organisation: Organisation) -> HttpResponse:
    """The holder's agreements, every version, with their state and validity."""
    context = {
        "organisation": organisation,
        "agreements": _agreements(user, organisation).prefetch_related("datasets"),
        "can_propose": org_policy.can(user, OrgAction.SIGN_AGREEMENTS, organisation),
    }
    return render(request, "sharing/agreement_list.html", context)


def _module_slugs(organisation: Organisation) -> list[str]:
    modules = ConsentModule.objects.filter(holder=organisation, retired_at__isnull=True)
    return list(modules.order_by("slug").values_list("slug", flat=True).distinct())


@org_page
def agreement_propose(request: HttpRequest, user: User, organisation: Organisation) -> HttpResponse:
    """Draft an agreement for some of the holder's active datasets; it is signed on its own page."""
    form = AgreementForm(
        request.POST if request.method == "POST" else None,
        datasets=_datasets(user, organisation).filter(state=Dataset.State.ACTIVE),
        module_slugs=_module_slugs(organisation),
    )
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        terms = services.AgreementTerms(
            title=data["title"],
            datasets=list(data["datasets"]),
            purposes=data["purposes"],
            recipient_categories=data["recipient_categories"],
            consent_modules=data["consent_modules"],
            approval_mode=data["approval_mode"],
            valid_from=start_of_day(data["valid_from"]),
            valid_until=end_of_day(data["valid_until"]),
            conditions={"retention_days_max": data["retention_days_max"]},
        )
        try:
            agreement = services.agreement_propose(by=user, holder=organisation, terms=terms)
        except TiersError as exc:
            for problem in exc.extensions.get("errors") or [{"detail": exc.detail}]:
                form.add_error(None, problem["detail"])
        else:
            messages.success(request, _("Draft saved. Read it, then sign it to send it to Tiers."))
            return redirect("sharing-agreement-detail", slug=organisation.slug, agreement_id=agreement.pk)
    context = {
        "organisation": organisation,
        "form": form,
        "can_propose": org_policy.can(user, OrgAction.SIGN_AGREEMENTS, organisation),
    }
    return render(request, "sharing/agreement_propose.html", context)


@org_page
def agreement_detail(
    request: HttpRequest, user: User, organisation: Organisation, agreement_id: uuid.UUID
) -> HttpResponse:
    """One agreement version: what it says, its content hash, who signed it, and what can be done next."""
    agreement: Agreement = _one(_agreements(user, organisation), agreement_id)
    state = agreement.state
    member_signer = org_policy.role_in(user, organisation) is not None and _allowed(
        policy.require_agreement_party, user, agreement
    )
    conditions = agreement.conditions
    context = {
        "organisation": organisation,
        "agreement": agreement,
        "datasets": agreement.datasets.all(),
        "purposes": [purpose_label(term) for term in agreement.purposes],
        "recipients": [RECIPIENTS.get(term, term) for term in agreement.recipient_categories],
        "consent_modules": agreement.terms.get("consent_modules", []),
        "conditions": sorted(conditions.items()),
        "can_sign": state == Agreement.State.DRAFT and member_signer,
        "can_countersign": state == Agreement.State.SIGNED and policy.is_operator(user),
        "can_terminate": state in (Agreement.State.DRAFT, Agreement.State.SIGNED, Agreement.State.ACTIVE)
        and (policy.is_operator(user) or member_signer),
    }
    return render(request, "sharing/agreement_detail.html", context)


def _agreement_action(
    request: HttpRequest, user: User, organisation: Organisation, agreement_id: uuid.UUID, action: str
) -> HttpResponse:
    agreement: Agreement = _one(_agreements(user, organisation), agreement_id)
    form: SignForm | ReasonForm = ReasonForm(request.POST) if action == "terminate" else SignForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            _("Say why the agreement ends.")
            if action == "terminate"
            else _("Read the text in force and sign it again."),
        )
        return redirect("sharing-agreement-detail", slug=organisation.slug, agreement_id=agreement.pk)
    try:
        if action == "sign":
            services.agreement_sign(by=user, agreement=agreement, content_hash=form.cleaned_data["content_hash"])
            done = _("You signed the agreement. An operator of Tiers countersigns it next.")
        elif action == "countersign":
            services.agreement_countersign(by=user, agreement=agreement, content_hash=form.cleaned_data["content_hash"])
            done = _("Agreement countersigned: it is in force.")
        else:
            services.agreement_terminate(by=user, agreement=agreement, reason=form.cleaned_data["reason"])
            done = _("Agreement terminated.")
    except TiersError as exc:
        _refusal(request, exc)
    else:
        messages.success(request, done)
    return redirect("sharing-agreement-detail", slug=organisation.slug, agreement_id=agreement.pk)


@org_page
@require_POST
def agreement_sign(
    request: HttpRequest, user: User, organisation: Organisation, agreement_id: uuid.UUID
) -> HttpResponse:
    """The holder signs the draft whose content hash the page showed."""
    return _agreement_action(request, user, organisation, agreement_id, "sign")


@org_page
@require_POST
def agreement_countersign(
    request: HttpRequest, user: User, organisation: Organisation, agreement_id: uuid.UUID
) -> HttpResponse:
    """An operator countersigns a signed agreement: it comes into force."""
    return _agreement_action(request, user, organisation, agreement_id, "countersign")


@org_page
@require_POST
def agreement_terminate(
    request: HttpRequest, user: User, organisation: Organisation, agreement_id: uuid.UUID
) -> HttpResponse:
    """End an agreement, with the reason."""
    return _agreement_action(request, user, organisation, agreement_id, "terminate")


# --- reviews -------------------------------------------------------------------------------------


def _items(requests: Iterable[AccessRequest]) -> dict[str, Dataset]:
    """The datasets the requests name, by id."""
    ids = {str(item["dataset"]) for request in requests for item in request.items}
    return {str(dataset.pk): dataset for dataset in Dataset.objects.filter(pk__in=ids)}


def _request_row(access_request: AccessRequest, datasets: dict[str, Dataset]) -> dict[str, Any]:
    items = [{"dataset": datasets.get(str(item["dataset"])), "fields": item["fields"]} for item in access_request.items]
    return {
        "request": access_request,
        "items": items,
        "purpose": purpose_label(access_request.purpose),
        "recipient": RECIPIENTS.get(access_request.recipient_category, access_request.recipient_category),
    }


@org_page
def review_inbox(request: HttpRequest, user: User, organisation: Organisation) -> HttpResponse:
    """Requests for the holder's data that its agreements leave to the holder to decide."""
    pending = list(
        policy.requests_visible_to(user)
        .filter(
            agreement__holder=organisation, reviewer=Agreement.ApprovalMode.HOLDER, state=AccessRequest.State.PENDING
        )
        .select_related("organisation", "agreement")
        .order_by("submitted_at")
    )
    datasets = _items(pending)
    rows = [
        {
            **_request_row(access_request, datasets),
            "can_review": _allowed(policy.require_reviewer, user, access_request),
        }
        for access_request in pending
    ]
    return render(request, "sharing/review_inbox.html", {"organisation": organisation, "rows": rows})


@org_page
@require_POST
def review_decide(request: HttpRequest, user: User, organisation: Organisation, request_id: uuid.UUID) -> HttpResponse:
    """Approve (creating the grants) or reject a request, with the reason."""
    access_request: AccessRequest = _one(
        policy.requests_visible_to(user).filter(agreement__holder=organisation), request_id
    )
    form = ReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose approve or reject, and give the reason for your decision."))
        return redirect("sharing-review-inbox", slug=organisation.slug)
    approve = form.cleaned_data["decision"] == "approve"
    try:
        services.access_request_review(
            by=user, access_request=access_request, approve=approve, reason=form.cleaned_data["reason"]
        )
    except TiersError as exc:
        _refusal(request, exc)
    else:
        name = access_request.organisation.name
        if approve:
            messages.success(request, _("Request of %(name)s approved: its grants are active.") % {"name": name})
        else:
            messages.success(request, _("Request of %(name)s rejected.") % {"name": name})
    return redirect("sharing-review-inbox", slug=organisation.slug)


# --- a data user's requests and grants -----------------------------------------------------------


@org_page
def request_list(request: HttpRequest, user: User, organisation: Organisation) -> HttpResponse:
    """A data user's access requests, with each decision, and the grants they hold."""
    requests = list(
        policy.requests_visible_to(user).filter(organisation=organisation).select_related("agreement__holder")
    )
    datasets = _items(requests)
    context = {
        "organisation": organisation,
        "rows": [_request_row(access_request, datasets) for access_request in requests],
        "grants": [
            {"grant": grant, "purpose": purpose_label(grant.purpose)}
            for grant in policy.grants_visible_to(user)
            .filter(organisation=organisation)
            .select_related("dataset__holder")
        ],
        "can_request": org_policy.can(user, OrgAction.REQUEST_ACCESS, organisation),
        "clients_url": reverse("client-portal-list", kwargs={"slug": organisation.slug}),
    }
    return render(request, "sharing/request_list.html", context)


def _targets(user: User) -> list[tuple[Agreement, list[Dataset]]]:
    """Agreements in force the user may read, each with its active datasets."""
    now = timezone.now()
    agreements = (
        policy.agreements_visible_to(user)
        .filter(state=Agreement.State.ACTIVE, valid_from__lte=now, valid_until__gt=now)
        .select_related("holder")
        .prefetch_related(Prefetch("datasets", queryset=Dataset.objects.filter(state=Dataset.State.ACTIVE)))
    )
    return [(agreement, list(agreement.datasets.all())) for agreement in agreements if agreement.datasets.all()]


# Which field of the request form each rule of the agreement is about; the others concern the whole request.
RULE_FIELDS = {
    "agreement_in_force": "target",
    "datasets_named": "target",
    "dataset_in_agreement": "target",
    "dataset_active": "target",
    "fields_in_schema": "requested_fields",
    "purpose_allowed": "purpose",
    "consent_module_covers_use": "purpose",
    "justification_given": "justification",
    "period_valid": "ends_on",
    "period_within_agreement": "ends_on",
    "period_within_limit": "ends_on",
    "retention_within_limit": "retention_days",
}


@org_page
def request_submit(request: HttpRequest, user: User, organisation: Organisation) -> HttpResponse:
    """Ask for access to a dataset under an agreement in force; Tiers checks the agreement's rules at once."""
    targets = _targets(user)
    form = AccessRequestForm(request.POST if request.method == "POST" else None, targets=targets)
    violations: list[dict[str, str]] = []
    if form.is_bound and form.is_valid():
        agreement_id, dataset_id = form.target_ids
        agreement, datasets = next((a, ds) for a, ds in targets if str(a.pk) == agreement_id)
        dataset = next(d for d in datasets if str(d.pk) == dataset_id)
        data = form.cleaned_data
        try:
            access_request = services.access_request_submit(
                by=user,
                organisation=organisation,
                agreement=agreement,
                items=[services.RequestItem(dataset=dataset, fields=data["requested_fields"])],
                purpose=data["purpose"],
                justification=data["justification"],
                starts_at=start_of_day(data["starts_on"]),
                ends_at=end_of_day(data["ends_on"]),
                retention_days=data["retention_days"],
            )
        except services.PolicyRefused as exc:
            violations = list(exc.extensions.get("violations", []))
            for violation in violations:
                form.add_error(RULE_FIELDS.get(violation["rule"]), violation["detail"])
        except TiersError as exc:
            form.add_error(None, exc.detail)
        else:
            if access_request.state == AccessRequest.State.APPROVED:
                messages.success(request, _("Your request matches the agreement and is approved: see your grants."))
            else:
                messages.success(request, _("Your request is sent for review."))
            return redirect("sharing-request-list", slug=organisation.slug)
    context = {
        "organisation": organisation,
        "form": form,
        "violations": violations,
        "targets": targets,
        "can_request": org_policy.can(user, OrgAction.REQUEST_ACCESS, organisation),
    }
    return render(request, "sharing/request_submit.html", context)


# --- grants of a holder's data -------------------------------------------------------------------


def _holder_grants(user: User, organisation: Organisation) -> QuerySet[Grant]:
    return policy.grants_visible_to(user).filter(dataset__holder=organisation)


@org_page
def grant_list(request: HttpRequest, user: User, organisation: Organisation) -> HttpResponse:
    """Who holds grants on the holder's datasets, and the button to end one early."""
    grants = _holder_grants(user, organisation).select_related("organisation", "dataset")
    rows = [
        {
            "grant": grant,
            "purpose": purpose_label(grant.purpose),
            "can_revoke": grant.state == Grant.State.ACTIVE and _allowed(policy.require_grant_revoker, user, grant),
        }
        for grant in grants
    ]
    return render(request, "sharing/grant_list.html", {"organisation": organisation, "rows": rows})


@org_page
@require_POST
def grant_revoke(request: HttpRequest, user: User, organisation: Organisation, grant_id: uuid.UUID) -> HttpResponse:
    """End a grant at once, with the reason."""
    grant: Grant = _one(_holder_grants(user, organisation).select_related("organisation"), grant_id)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say why the grant is revoked."))
        return redirect("sharing-grant-list", slug=organisation.slug)
    try:
        services.grant_revoke(by=user, grant=grant, reason=form.cleaned_data["reason"])
    except TiersError as exc:
        _refusal(request, exc)
    else:
        text = _("Grant of %(name)s revoked: its tokens are refused from now on.")
        messages.success(request, text % {"name": grant.organisation.name})
    return redirect("sharing-grant-list", slug=organisation.slug)
