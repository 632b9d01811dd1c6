"""Who may do what to which organisation: the one place the trust core decides it.

Deny by default: an action is allowed only when a rule below says so. Callers
ask `can()` for a yes or no, or `require()` to raise the error that hides what
the caller may not see.
"""

from __future__ import annotations

from enum import StrEnum

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q

from broker.errors import Forbidden, NotFound
from broker.models import Membership, Organisation, User
from broker.oauth.tokens import ClientPrincipal

Role = Membership.Role
Principal = User | AnonymousUser | ClientPrincipal


class OrgAction(StrEnum):
    VIEW_PRIVATE = "view_private"  # contact, members, state, and everything the org owns
    EDIT_PROFILE = "edit_profile"
    MANAGE_MEMBERS = "manage_members"
    MANAGE_CLIENTS = "manage_clients"  # register, rotate and disable OAuth clients
    ISSUE_LINK_CODES = "issue_link_codes"  # a holder's one-time codes for its customers
    PUBLISH_CONSENT_MODULES = "publish_consent_modules"
    MANAGE_DATASETS = "manage_datasets"  # register datasets, upload, delete records, withdraw
    SIGN_AGREEMENTS = "sign_agreements"  # draft, sign and terminate the holder's agreements
    REQUEST_ACCESS = "request_access"  # a data user's access requests
    REVIEW_REQUESTS = "review_requests"  # approve or reject requests for the holder's data
    REVOKE_GRANTS = "revoke_grants"  # end grants on the holder's data
    DECIDE = "decide"  # a federated holder's API asks which subjects may be included
    MANAGE_WEBHOOKS = "manage_webhooks"  # endpoints, deliveries, replays, deletion attestations
    VERIFY = "verify"  # verify, reject or exclude: the operator's call alone


# role -> actions it allows on its own organisation
MEMBER_RULES: dict[str, frozenset[OrgAction]] = {
    Role.ADMIN: frozenset(
        {
            OrgAction.VIEW_PRIVATE,
            OrgAction.EDIT_PROFILE,
            OrgAction.MANAGE_MEMBERS,
            OrgAction.MANAGE_CLIENTS,
            OrgAction.ISSUE_LINK_CODES,
            OrgAction.PUBLISH_CONSENT_MODULES,
            OrgAction.MANAGE_DATASETS,
            OrgAction.SIGN_AGREEMENTS,
            OrgAction.REQUEST_ACCESS,
            OrgAction.REVIEW_REQUESTS,
            OrgAction.REVOKE_GRANTS,
            OrgAction.MANAGE_WEBHOOKS,
        }
    ),
    Role.DATA_STEWARD: frozenset(
        {
            OrgAction.VIEW_PRIVATE,
            OrgAction.ISSUE_LINK_CODES,
            OrgAction.PUBLISH_CONSENT_MODULES,
            OrgAction.MANAGE_DATASETS,
            OrgAction.REQUEST_ACCESS,
        }
    ),
    Role.REVIEWER: frozenset({OrgAction.VIEW_PRIVATE, OrgAction.REVIEW_REQUESTS}),
}
# Operators act on every organisation, but never in its place: they do not manage a holder's
# datasets, issue its link codes or publish its consent modules (an operator could otherwise link
# an account of its own to a real customer's reference), sign its agreements, request access for
# a data user, or answer as a holder's API.
OPERATOR_RULES = frozenset(OrgAction) - {
    OrgAction.MANAGE_DATASETS,
    OrgAction.ISSUE_LINK_CODES,
    OrgAction.PUBLISH_CONSENT_MODULES,
    OrgAction.SIGN_AGREEMENTS,
    OrgAction.REQUEST_ACCESS,
    OrgAction.DECIDE,
}
# action -> the token scope an organisation's OAuth client needs for it (absent: clients may not)
CLIENT_SCOPES: dict[OrgAction, str] = {
    OrgAction.VIEW_PRIVATE: "organisation",
    OrgAction.ISSUE_LINK_CODES: "link_codes",
    OrgAction.PUBLISH_CONSENT_MODULES: "consent_modules",
    OrgAction.MANAGE_DATASETS: "datasets",
    OrgAction.REQUEST_ACCESS: "access_requests",
    OrgAction.DECIDE: "decisions",
    OrgAction.MANAGE_WEBHOOKS: "webhooks",
}


def role_in(user: Principal, organisation: Organisation) -> str | None:
    """The user's role in the organisation, or None."""
    if not isinstance(user, User) or not user.is_active:
        return None
    membership = Membership.objects.filter(user=user, organisation=organisation).first()
    return membership.role if membership else None


def can(user: Principal, action: OrgAction, organisation: Organisation) -> bool:
    """Whether the user (or an organisation's OAuth client) may take the action on the organisation."""
    if isinstance(user, ClientPrincipal):
        caller = user.caller
        scope = CLIENT_SCOPES.get(action)
        return scope is not None and caller.organisation.pk == organisation.pk and scope in caller.scopes
    if isinstance(user, User) and user.is_operator:
        return action in OPERATOR_RULES
    role = role_in(user, organisation)
    return role is not None and action in MEMBER_RULES[role]


def require(user: Principal, action: OrgAction, organisation: Organisation) -> None:
    """Raise unless allowed: NotFound to outsiders, so private pages do not leak."""
    if can(user, action, organisation):
        return
    if isinstance(user, ClientPrincipal) and user.caller.organisation.pk == organisation.pk:  # its own org
        raise Forbidden("This access token's scope does not allow it.")
    if can(user, OrgAction.VIEW_PRIVATE, organisation):
        raise Forbidden(f"Your role does not allow {action.value.replace('_', ' ')}.")
    raise NotFound("No such organisation.")


def can_read_audit_event(user: User | AnonymousUser, citizen_id: int | None) -> bool:
    """Public events are for everyone; an event about a citizen, for them and operators only."""
    if citizen_id is None:
        return True
    if isinstance(user, User) and user.is_operator:
        return True
    return user.is_authenticated and user.is_active and user.pk == citizen_id


def audit_events_readable_by(user: User | AnonymousUser) -> Q:
    """The rule above as a filter on audit entries, for queries."""
    if isinstance(user, User) and user.is_operator:
        return Q(body__isnull=False)
    public = Q(body__isnull=False, body__citizen_id__isnull=True)
    if user.is_authenticated and user.is_active:
        return public | Q(body__citizen_id=user.pk)
    return public
