"""The public transparency pages, under /transparency/: no login, no citizen data, readable without JavaScript.

The register entry (with the common logo only while the registration is
active), agreements, grants, the transparency log with a proof check anyone can
run, and the annual reports. See docs/transparency.md.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.paginator import Paginator
from django.db.models import Prefetch, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from broker import keys
from broker.audit import log
from broker.audit import selectors as audit_selectors
from broker.dga import logo
from broker.dga.models import AnnualReport, OperatorProfile
from broker.dga.profile import operator_profile
from broker.errors import TiersError
from broker.models import AuditBody, AuditEntry, Checkpoint, Organisation
from broker.transparency import verify
from sharing import policy as sharing_policy
from sharing.models import Agreement, Dataset, Grant
from sharing.vocabulary import GENERAL_INTEREST_PURPOSES

GRANTS_PER_PAGE = 50
RECIPIENTS = dict(Organisation.RecipientCategory.choices)
AGREEMENT_VERBS = ("agreement.signed", "agreement.countersigned", "agreement.terminated")
REPORT_PATH = "/api/v1/reports/annual/{year}"  # served by another module: a plain path, not reverse()
# The SVGs are images, never documents: should one be opened directly, it may run nothing.
SVG_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "public, max-age=300",
}


def purpose_label(term: str) -> str:
    label = GENERAL_INTEREST_PURPOSES.get(term)
    return f"{label} ({term})" if label else term


# --- the register entry --------------------------------------------------------------------------


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """The register entry: who Tiers is under the DGA, its status, and the recognition while active."""
    profile = operator_profile()
    active = logo.may_show_recognition(profile)
    context = {
        "profile": profile,
        "recognised": active,
        "label": logo.label(profile.role) if profile else "",
        "label_article": logo.LABEL_ARTICLES.get(profile.role, "") if profile else "",
        "has_logo": active and logo.logo_svg() is not None,
        "show_qr": active
        and profile is not None
        and profile.role == OperatorProfile.Role.DATA_ALTRUISM
        and bool(profile.union_register_url),
    }
    return render(request, "transparency/index.html", context)


def _svg(data: bytes) -> HttpResponse:
    response = HttpResponse(data, content_type="image/svg+xml")
    for name, value in SVG_HEADERS.items():
        response[name] = value
    return response


@require_GET
def logo_image(request: HttpRequest) -> HttpResponse:
    """The official common logo the operator installed, served only while the registration is active."""
    data = logo.logo_svg()
    if not logo.may_show_recognition(operator_profile()) or data is None:
        raise Http404("No logo.")
    return _svg(data)


@require_GET
def register_qr(request: HttpRequest) -> HttpResponse:
    """The QR code to Tiers' entry in the Union register, while it is an active data altruism organisation."""
    profile = operator_profile()
    if (
        profile is None
        or not logo.may_show_recognition(profile)
        or profile.role != OperatorProfile.Role.DATA_ALTRUISM
        or not profile.union_register_url
    ):
        raise Http404("No register entry.")
    return _svg(logo.qr_svg(profile.union_register_url))


# --- agreements ----------------------------------------------------------------------------------


def _public_agreements() -> QuerySet[Agreement]:
    return sharing_policy.agreements_visible_to(AnonymousUser()).select_related("holder")


def public_state(agreement: Agreement, now: datetime.datetime) -> str:
    """The state a reader needs: an active version past its validity has ended too."""
    if agreement.state == Agreement.State.ACTIVE and agreement.valid_until <= now:
        return _("expired")
    return str(agreement.get_state_display())


@require_GET
def agreement_list(request: HttpRequest) -> HttpResponse:
    """Every agreement once signed by both parties: in force, then ended; drafts never."""
    now = timezone.now()
    in_force: list[dict[str, Any]] = []
    ended: list[dict[str, Any]] = []
    for agreement in _public_agreements().order_by("holder__name", "title", "-version"):
        current = agreement.state == Agreement.State.ACTIVE and agreement.valid_until > now
        (in_force if current else ended).append({"agreement": agreement, "state": public_state(agreement, now)})
    return render(request, "transparency/agreements.html", {"in_force": in_force, "ended": ended})


