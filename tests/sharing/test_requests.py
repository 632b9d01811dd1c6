"""Access requests: every broken rule is named and nothing is created; review by whom the agreement names."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.utils import timezone

from broker.errors import Conflict, Forbidden, InvalidInput, NotFound
from broker.models import Organisation, User
from broker.oauth import tokens
from consent.models import ConsentModule
from sharing import services
from sharing.models import AccessRequest, Agreement, Dataset, Grant
from tests.sharing.conftest import JUSTIFICATION, RESEARCH, agreement_in_force, consent_to, link

pytestmark = pytest.mark.django_db


def submit(by: User, organisation: Organisation, dataset: Dataset, **changes: Any) -> AccessRequest:
    now = timezone.now()
    values: dict[str, Any] = {
        "items": [services.RequestItem(dataset=dataset, fields=["day", "origin"])],
        "purpose": RESEARCH,
        "justification": JUSTIFICATION,
        "starts_at": now,
        "ends_at": now + datetime.timedelta(days=30),
        "retention_days": 30,
    }
    values.update(changes)
    return services.access_request_submit(by=by, organisation=organisation, **values)


def rules(excinfo: pytest.ExceptionInfo[InvalidInput]) -> list[str]:
    return [v["rule"] for v in excinfo.value.extensions["violations"]]


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"purpose": "dpv:Marketing"}, "purpose_allowed"),
        ({"justification": "because"}, "justification_given"),
        ({"retention_days": 4000}, "retention_within_limit"),
        ({"ends_at": timezone.now() + datetime.timedelta(days=900)}, "period_within_agreement"),
        ({"ends_at": timezone.now() - datetime.timedelta(days=1)}, "period_valid"),
    ],
)
def test_each_broken_rule_is_named_and_nothing_is_created(
    agreement: Agreement, trips: Dataset, user_admin: User, data_user: Organisation, changes: dict[str, Any], rule: str
) -> None:
    with pytest.raises(services.PolicyRefused) as refused:
        submit(user_admin, data_user, trips, **changes)
    assert rule in rules(refused)
    assert refused.value.status == 422
    assert not AccessRequest.objects.exists()


def test_fields_outside_the_schema_and_the_subject_key_are_refused(
    agreement: Agreement, trips: Dataset, user_admin: User, data_user: Organisation
) -> None:
    for fields in (["day", "salary"], ["traveller"]):
        with pytest.raises(services.PolicyRefused) as refused:
            submit(user_admin, data_user, trips, items=[services.RequestItem(dataset=trips, fields=fields)])
        assert rules(refused) == ["fields_in_schema"]


def test_a_recipient_the_agreement_does_not_allow_is_refused(
    holder_admin: User, operator: User, trips: Dataset, module: ConsentModule, user_admin: User, data_user: Organisation
) -> None:
    agreement_in_force(holder_admin, operator, [trips], recipient_categories=["research-body"])
    with pytest.raises(services.PolicyRefused) as refused:
        submit(user_admin, data_user, trips)
    assert rules(refused) == ["recipient_category_allowed"]


def test_no_agreement_in_force_refuses_everything(trips: Dataset, user_admin: User, data_user: Organisation) -> None:
    with pytest.raises(services.PolicyRefused) as refused:
        submit(user_admin, data_user, trips)
    assert rules(refused) == ["agreement_in_force"]


def test_a_module_that_does_not_cover_the_use_is_named(
    holder: Organisation, holder_admin: User, operator: User, trips: Dataset, user_admin: User, data_user: Organisation
) -> None:
    from consent import services as consent
    from tests.sharing.conftest import MODULE

    consent.module_publish(
        actor=holder_admin,
        holder=holder,
        slug="mobility",
        content={**MODULE, "recipient_categories": ["research-body"]},
    )
    agreement_in_force(holder_admin, operator, [trips])
    with pytest.raises(services.PolicyRefused) as refused:
        submit(user_admin, data_user, trips)
    assert rules(refused) == ["consent_module_covers_use"]


def test_coverage_counts_linked_subjects_consenting_to_exactly_this_use(
    holder_admin: User, operator: User, trips: Dataset, module: ConsentModule, holder: Organisation,
    alice: User, bob: User, user_admin: User, data_user: Organisation,
) -> None:  # fmt: skip
    agreement_in_force(holder_admin, operator, [trips], approval_mode=Agreement.ApprovalMode.HOLDER)
    link(alice, holder, "T-ALICE")
    link(bob, holder, "T-BOB")
    consent_to(alice, module, RESEARCH)
    consent_to(bob, module, "dpv:PublicBenefit")
    request = submit(user_admin, data_user, trips)
    assert (request.state, request.coverage, request.reviewer) == ("pending", 1, "holder")
    assert not Grant.objects.exists()


def test_the_holder_reviews_and_approval_creates_the_grant(
    holder_admin: User, operator: User, trips: Dataset, module: ConsentModule, user_admin: User, data_user: Organisation
) -> None:
    agreement_in_force(holder_admin, operator, [trips], approval_mode=Agreement.ApprovalMode.HOLDER)
    request = submit(user_admin, data_user, trips)
    for outsider in (user_admin, operator):  # the requester and the operator are not this agreement's reviewers
        with pytest.raises(Forbidden):
            services.access_request_review(by=outsider, access_request=request, approve=True, reason="ok")
    services.access_request_review(by=holder_admin, access_request=request, approve=True, reason="fits the purpose")
    grant = Grant.objects.get()
    assert (grant.organisation, grant.dataset, grant.fields, grant.purpose) == (
        data_user,
        trips,
        ["day", "origin"],
        RESEARCH,
    )
    with pytest.raises(Conflict):
        services.access_request_review(by=holder_admin, access_request=request, approve=False, reason="again")


def test_ethics_review_belongs_to_the_operators(
    holder_admin: User, operator: User, trips: Dataset, module: ConsentModule, user_admin: User, data_user: Organisation
) -> None:
    agreement_in_force(holder_admin, operator, [trips], approval_mode=Agreement.ApprovalMode.ETHICS)
    request = submit(user_admin, data_user, trips)
    with pytest.raises(Forbidden):
        services.access_request_review(by=holder_admin, access_request=request, approve=True, reason="ok")
    services.access_request_review(by=operator, access_request=request, approve=False, reason="too broad")
    request.refresh_from_db()
    assert (request.state, request.decision_reason) == ("rejected", "too broad")
    assert not Grant.objects.exists()


def test_another_organisation_cannot_request_in_a_data_users_name(
    agreement: Agreement, trips: Dataset, holder_admin: User, data_user: Organisation
) -> None:
    with pytest.raises(NotFound):
        submit(holder_admin, data_user, trips)


def test_revoking_a_grant_ends_it_for_the_holder_or_an_operator_only(
    agreement: Agreement, trips: Dataset, user_admin: User, data_user: Organisation, holder_admin: User
) -> None:
    grant = submit(user_admin, data_user, trips).grants.get()
    with pytest.raises(Forbidden):
        services.grant_revoke(by=user_admin, grant=grant, reason="mine")
    heard = tokens._liveness_generation()
    services.grant_revoke(by=holder_admin, grant=grant, reason="the study ended")
    grant.refresh_from_db()
    assert grant.state == "revoked"
    assert not grant.is_active()
    assert heard is None or tokens._liveness_generation() is not None


def test_terminating_an_agreement_ends_its_grants_unless_it_says_they_run_to_term(
    holder_admin: User, operator: User, trips: Dataset, module: ConsentModule, user_admin: User, data_user: Organisation
) -> None:
    first = agreement_in_force(holder_admin, operator, [trips])
    grant = submit(user_admin, data_user, trips).grants.get()
    services.agreement_terminate(by=holder_admin, agreement=first, reason="programme ended")
    grant.refresh_from_db()
    assert grant.state == "revoked"
    with pytest.raises(services.PolicyRefused) as refused:
        submit(user_admin, data_user, trips)
    assert rules(refused) == ["agreement_in_force"]

    lasting = agreement_in_force(holder_admin, operator, [trips], conditions={"grants_on_termination": "run_to_term"})
    kept = submit(user_admin, data_user, trips).grants.get()
    services.agreement_terminate(by=operator, agreement=lasting, reason="holder left")
    kept.refresh_from_db()
    assert kept.state == "active"


def test_withdrawing_a_dataset_ends_its_grants(
    agreement: Agreement, trips: Dataset, user_admin: User, data_user: Organisation, holder_admin: User
) -> None:
    grant = submit(user_admin, data_user, trips).grants.get()
    services.dataset_withdraw(by=holder_admin, dataset=trips, reason="the service closed")
    grant.refresh_from_db()
    assert grant.state == "revoked"
    with pytest.raises(services.PolicyRefused) as refused:
        submit(user_admin, data_user, trips)
    assert "dataset_active" in rules(refused)


def test_agreement_versions_chain_by_hash_and_signatures_bind_the_content(
    agreement: Agreement, trips: Dataset, holder_admin: User, operator: User, holder: Organisation
) -> None:
    from tests.sharing.conftest import terms

    second = services.agreement_propose(
        by=holder_admin, holder=holder, terms=terms([trips], purposes=[RESEARCH]), predecessor=agreement
    )
    assert (second.version, second.predecessor_hash, second.series) == (2, agreement.content_hash, agreement.series)
    assert second.content_hash != agreement.content_hash
    with pytest.raises(Conflict):  # a signature over another text is refused
        services.agreement_sign(by=holder_admin, agreement=second, content_hash=agreement.content_hash)
    with pytest.raises(Forbidden):  # operators countersign; they never sign for the holder
        services.agreement_sign(by=operator, agreement=second, content_hash=second.content_hash)
    services.agreement_sign(by=holder_admin, agreement=second, content_hash=second.content_hash)
    services.agreement_countersign(by=operator, agreement=second, content_hash=second.content_hash)
    agreement.refresh_from_db()
    assert agreement.state == "superseded"
    with pytest.raises(Conflict):  # nothing is edited in place: a superseded version gets no successor
        services.agreement_propose(by=holder_admin, holder=holder, terms=terms([trips]), predecessor=agreement)


def test_agreement_terms_are_checked(holder_admin: User, holder: Organisation, trips: Dataset) -> None:
    from tests.sharing.conftest import terms

    with pytest.raises(InvalidInput, match="general-interest"):
        services.agreement_propose(by=holder_admin, holder=holder, terms=terms([trips], purposes=["dpv:Marketing"]))
    with pytest.raises(InvalidInput, match="consent modules"):
        services.agreement_propose(by=holder_admin, holder=holder, terms=terms([trips], consent_modules=[]))


def test_results_are_filed_once_by_the_data_user_after_the_grant_ends(
    agreement: Agreement, trips: Dataset, user_admin: User, data_user: Organisation, holder_admin: User
) -> None:
    from sharing.models import ProcessingResult

    grant = submit(user_admin, data_user, trips).grants.get()
    summary = "The trips showed where a new tram stop would serve the most residents; published in the 2027 plan."
    with pytest.raises(Conflict):  # not while the grant runs
        services.results_file(by=user_admin, grant=grant, summary=summary, data_deleted=True)
    services.grant_revoke(by=holder_admin, grant=grant, reason="the study ended")
    with pytest.raises(Forbidden):  # the holder sees the grant but does not file in the data user's name
        services.results_file(by=holder_admin, grant=grant, summary=summary, data_deleted=True)
    with pytest.raises(InvalidInput):
        services.results_file(by=user_admin, grant=grant, summary="done", data_deleted=True)
    services.results_file(by=user_admin, grant=grant, summary=summary, data_deleted=True)
    assert ProcessingResult.objects.get(grant=grant).data_deleted is True
    with pytest.raises(Conflict):
        services.results_file(by=user_admin, grant=grant, summary=summary, data_deleted=True)


def test_approval_rechecks_the_datasets_and_the_period(
    holder_admin: User, operator: User, trips: Dataset, module: ConsentModule, user_admin: User, data_user: Organisation
) -> None:
    agreement_in_force(holder_admin, operator, [trips], approval_mode=Agreement.ApprovalMode.HOLDER)
    over = submit(user_admin, data_user, trips)
    past = timezone.now() - datetime.timedelta(days=1)
    AccessRequest.objects.filter(pk=over.pk).update(starts_at=past, ends_at=past + datetime.timedelta(hours=1))
    with pytest.raises(Conflict, match="period is over"):
        services.access_request_review(by=holder_admin, access_request=over, approve=True, reason="late")
    pending = submit(user_admin, data_user, trips)
    services.dataset_withdraw(by=holder_admin, dataset=trips, reason="closed")
    pending.refresh_from_db()
    assert pending.state == AccessRequest.State.REJECTED  # withdrawing rejects the requests naming it
    assert not Grant.objects.exists()


def test_a_withdrawal_after_submission_blocks_approval(
    holder_admin: User, operator: User, trips: Dataset, module: ConsentModule, user_admin: User, data_user: Organisation
) -> None:
    agreement_in_force(holder_admin, operator, [trips], approval_mode=Agreement.ApprovalMode.HOLDER)
    pending = submit(user_admin, data_user, trips)
    Dataset.objects.filter(pk=trips.pk).update(state=Dataset.State.WITHDRAWN)  # as if withdrawn meanwhile
    with pytest.raises(Conflict, match="withdrawn"):
        services.access_request_review(by=holder_admin, access_request=pending, approve=True, reason="ok")


def test_terminating_a_version_ends_its_unsigned_successors_and_drafts_stay_private(
    agreement: Agreement, trips: Dataset, holder_admin: User, operator: User, holder: Organisation
) -> None:
    from django.contrib.auth.models import AnonymousUser

    from sharing import policy
    from tests.sharing.conftest import terms

    second = services.agreement_propose(by=holder_admin, holder=holder, terms=terms([trips]), predecessor=agreement)
    services.agreement_sign(by=holder_admin, agreement=second, content_hash=second.content_hash)
    abandoned = services.agreement_propose(by=holder_admin, holder=holder, terms=terms([trips], title="Abandoned"))
    services.agreement_terminate(by=holder_admin, agreement=abandoned, reason="never mind")
    services.agreement_terminate(by=operator, agreement=agreement, reason="holder breached the terms")
    second.refresh_from_db()
    assert second.state == Agreement.State.TERMINATED
    with pytest.raises(Conflict):
        services.agreement_countersign(by=operator, agreement=second, content_hash=second.content_hash)
    public = set(policy.agreements_visible_to(AnonymousUser()).values_list("pk", flat=True))
    assert agreement.pk in public  # it was in force: its end is public
    assert abandoned.pk not in public  # never countersigned: never public
    assert second.pk not in public


def test_a_grant_bound_token_sees_only_its_own_grant(
    agreement: Agreement, trips: Dataset, user_admin: User, data_user: Organisation
) -> None:
    from broker.oauth.tokens import Caller, ClientPrincipal
    from sharing import policy
    from tests.broker.oauth.conftest import register_secret_client

    first = submit(user_admin, data_user, trips).grants.get()
    submit(user_admin, data_user, trips)
    client, _ = register_secret_client(user_admin, data_user, scopes=("grants",))
    bound = ClientPrincipal(
        Caller(client=client, organisation=data_user, grant=first, claims={"scope": f"grant:{first.pk}"})
    )
    assert not policy.requests_visible_to(bound).exists()
    assert not policy.grants_visible_to(bound).exists()
    wide = ClientPrincipal(
        Caller(client=client, organisation=data_user, grant=None, claims={"scope": "access_requests"})
    )
    assert policy.grants_visible_to(wide).count() == 2
