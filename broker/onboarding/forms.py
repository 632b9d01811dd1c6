"""The forms of the onboarding pages: applying for an organisation, and inviting members."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy

from broker.models import Membership, Organisation
from sharing.forms import PortalForm


class ApplicationForm(PortalForm):
    name = forms.CharField(label=gettext_lazy("Legal name"), max_length=200)
    slug = forms.SlugField(
        label=gettext_lazy("Short name"),
        max_length=64,
        help_text=gettext_lazy("Letters, digits and hyphens; it appears in your organisation's addresses."),
    )
    identifier_scheme = forms.ChoiceField(
        label=gettext_lazy("Kind of legal identifier"), choices=Organisation.IdentifierScheme.choices
    )
    legal_identifier = forms.CharField(
        label=gettext_lazy("Legal identifier"),
        max_length=64,
        help_text=gettext_lazy("For a SIREN, its nine digits; Tiers checks the check digit."),
    )
    country = forms.CharField(
        label=gettext_lazy("Country"),
        min_length=2,
        max_length=2,
        help_text=gettext_lazy("The ISO 3166-1 alpha-2 code of the registered office, e.g. FR."),
    )
    kind = forms.ChoiceField(label=gettext_lazy("What it does with data"), choices=Organisation.Kind.choices)
    recipient_category = forms.ChoiceField(
        label=gettext_lazy("Kind of data user"),
        choices=[("", gettext_lazy("— not a data user —")), *Organisation.RecipientCategory.choices],
        required=False,
        help_text=gettext_lazy("Data users only: agreements and consents name the kinds of recipient they allow."),
    )
    contact_email = forms.EmailField(
        label=gettext_lazy("Contact e-mail"),
        help_text=gettext_lazy("Where Tiers tells you the outcome of the verification."),
    )


class InvitationForm(PortalForm):
    email = forms.EmailField(label=gettext_lazy("E-mail address"))
    role = forms.ChoiceField(label=gettext_lazy("Role"), choices=Membership.Role.choices)
