"""The terms agreements, requests and grants speak: W3C DPV purposes for the DGA's general interest."""

from __future__ import annotations

DPV = "https://w3id.org/dpv#"
DPV_PD = "https://w3id.org/dpv/pd#"

# DGA Art. 2(16) objectives of general interest, each with the DPV purpose term it maps to.
GENERAL_INTEREST_PURPOSES: dict[str, str] = {
    "dpv:NonCommercialResearch": "scientific research (non-commercial)",
    "dpv:ScientificResearch": "scientific research",
    "dpv:AcademicResearch": "academic research",
    "dpv:PublicBenefit": "public services and public policy making",
    "dpv:OfficialStatistics": "official statistics",
}

# What an agreement's conditions may say, and their defaults.
CONDITION_DEFAULTS: dict[str, object] = {
    "no_reidentification": True,
    "eu_processing_only": True,
    "non_commercial": True,
    "retention_days_max": 365,
    "grant_days_max": 365,
    "grants_on_termination": "end",  # or "run_to_term"
    # Data users confirm they deleted a citizen's data when told of a withdrawal (DGA Art. 21).
    "deletion_on_withdrawal": True,
}


def expand(term: str) -> str:
    """A compact DPV term as its IRI."""
    for prefix, base in (("dpv-pd:", DPV_PD), ("dpv:", DPV)):
        if term.startswith(prefix):
            return base + term.removeprefix(prefix)
    return term
