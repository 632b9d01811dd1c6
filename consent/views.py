"""The citizen portal's pages: links with holders, consent forms, consents and the proofs behind them."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, Concatenate, ParamSpec

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from broker import keys
from broker.audit import selectors as audit_selectors
from broker.errors import NotFound, TiersError
from broker.models import AuditBody, AuditEntry, User
from broker.transparency import verify
from consent import policy, rights, selectors, services
from consent.forms import ConsentForm, LinkForm, term_label, term_labels
from consent.models import ConsentEvent, ConsentModule, ConsentRecord, IdentityLink
from consent.rights import RightsRequest
from sharing import selectors as sharing_selectors

P = ParamSpec("P")
State = ConsentRecord.State


def citizen_page(
    view: Callable[Concatenate[HttpRequest, User, P], HttpResponse],
) -> Callable[Concatenate[HttpRequest, P], HttpResponse]:
    """Log in first; anyone but a citizen is told the page does not exist. The view gets the citizen."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        user = request.user
        if not isinstance(user, User) or not policy.is_citizen(user):
            raise Http404("No citizen account.")
        return view(request, user, *args, **kwargs)

    return login_required(wrapped)


def _module_text(module: ConsentModule) -> dict[str, str]:
    """The module's words in the reader's language: French when the page is French, else English."""
    if (translation.get_language() or "").startswith("fr"):
        return {"title": module.title_fr, "notice": module.notice_fr, "risks": module.risks_fr}
    return {"title": module.title_en, "notice": module.notice_en, "risks": module.risks_en}


def _settled(record: ConsentRecord) -> bool:
    """Answered and still standing: given, renewed or paused, and not expired."""
    return record.state in (*ConsentRecord.ACTIVE_STATES, State.PAUSED) and record.expires_at > timezone.now()


# --- the dashboard --------------------------------------------------------------------------------

ACTION_LABELS: dict[str, Promise] = {
    "pause": gettext_lazy("Pause"),
    "resume": gettext_lazy("Resume"),
    "renew": gettext_lazy("Renew"),
    "withdraw": gettext_lazy("Withdraw"),
}


def _actions(record: ConsentRecord) -> list[str]:
    """What the citizen can do with a consent in its present state."""
    expired = record.expires_at <= timezone.now()
    actions = []
    if record.is_active():
        actions.append("pause")
    if record.state == State.PAUSED and not expired:
        actions.append("resume")
    if record.module.retired_at is None and (
        record.state in ConsentRecord.ACTIVE_STATES or record.state == State.EXPIRED or expired
    ):
        actions.append("renew")
    if record.state in (*ConsentRecord.ACTIVE_STATES, State.PAUSED):
        actions.append("withdraw")
    return actions


def _state_label(record: ConsentRecord) -> str:
    if record.state != State.WITHDRAWN and record.expires_at <= timezone.now():
        return str(State.EXPIRED.label)
    return str(record.get_state_display())


def _consent_row(record: ConsentRecord) -> dict[str, Any]:
    return {
        "record": record,
        "purpose": term_label(record.purpose),
        "state": _state_label(record),
        "module_title": _module_text(record.module)["title"],
        "actions": [{"name": name, "label": ACTION_LABELS[name]} for name in _actions(record)],
    }


def _holder_summary(link: IdentityLink, consents: list[ConsentRecord], modules: list[ConsentModule]) -> dict[str, Any]:
    """One holder on the dashboard: its consents, and its modules still waiting for an answer."""
    mine = [record for record in consents if record.holder_id == link.holder_id]
    settled = {(record.module_id, record.purpose) for record in mine if _settled(record)}
    waiting = [
        {"module": module, "title": _module_text(module)["title"]}
        for module in modules
        if module.holder_id == link.holder_id and any((module.pk, p) not in settled for p in module.purposes)
    ]
    return {
        "link": link,
        "consents": [_consent_row(record) for record in mine],
        "modules": waiting,
        "can_withdraw_all": any(record.state in (*ConsentRecord.ACTIVE_STATES, State.PAUSED) for record in mine),
    }


@citizen_page
def dashboard(request: HttpRequest, citizen: User) -> HttpResponse:
    """The citizen's home: who holds data about them, what they agreed to, and what waits for an answer."""
    consents = list(selectors.consents_of(citizen))
    modules = list(selectors.modules_for(citizen))
    holders = [_holder_summary(link, consents, modules) for link in selectors.links_of(citizen).order_by("linked_at")]
    return render(request, "consent/dashboard.html", {"profile": citizen.citizen_profile, "holders": holders})