@dataclass
class Signature:
    party: str
    actor: str
    at: datetime.datetime | None
    leaf_index: int | None


def _leaves(agreement: Agreement) -> dict[str, int | None]:
    """The leaf index of the version's signing and ending entries in the log, by verb."""
    bodies = AuditBody.objects.filter(subject=f"agreement:{agreement.pk}", verb__in=AGREEMENT_VERBS)
    return dict(bodies.order_by("entry_id").values_list("verb", "entry__leaf_index"))


def _signatures(agreement: Agreement, leaves: dict[str, int | None]) -> list[Signature]:
    """The holder's signature and Tiers' countersignature: who (audit reference), when, and their log entry."""
    return [
        Signature(
            _("The holder"), agreement.holder_signed_by, agreement.holder_signed_at, leaves.get("agreement.signed")
        ),
        Signature(
            _("Tiers"), agreement.countersigned_by, agreement.countersigned_at, leaves.get("agreement.countersigned")
        ),
    ]


@require_GET
def agreement_detail(request: HttpRequest, agreement_id: uuid.UUID) -> HttpResponse:
    """One public agreement version: its terms, datasets, signatures and the versions around it."""
    datasets = Prefetch("datasets", queryset=Dataset.objects.select_related("holder"))
    public = _public_agreements()
    agreement = public.prefetch_related(datasets).filter(pk=agreement_id).first()
    if agreement is None:
        raise Http404("No such agreement.")
    leaves = _leaves(agreement)
    context = {
        "agreement": agreement,
        "state": public_state(agreement, timezone.now()),
        "datasets": agreement.datasets.all(),
        "purposes": [purpose_label(term) for term in agreement.purposes],
        "recipients": [RECIPIENTS.get(term, term) for term in agreement.recipient_categories],
        "consent_modules": agreement.terms.get("consent_modules", []),
        "conditions": sorted(agreement.conditions.items()),
        "signatures": _signatures(agreement, leaves),
        "terminated_leaf": leaves.get("agreement.terminated"),
        "predecessor": public.filter(pk=agreement.predecessor_id).first() if agreement.predecessor_id else None,
        "successor": public.filter(predecessor=agreement).first(),
    }
    return render(request, "transparency/agreement.html", context)


# --- grants --------------------------------------------------------------------------------------


@require_GET
def grant_list(request: HttpRequest) -> HttpResponse:
    """Every grant, newest first: who may use which dataset, for what, and when; never about whom."""
    grants = Grant.objects.select_related("organisation", "dataset__holder").order_by("-starts_at", "pk")
    page = Paginator(grants, GRANTS_PER_PAGE).get_page(request.GET.get("page"))
    now = timezone.now()
    rows = [
        {
            "grant": grant,
            "purpose": purpose_label(grant.purpose),
            "state": _("ended")
            if grant.state == Grant.State.ACTIVE and grant.ends_at <= now
            else str(grant.get_state_display()),
        }
        for grant in page
    ]
    return render(request, "transparency/grants.html", {"page": page, "rows": rows})


# --- the transparency log ------------------------------------------------------------------------


@dataclass
class LeafCheck:
    """The server's answer to "is leaf N in the signed log?"."""

    leaf_index: str
    verified: bool = False
    problem: str = ""
    detail: str = ""
    tree_size: int | None = None
    root_hash: str = ""
    leaf_hash: str = ""
    recomputed: bool = False
    verb: str = ""
    subject: str = ""


