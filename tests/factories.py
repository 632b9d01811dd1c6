"""Test data factories."""

from __future__ import annotations

import factory
from django.utils import timezone

from broker.models import Membership, Organisation, User
from consent.models import CitizenProfile

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.org")
    password = factory.django.Password(PASSWORD)


class CitizenFactory(UserFactory):
    class Meta:
        skip_postgeneration_save = True

    profile = factory.RelatedFactory("tests.factories.CitizenProfileFactory", factory_related_name="user")


class CitizenProfileFactory(factory.django.DjangoModelFactory[CitizenProfile]):
    class Meta:
        model = CitizenProfile

    user = factory.SubFactory(UserFactory)
    display_name = factory.LazyAttribute(lambda profile: profile.user.username.title())


class OrganisationFactory(factory.django.DjangoModelFactory[Organisation]):
    class Meta:
        model = Organisation

    slug = factory.Sequence(lambda n: f"org-{n}")
    name = factory.LazyAttribute(lambda org: org.slug.replace("-", " ").title())
    legal_identifier = factory.Sequence(lambda n: f"{100000000 + n}")
    identifier_scheme = Organisation.IdentifierScheme.SIREN
    country = "FR"
    kind = Organisation.Kind.HOLDER
    contact_email = factory.LazyAttribute(lambda org: f"contact@{org.slug}.example")
    verification_state = Organisation.Verification.VERIFIED
    verified_at = factory.LazyFunction(timezone.now)


class MembershipFactory(factory.django.DjangoModelFactory[Membership]):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organisation = factory.SubFactory(OrganisationFactory)
    role = Membership.Role.ADMIN
