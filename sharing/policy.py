"""Who may see and do what in data sharing: the one place the sharing app decides it.

Deny by default. Organisation-level rights come from broker.policy (roles and
client scopes); this module adds what depends on the object: a dataset's
holder, a request's two parties, an agreement's reviewer, a token's grant.
Refusals raise NotFound to whoever may not see the object at all.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from broker import policy as org_policy
from broker.errors import Forbidden, NotFound
from broker.models import Membership, OAuthClient, Organisation, User
from broker.oauth.tokens import ClientPrincipal
from broker.policy import OrgAction, Principal
from sharing.models import AccessRequest, Agreement, Dataset, Grant, Upload

# Public once countersigned: in force, superseded, or ended after coming into force (never drafts).
PUBLIC_AGREEMENTS = Q(state__in=(Agreement.State.ACTIVE, Agreement.State.SUPERSEDED)) | Q(
    state=Agreement.State.TERMINATED, countersigned_at__isnull=False
)


def is_operator(principal: Principal) -> bool:
    return isinstance(principal, User) and principal.is_active and principal.is_operator


def actor_of(principal: Principal) -> User | OAuthClient:
    """Who an audit entry names: the person, or the organisation's OAuth client."""
    if isinstance(principal, ClientPrincipal):
        return principal.caller.client
    if isinstance(principal, User):
        return principal
    raise Forbidden("Log in first.")


def organisations_of(principal: Principal, *scopes: str) -> list[int]:
    """The organisations whose private objects a principal sees: those it is a member of, or its
    client's organisation when the token carries `organisation` or one of `scopes` (a token bound
    to one grant, or for link codes alone, sees nothing else)."""
    if isinstance(principal, ClientPrincipal):
        granted = principal.caller.scopes & {"organisation", *scopes}
        return [principal.caller.organisation.pk] if granted else []
    if isinstance(principal, User) and principal.is_active:
        return list(Membership.objects.filter(user=principal).values_list("organisation_id", flat=True))
    return []


def _member_sees(principal: Principal, organisation_id: int, *scopes: str) -> bool:
    return organisation_id in organisations_of(principal, *scopes)


def require_org(principal: Principal, action: OrgAction, organisation: Organisation) -> None:
    org_policy.require(principal, action, organisation)


# --- datasets ------------------------------------------------------------------------------------


def datasets_visible_to(principal: Principal) -> QuerySet[Dataset]:
    """Active datasets of verified holders are public (the catalogue); a holder also sees its own."""
    public = Q(state=Dataset.State.ACTIVE, holder__verification_state=Organisation.Verification.VERIFIED)
    if is_operator(principal):
        return Dataset.objects.all()
    return Dataset.objects.filter(public | Q(holder_id__in=organisations_of(principal, "datasets")))


def require_dataset_admin(principal: Principal, dataset: Dataset) -> None:
    """Uploads, deletions, key rotation and withdrawal: the holder's stewards and admins (or clients)."""
    org_policy.require(principal, OrgAction.MANAGE_DATASETS, dataset.holder)


def uploads_visible_to(principal: Principal, dataset: Dataset) -> QuerySet[Upload]:
    if is_operator(principal) or _member_sees(principal, dataset.holder_id, "datasets"):
        return dataset.uploads.all()
    raise NotFound("No such dataset.")


# --- agreements ----------------------------------------------------------------------------------


def agreements_visible_to(principal: Principal) -> QuerySet[Agreement]:
    """Agreements once in force are public; drafts, to their holder and the operators."""
    if is_operator(principal):
        return Agreement.objects.all()
    return Agreement.objects.filter(PUBLIC_AGREEMENTS | Q(holder_id__in=organisations_of(principal, "organisation")))


def require_agreement_party(principal: Principal, agreement: Agreement) -> None:
    """Signing and terminating: the holder's admins (a person, never a client)."""
    if isinstance(principal, ClientPrincipal):
        raise Forbidden("An agreement is signed by a person of the holder, not by a client.")
    org_policy.require(principal, OrgAction.SIGN_AGREEMENTS, agreement.holder)


def require_operator(principal: Principal) -> None:
    if not is_operator(principal):
        raise Forbidden("Only an operator of Tiers may do this.")


# --- access requests and grants ------------------------------------------------------------------


def requests_visible_to(principal: Principal) -> QuerySet[AccessRequest]:
    """A request is seen by the requesting organisation, the holder, and the operators."""
    if is_operator(principal):
        return AccessRequest.objects.all()
    mine = organisations_of(principal, "access_requests")
    return AccessRequest.objects.filter(Q(organisation_id__in=mine) | Q(agreement__holder_id__in=mine))


def require_reviewer(principal: Principal, request: AccessRequest) -> None:
    """The reviewer the agreement names: the holder's reviewers and admins, or an operator (ethics)."""
    if request.reviewer == Agreement.ApprovalMode.ETHICS:
        if is_operator(principal):
            return
    elif request.reviewer == Agreement.ApprovalMode.HOLDER:
        # The holder's own people: an operator does not review in the holder's place.
        role = org_policy.role_in(principal, request.agreement.holder)
        if role is not None and OrgAction.REVIEW_REQUESTS in org_policy.MEMBER_RULES[role]:
            return
    raise Forbidden("This request is not yours to review.")


def grants_visible_to(principal: Principal) -> QuerySet[Grant]:
    """A grant is seen by its organisation, the dataset's holder, and the operators."""
    if is_operator(principal):
        return Grant.objects.all()
    mine = organisations_of(principal, "access_requests")
    return Grant.objects.filter(Q(organisation_id__in=mine) | Q(dataset__holder_id__in=mine))


def require_grant_revoker(principal: Principal, grant: Grant) -> None:
    """The holder's admins or an operator end a grant early."""
    if is_operator(principal):
        return
    if isinstance(principal, User) and org_policy.can(principal, OrgAction.REVOKE_GRANTS, grant.dataset.holder):
        return
    raise Forbidden("Only the data holder's admins or an operator may revoke this grant.")


def require_grant_reader(auth: Any, grant: Grant) -> None:
    """Reading records needs an access token bound to exactly this grant, held by its organisation."""
    caller = getattr(auth, "caller", None) or auth
    bound = getattr(caller, "grant", None)
    if bound is None or bound.pk != grant.pk or caller.organisation.pk != grant.organisation_id:
        raise NotFound("No such grant for this token.")


def require_decider(principal: Principal, grant: Grant) -> None:
    """Decisions and receipts: the holder's own API, by a client with the decisions scope."""
    if not isinstance(principal, ClientPrincipal) or principal.caller.organisation.pk != grant.dataset.holder_id:
        raise NotFound("No such grant for this holder.")
    org_policy.require(principal, OrgAction.DECIDE, grant.dataset.holder)