# --- links with holders ---------------------------------------------------------------------------


def _link(citizen: User, link_id: int) -> IdentityLink:
    link = selectors.links_of(citizen).filter(pk=link_id).first()
    if link is None:
        raise Http404("No such link.")
    return link


@citizen_page
def link_redeem(request: HttpRequest, citizen: User) -> HttpResponse:
    """Enter the code a holder gave, to link the account with the holder's records."""
    form = LinkForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            link = services.link_redeem(citizen=citizen, code=form.cleaned_data["code"])
        except TiersError as exc:
            form.add_error("code", exc.detail)
        else:
            messages.success(request, _("Your account is now linked with %(holder)s.") % {"holder": link.holder.name})
            return redirect("citizen-dashboard")
    return render(request, "consent/link.html", {"form": form})


@citizen_page
def unlink(request: HttpRequest, citizen: User, link_id: int) -> HttpResponse:
    """Unlink from a holder, after a page that says what it means; the consents go with the link."""
    link = _link(citizen, link_id)
    if request.method == "POST":
        try:
            services.link_remove(citizen=citizen, link=link)
        except TiersError as exc:
            messages.error(request, exc.detail)
        else:
            text = _("Your account is no longer linked with %(holder)s, and every consent you gave it is withdrawn.")
            messages.success(request, text % {"holder": link.holder.name})
        return redirect("citizen-dashboard")
    standing = [
        _consent_row(record) for record in selectors.consents_of(citizen).filter(holder=link.holder) if _settled(record)
    ]
    return render(request, "consent/unlink.html", {"link": link, "standing": standing})


@citizen_page
@require_POST
def withdraw_all(request: HttpRequest, citizen: User, link_id: int) -> HttpResponse:
    """Withdraw every consent given to one holder, all at once or not at all."""
    link = _link(citizen, link_id)
    try:
        withdrawn = services.consent_withdraw_all(citizen=citizen, holder=link.holder)
    except TiersError as exc:
        messages.error(request, exc.detail)
    else:
        text = ngettext(
            "You withdrew %(count)d consent given to %(holder)s.",
            "You withdrew the %(count)d consents given to %(holder)s.",
            withdrawn,
        )
        messages.success(request, text % {"count": withdrawn, "holder": link.holder.name})
    return redirect("citizen-dashboard")


# --- the consent form -----------------------------------------------------------------------------


@citizen_page
def module_consent(request: HttpRequest, citizen: User, module_id: int) -> HttpResponse:
    """A holder's consent module, laid out like the European data altruism consent form (DGA Art. 25)."""
    module = selectors.modules_for(citizen).filter(pk=module_id).first()
    if module is None:
        raise Http404("No such module among your holders' current modules.")
    settled = {record.purpose for record in selectors.consents_of(citizen).filter(module=module) if _settled(record)}
    open_purposes = [purpose for purpose in module.purposes if purpose not in settled]
    form = ConsentForm(request.POST if request.method == "POST" else None, purposes=open_purposes)
    if form.is_bound and form.is_valid():
        try:
            records = services.consent_give(citizen=citizen, module=module, purposes=form.cleaned_data["purposes"])
        except TiersError as exc:
            form.add_error(None, exc.detail)
        else:
            text = ngettext(
                "Thank you. You agreed to %(count)d purpose; you can pause or withdraw it here at any time.",
                "Thank you. You agreed to %(count)d purposes; you can pause or withdraw them here at any time.",
                len(records),
            )
            messages.success(request, text % {"count": len(records)})
            return redirect("citizen-dashboard")
    context = {
        **module_context(module),
        "settled": term_labels(purpose for purpose in module.purposes if purpose in settled),
        "form": form if open_purposes else None,
    }
    return render(request, "consent/module.html", context)


def module_context(module: ConsentModule) -> dict[str, Any]:
    """What the consent form shows of a module, in the reader's language; its holder's pages show the same."""
    return {
        "module": module,
        "holder": module.holder,
        "text": _module_text(module),
        "data_categories": term_labels(module.data_categories),
        "purposes": term_labels(module.purposes),
        "recipients": term_labels(module.recipient_categories),
    }


