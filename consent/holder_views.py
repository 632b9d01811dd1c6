"""A data holder's consent modules in its organisation pages, under /org/<slug>/consent-modules/.

Members and operators see every version of every module and the form each one shows citizens;
admins and data stewards publish (the rule of `POST /api/v1/consent-modules/`). The page's form
has the API's fields and is checked by the API's own serializer, so that both give the same
answers; the same service then publishes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import groupby
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_stubs_ext import StrOrPromise

from broker import policy as org_policy
from broker.errors import TiersError
from broker.models import Organisation, User
from broker.policy import OrgAction
from consent import services
from consent.api import ModuleContent
from consent.forms import ConsentForm, term_label
from consent.models import ConsentModule
from consent.views import module_context
from sharing.forms import PURPOSE_CHOICES, PortalForm, comma_separated
from sharing.views import org_page

TEXT_FIELDS = ("slug", "title_en", "title_fr", "notice_en", "notice_fr", "duration_days")
OPTIONAL_FIELDS = ("risks_en", "risks_fr", "jurisdiction")  # left empty, the API's default applies


def _text(label: StrOrPromise, *, rows: int = 0, required: bool = True, **attrs: Any) -> forms.CharField:
    """A text field the API's serializer checks: the page only says which ones must be filled."""
    widget = forms.Textarea(attrs={"rows": rows, **attrs}) if rows else forms.TextInput(attrs=attrs)
    if required:
        widget.attrs["required"] = True
    return forms.CharField(label=label, required=False, strip=False, widget=widget)