def _leaf_of(entry: AuditEntry, readable: bool) -> tuple[bytes, bool]:
    """The leaf hash: recomputed from the event when it is public, the stored one otherwise."""
    stored = bytes(entry.leaf_hash)
    if not readable:
        return stored, False
    computed = verify.leaf_hash(bytes(entry.body.canonical))
    if computed != stored:
        raise verify.VerificationError("the logged event does not match its leaf hash")
    return computed, True


def check_leaf(raw_index: str, user: Any) -> LeafCheck:
    """Check leaf `raw_index` against the latest checkpoint, as an outside verifier would (RFC 9162)."""
    check = LeafCheck(leaf_index=raw_index.strip())
    if not check.leaf_index.isdecimal() or len(check.leaf_index) > 19:
        check.problem = _("this is not a leaf index: enter a whole number, 0 or more.")
        return check
    index = int(check.leaf_index)
    checkpoint = audit_selectors.checkpoint_latest()
    try:
        signed = verify.verify_checkpoint_jws(checkpoint.jws, keys.jwks())
    except verify.VerificationError as exc:
        check.problem, check.detail = (
            _("the checkpoint signature does not verify against the published keys."),
            str(exc),
        )
        return check
    check.tree_size, check.root_hash = signed.tree_size, log.b64(signed.root_hash)
    entry = AuditEntry.objects.select_related("body").filter(leaf_index=index).first()
    if index >= signed.tree_size or entry is None:
        check.problem = _("the signed log has no entry at this position.")
        return check
    readable = audit_selectors.can_read_event(user, entry)
    if readable:
        check.verb, check.subject = entry.body.verb, entry.body.subject
    try:
        leaf, check.recomputed = _leaf_of(entry, readable)
    except verify.VerificationError as exc:
        check.problem, check.detail = _("the entry does not match its leaf hash."), str(exc)
        return check
    check.leaf_hash = log.b64(leaf)
    try:
        proof = audit_selectors.inclusion_proof(index, signed.tree_size)
        path = [base64.b64decode(node, validate=True) for node in proof["audit_path"]]
        verify.verify_inclusion(leaf, index, signed.tree_size, path, signed.root_hash)
    except (verify.VerificationError, TiersError, LookupError, ValueError, binascii.Error) as exc:
        check.problem, check.detail = _("the inclusion proof does not lead to the signed root hash."), str(exc)
        return check
    check.verified = True
    return check


def _proof_urls() -> dict[str, str]:
    """What proof.js fetches; the entry URL is a prefix to which it appends the leaf index."""
    return {
        "checkpoint": reverse("audit-checkpoint-latest"),
        "inclusion": reverse("audit-proof-inclusion"),
        "entries": reverse("audit-entry-list"),
        "jwks": reverse("jwks"),
    }


@require_GET
def log_page(request: HttpRequest) -> HttpResponse:
    """The latest signed checkpoint and a form to check any entry's inclusion, in the browser or here."""
    checkpoint: Checkpoint = audit_selectors.checkpoint_latest()
    raw = request.GET.get("leaf_index")
    context = {
        "checkpoint": checkpoint,
        "root_hash": log.b64(bytes(checkpoint.root_hash)),
        "timestamp": checkpoint.timestamp,
        "timestamp_text": log.timestamp(checkpoint.timestamp),
        "urls": _proof_urls(),
        "leaf_index": (raw or "").strip()[:20],
        "check": check_leaf(raw, request.user) if raw is not None else None,
    }
    return render(request, "transparency/log.html", context)


# --- annual reports ------------------------------------------------------------------------------


@require_GET
def report_list(request: HttpRequest) -> HttpResponse:
    """The published annual reports, and the current year's figures so far."""
    reports = list(AnnualReport.objects.order_by("-year").only("year", "published_at", "sha256"))
    year = timezone.localdate().year
    rows = [{"report": report, "path": REPORT_PATH.format(year=report.year)} for report in reports]
    published = any(report.year == year for report in reports)
    current = None if published else {"year": year, "path": REPORT_PATH.format(year=year)}
    return render(request, "transparency/reports.html", {"rows": rows, "current": current})