# --- one consent ----------------------------------------------------------------------------------

ACTION_DONE: dict[str, Promise] = {
    "pause": gettext_lazy(
        "Your consent to “%(purpose)s” for %(holder)s is paused: nothing is shared until you resume it."
    ),
    "resume": gettext_lazy("Your consent to “%(purpose)s” for %(holder)s applies again."),
    "renew": gettext_lazy("Your consent to “%(purpose)s” for %(holder)s is renewed until %(until)s."),
    "withdraw": gettext_lazy(
        "You withdrew your consent to “%(purpose)s” for %(holder)s. Nothing more is shared for it."
    ),
}
EVENT_LABELS: dict[str, Promise] = {
    "given": gettext_lazy("You agreed"),
    "paused": gettext_lazy("You paused it"),
    "resumed": gettext_lazy("You resumed it"),
    "renewed": gettext_lazy("You renewed it"),
    "withdrawn": gettext_lazy("It was withdrawn"),
    "expired": gettext_lazy("It expired"),
}
CHANGES: dict[str, Callable[..., ConsentRecord]] = {
    "pause": services.consent_pause,
    "resume": services.consent_resume,
    "renew": services.consent_renew,
    "withdraw": services.consent_withdraw,
}


def _consent(citizen: User, consent_id: Any) -> ConsentRecord:
    try:
        return selectors.consent_of(citizen, consent_id)
    except NotFound as exc:
        raise Http404(exc.detail) from exc


@citizen_page
@require_POST
def consent_action(request: HttpRequest, citizen: User, consent_id: Any, action: str) -> HttpResponse:
    """Pause, resume, renew or withdraw one consent, with one click."""
    if action not in CHANGES:
        raise Http404("No such action.")
    record = _consent(citizen, consent_id)
    try:
        record = CHANGES[action](citizen=citizen, record=record)
    except TiersError as exc:
        messages.error(request, exc.detail)
    else:
        names = {"purpose": term_label(record.purpose), "holder": record.holder.name}
        until = timezone.localtime(record.expires_at).date().isoformat()
        messages.success(request, str(ACTION_DONE[action]) % {**names, "until": until})
    return redirect("citizen-dashboard")


@dataclass
class ReceiptCheck:
    """What checking a receipt's signature against the published keys found."""

    verified: bool
    problem: str = ""
    claims: dict[str, Any] = field(default_factory=dict)

    @property
    def document(self) -> str:
        return json.dumps(self.claims, indent=2, ensure_ascii=False)


@dataclass
class InclusionCheck:
    """What checking the change's place in the signed transparency log found."""

    status: str  # "included", "pending", "failed" or "missing"
    leaf_index: int | None = None
    tree_size: int | None = None
    root_hash: str = ""
    problem: str = ""


def _check_receipt(record: ConsentRecord, event: ConsentEvent | None, jwks: dict[str, Any]) -> ReceiptCheck:
    """Verify the receipt as anyone could: its ES256 signature against the JWKS, and what it is about."""
    if event is None:
        return ReceiptCheck(verified=False, problem=_("This consent has no receipt yet."))
    try:
        claims = verify.verify_jws_es256(event.receipt, jwks)
    except verify.VerificationError as exc:
        return ReceiptCheck(verified=False, problem=str(exc))
    if claims.get("@id") != f"urn:uuid:{record.id}":
        return ReceiptCheck(verified=False, problem=_("The signature holds, but the receipt is about another consent."))
    return ReceiptCheck(verified=True, claims=claims)


def _leaf_hash(entry: AuditEntry) -> bytes:
    """The leaf, recomputed from the event it commits to while the event is kept."""
    try:
        body = entry.body
    except AuditBody.DoesNotExist:
        return bytes(entry.leaf_hash)
    computed = verify.leaf_hash(bytes(body.canonical))
    if computed != bytes(entry.leaf_hash):
        raise verify.VerificationError("the logged event does not match its leaf hash")
    return computed


