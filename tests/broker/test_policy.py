"""The trust core's policy, as a matrix of role × action, own and other organisation."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from broker import policy
from broker.errors import Forbidden, NotFound
from broker.models import Membership
from broker.policy import OrgAction
from tests.factories import CitizenFactory, MembershipFactory, OrganisationFactory, UserFactory

A = OrgAction
ALLOWED_ON_OWN = {
    Membership.Role.ADMIN: {
        A.VIEW_PRIVATE,
        A.EDIT_PROFILE,
        A.MANAGE_MEMBERS,
        A.MANAGE_CLIENTS,
        A.MANAGE_WEBHOOKS,
        A.ISSUE_LINK_CODES,
        A.PUBLISH_CONSENT_MODULES,
        A.MANAGE_DATASETS,
        A.SIGN_AGREEMENTS,
        A.REQUEST_ACCESS,
        A.REVIEW_REQUESTS,
        A.REVOKE_GRANTS,
    },
    Membership.Role.DATA_STEWARD: {
        A.VIEW_PRIVATE,
        A.ISSUE_LINK_CODES,
        A.PUBLISH_CONSENT_MODULES,
        A.MANAGE_DATASETS,
        A.REQUEST_ACCESS,
    },
    Membership.Role.REVIEWER: {A.VIEW_PRIVATE, A.REVIEW_REQUESTS},
}
# Operators act on every organisation, but never in its place.
NOT_FOR_OPERATORS = {
    A.MANAGE_DATASETS,
    A.ISSUE_LINK_CODES,
    A.PUBLISH_CONSENT_MODULES,
    A.SIGN_AGREEMENTS,
    A.REQUEST_ACCESS,
    A.DECIDE,
}


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(Membership.Role))
@pytest.mark.parametrize("action", list(OrgAction))
def test_member_may_do_what_their_role_allows_on_their_own_organisation_only(role, action) -> None:  # type: ignore[no-untyped-def]
    membership = MembershipFactory(role=role)
    other = OrganisationFactory()
    expected = action in ALLOWED_ON_OWN[role]
    assert policy.can(membership.user, action, membership.organisation) is expected
    assert policy.can(membership.user, action, other) is False


@pytest.mark.django_db
@pytest.mark.parametrize("action", list(OrgAction))
def test_operators_may_do_all_but_act_in_an_organisations_place_and_others_nothing(action) -> None:  # type: ignore[no-untyped-def]
    organisation = OrganisationFactory()
    assert policy.can(UserFactory(is_staff=True), action, organisation) is (action not in NOT_FOR_OPERATORS)
    assert not policy.can(CitizenFactory(), action, organisation)
    assert not policy.can(UserFactory(), action, organisation)
    assert not policy.can(AnonymousUser(), action, organisation)


@pytest.mark.django_db
def test_a_deactivated_member_loses_every_right() -> None:
    membership = MembershipFactory(role=Membership.Role.ADMIN, user__is_active=False)
    assert not policy.can(membership.user, A.VIEW_PRIVATE, membership.organisation)


@pytest.mark.django_db
def test_outsiders_are_told_not_found_and_members_are_told_forbidden() -> None:
    steward = MembershipFactory(role=Membership.Role.DATA_STEWARD)
    with pytest.raises(Forbidden):
        policy.require(steward.user, A.EDIT_PROFILE, steward.organisation)
    with pytest.raises(NotFound):
        policy.require(steward.user, A.VIEW_PRIVATE, OrganisationFactory())