class ModuleForm(PortalForm):
    """The fields of `POST /api/v1/consent-modules/`, each term list in the vocabulary agreements use."""

    slug = forms.CharField(
        label=gettext_lazy("Short name"),
        required=False,
        help_text=gettext_lazy("Letters, digits and hyphens. The same short name publishes a new version."),
        widget=forms.TextInput(attrs={"required": True, "autocomplete": "off", "spellcheck": "false"}),
    )
    title_en = _text(gettext_lazy("Title in English"))
    title_fr = _text(gettext_lazy("Title in French"), lang="fr")
    notice_en = _text(gettext_lazy("Notice in English"), rows=6)
    notice_fr = _text(gettext_lazy("Notice in French"), rows=6, lang="fr")
    risks_en = _text(gettext_lazy("Risks in plain words, in English (optional)"), rows=3, required=False)
    risks_fr = _text(gettext_lazy("Risks in plain words, in French (optional)"), rows=3, required=False, lang="fr")
    data_categories = forms.CharField(
        label=gettext_lazy("Personal data categories"),
        help_text=gettext_lazy("Comma-separated W3C DPV terms, e.g. dpv-pd:EnergyConsumption, dpv-pd:Location."),
        required=False,
        widget=forms.TextInput(attrs={"required": True, "spellcheck": "false"}),
    )
    purposes = forms.MultipleChoiceField(
        label=gettext_lazy("General-interest purposes citizens can agree to, one by one"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    recipient_categories = forms.MultipleChoiceField(
        label=gettext_lazy("Kinds of recipients"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    duration_days = forms.CharField(
        label=gettext_lazy("Duration of a consent, in days"),
        required=False,
        widget=forms.NumberInput(attrs={"required": True, "min": 1, "max": 3650}),
    )
    jurisdiction = forms.CharField(
        label=gettext_lazy("Jurisdiction"),
        help_text=gettext_lazy("Where the data is processed; EU when left empty."),
        required=False,
        initial="EU",
    )

    def __init__(self, *args: Any, known: Iterable[ConsentModule] = (), **kwargs: Any) -> None:
        """`known`: the holder's modules, whose terms are offered even where the vocabulary lacks them."""
        super().__init__(*args, **kwargs)
        modules = list(known)
        self._offer("purposes", PURPOSE_CHOICES, [t for m in modules for t in m.purposes])
        recipients = [(term, f"{label} ({term})") for term, label in Organisation.RecipientCategory.choices]
        self._offer("recipient_categories", recipients, [t for m in modules for t in m.recipient_categories])
        self.content: dict[str, Any] = {}

    def _offer(self, name: str, vocabulary: list[tuple[str, Any]], used: list[str]) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.MultipleChoiceField)
        offered = {term for term, _label in vocabulary}
        extra = [(term, f"{term_label(term)} ({term})") for term in dict.fromkeys(used) if term not in offered]
        field.choices = [*vocabulary, *extra]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        payload = self.payload(cleaned)
        checked = ModuleContent(data=payload)
        if checked.is_valid():
            self.content = dict(checked.validated_data)
        else:
            for name, problems in checked.errors.items():
                for message in _messages(problems, payload.get(name)):
                    self.add_error(name if name in self.fields else None, message)
        return cleaned

    def payload(self, cleaned: dict[str, Any]) -> dict[str, Any]:
        """The JSON body the API would have received for what the page holds."""
        body: dict[str, Any] = {name: cleaned.get(name, "") for name in TEXT_FIELDS}
        body |= {name: cleaned[name] for name in OPTIONAL_FIELDS if cleaned.get(name, "").strip()}
        body["data_categories"] = comma_separated(cleaned.get("data_categories", ""))
        body["purposes"] = list(cleaned.get("purposes") or [])
        body["recipient_categories"] = list(cleaned.get("recipient_categories") or [])
        return body


def _messages(problems: Any, values: Any) -> Iterator[str]:
    """The serializer's messages as text; a list's item errors ({index: [...]}) name the item."""
    if isinstance(problems, dict):
        for index, inner in problems.items():
            item = values[int(index)] if isinstance(values, list) and int(index) < len(values) else index
            for message in _messages(inner, None):
                yield f"“{item}”: {message}"
        return
    for problem in problems if isinstance(problems, list) else [problems]:
        yield str(problem)


def _can_publish(user: User, organisation: Organisation) -> bool:
    return organisation.holds_data and org_policy.can(user, OrgAction.PUBLISH_CONSENT_MODULES, organisation)


def _modules(organisation: Organisation) -> list[ConsentModule]:
    return list(ConsentModule.objects.filter(holder=organisation).order_by("slug", "-version"))


def _initial(modules: list[ConsentModule], slug: str) -> dict[str, Any]:
    """The form filled with the current version of a module, for publishing the next one."""
    current = next((m for m in modules if m.slug == slug and m.retired_at is None), None)
    if current is None:
        return {}
    fields = {name: getattr(current, name) for name in (*TEXT_FIELDS, *OPTIONAL_FIELDS)}
    return fields | {
        "data_categories": ", ".join(current.data_categories),
        "purposes": current.purposes,
        "recipient_categories": current.recipient_categories,
    }


@org_page
def module_list(request: HttpRequest, user: User, organisation: Organisation) -> HttpResponse:
    """The holder's consent modules, each with every version, its state and the form citizens read."""
    rows = [
        {"slug": slug, "versions": versions, "current": next((m for m in versions if m.retired_at is None), None)}
        for slug, grouped in groupby(_modules(organisation), key=lambda module: module.slug)
        for versions in [list(grouped)]
    ]
    context = {"organisation": organisation, "rows": rows, "can_publish": _can_publish(user, organisation)}
    return render(request, "consent/org/module_list.html", context)


@org_page
def module_publish(request: HttpRequest, user: User, organisation: Organisation) -> HttpResponse:
    """Publish a module, or the next version of one; nothing is published unless every field passes."""
    if not _can_publish(user, organisation):
        return render(request, "consent/org/module_publish.html", {"organisation": organisation}, status=403)
    modules = _modules(organisation)
    data = request.POST if request.method == "POST" else None
    form = ModuleForm(data, initial=_initial(modules, request.GET.get("module", "")), known=modules)
    if form.is_bound and form.is_valid():
        slug = form.content.pop("slug")
        before = next((m for m in modules if m.slug == slug and m.retired_at is None), None)
        try:
            module = services.module_publish(actor=user, holder=organisation, slug=slug, content=form.content)
        except TiersError as exc:
            form.add_error(None, exc.detail)
        else:
            names = {"slug": module.slug, "version": module.version}
            if before is not None and before.pk == module.pk:
                messages.info(request, _("Nothing changed: version %(version)s of “%(slug)s” stays current.") % names)
            else:
                messages.success(request, _("Version %(version)s of “%(slug)s” published.") % names)
            return redirect("consent-module-list", slug=organisation.slug)
    return render(request, "consent/org/module_publish.html", {"organisation": organisation, "form": form})


@org_page
def module_preview(request: HttpRequest, user: User, organisation: Organisation, module_id: int) -> HttpResponse:
    """One version of a module as citizens linked with the holder read it; its choices cannot be ticked here."""
    module = ConsentModule.objects.filter(holder=organisation, pk=module_id).select_related("holder").first()
    if module is None:
        raise Http404("No such module.")
    form = ConsentForm(purposes=module.purposes)
    form.fields["purposes"].disabled = True
    context = {**module_context(module), "organisation": organisation, "preview": True, "form": form}
    return render(request, "consent/module.html", context)