def _check_inclusion(entry_id: int | None, jwks: dict[str, Any]) -> InclusionCheck:
    """Prove that an audit entry sits in the log under the latest signed checkpoint (RFC 9162)."""
    entry = AuditEntry.objects.select_related("body").filter(pk=entry_id).first() if entry_id else None
    if entry is None:
        return InclusionCheck(status="missing")
    if entry.leaf_index is None:
        return InclusionCheck(status="pending")
    checkpoint = audit_selectors.checkpoint_latest()
    if checkpoint.tree_size <= entry.leaf_index:
        return InclusionCheck(status="pending", leaf_index=entry.leaf_index)
    check = InclusionCheck(status="failed", leaf_index=entry.leaf_index, tree_size=checkpoint.tree_size)
    check.root_hash = base64.b64encode(bytes(checkpoint.root_hash)).decode()
    try:
        signed = verify.verify_checkpoint_jws(checkpoint.jws, jwks)
        if (signed.tree_size, signed.root_hash) != (checkpoint.tree_size, bytes(checkpoint.root_hash)):
            raise verify.VerificationError("the checkpoint's signature is over another tree head")
        proof = audit_selectors.inclusion_proof(entry.leaf_index, checkpoint.tree_size)
        path = [base64.b64decode(node) for node in proof["audit_path"]]
        verify.verify_inclusion(_leaf_hash(entry), entry.leaf_index, checkpoint.tree_size, path, signed.root_hash)
    except (verify.VerificationError, TiersError, LookupError) as exc:
        check.problem = str(exc)
        return check
    check.status = "included"
    return check


@citizen_page
def consent_detail(request: HttpRequest, citizen: User, consent_id: Any) -> HttpResponse:
    """One consent: its record, its history, its signed receipt and its place in the public log, all checked."""
    record = _consent(citizen, consent_id)
    events = list(record.events.all())
    latest = events[-1] if events else None
    jwks = keys.jwks()
    context = {
        "record": record,
        "row": _consent_row(record),
        "events": [{"event": event, "label": EVENT_LABELS.get(event.event, event.event)} for event in events],
        "latest": latest,
        "receipt": _check_receipt(record, latest, jwks),
        "inclusion": _check_inclusion(latest.audit_entry_id if latest else None, jwks),
    }
    return render(request, "consent/consent.html", context)


@citizen_page
def accesses(request: HttpRequest, citizen: User) -> HttpResponse:
    """Who used my data: every delivery that included me, newest first."""
    uses = Paginator(sharing_selectors.accesses_of(citizen), 50).get_page(request.GET.get("page"))
    return render(request, "consent/accesses.html", {"uses": uses})


@citizen_page
def access_detail(request: HttpRequest, citizen: User, delivery_id: Any) -> HttpResponse:
    """One use of my data, with the proof that its audit entry is in the public log."""
    use = sharing_selectors.accesses_of(citizen).filter(delivery_id=delivery_id).first()
    if use is None:
        raise Http404
    return render(
        request,
        "consent/access.html",
        {"use": use, "inclusion": _check_inclusion(use.delivery.audit_entry_id, keys.jwks())},
    )


# --- rights requests -------------------------------------------------------------------------------


class RightsRequestForm(forms.Form):
    kind = forms.ChoiceField(
        label=gettext_lazy("What you ask"), choices=RightsRequest.Kind.choices, widget=forms.RadioSelect
    )
    details = forms.CharField(
        label=gettext_lazy("Details (what to correct, or why you object)"),
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=5000,
        required=False,
    )


RECIPIENT_STATUS: dict[str, Promise] = {
    "pending": gettext_lazy("being forwarded"),
    "forwarded": gettext_lazy("forwarded"),
    "acknowledged": gettext_lazy("acknowledged by the organisation"),
    "no_endpoint": gettext_lazy("not forwarded: this organisation receives no notices through Tiers"),
    "not_delivered": gettext_lazy("not delivered: the organisation did not answer for 26 hours"),
}


@citizen_page
def rights_requests(request: HttpRequest, citizen: User) -> HttpResponse:
    """File an erasure, rectification or objection with every organisation holding data about you."""
    form = RightsRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.rights_request_file(citizen=citizen, **form.cleaned_data)
        except TiersError as exc:
            form.add_error(None, exc.detail)
        else:
            messages.success(request, _("Your request is on its way to each organisation below."))
            return redirect("citizen-rights")
    filed = [
        {
            "request": filed,
            "recipients": [
                {"recipient": recipient, "status": RECIPIENT_STATUS[rights.recipient_status(recipient)]}
                for recipient in filed.recipients.all()
            ],
        }
        for filed in rights.requests_of(citizen)[:50]
    ]
    return render(request, "consent/rights.html", {"form": form, "filed": filed})
