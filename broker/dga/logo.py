"""The common logo of Implementing Regulation (EU) 2023/1622, its prescribed label, and the register QR code.

Tiers never draws the logo itself: the operator downloads the official artwork
(SVG) from the Commission and names the file in TIERS_DGA_LOGO_FILE. Without
that file the pages show the text label the DGA prescribes instead. Either is
shown only while the registration is active (see docs/transparency.md).
"""

from __future__ import annotations

import io
from pathlib import Path

import segno
from django.conf import settings
from django.utils.translation import gettext as _

from broker.dga.models import OperatorProfile

LOGO_MAX_BYTES = 1024 * 1024  # the official artwork is a few kilobytes; anything far larger is not it

# What Art. 17(2) and Art. 11(9) of Regulation (EU) 2022/868 let a registered entity call itself.
LABEL_ARTICLES: dict[str, str] = {
    OperatorProfile.Role.DATA_ALTRUISM.value: "Art. 17(2)",
    OperatorProfile.Role.INTERMEDIATION.value: "Art. 11(9)",
}


def label(role: str) -> str:
    """The words the regulation prescribes for the role, in the reader's language."""
    if role == OperatorProfile.Role.INTERMEDIATION:
        return _("Data intermediation services provider recognised in the Union")
    return _("Data altruism organisation recognised in the Union")


def logo_file() -> Path | None:
    """The official logo the operator installed, if the setting names a readable SVG file."""
    configured: str = getattr(settings, "TIERS_DGA_LOGO_FILE", "") or ""
    if not configured:
        return None
    path = Path(configured)
    if path.suffix.lower() != ".svg" or not path.is_file():
        return None
    return path


def logo_svg() -> bytes | None:
    """The official logo's bytes, or None when it is not installed or does not look like an SVG."""
    path = logo_file()
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) > LOGO_MAX_BYTES or b"<svg" not in data[:4096]:
        return None
    return data


def may_show_recognition(profile: OperatorProfile | None) -> bool:
    """The logo and label belong to a registration in force, and to nothing else."""
    return profile is not None and profile.is_active


def qr_svg(url: str) -> bytes:
    """A QR code of the URL as a standalone SVG document: dark modules on white, with a quiet zone."""
    code = segno.make(url, error="m", micro=False)
    out = io.BytesIO()
    code.save(out, kind="svg", scale=4, border=4, dark="#000", light="#fff", xmldecl=False, title=url)
    return out.getvalue()
