"""Tagged PDF from the reports' HTML, by WeasyPrint, loaded only when a PDF is asked for.

WeasyPrint needs Pango (and its HarfBuzz and fontconfig) from the system. A
server without them still runs; it answers PDF requests with a 503 problem
naming the library that failed to load.
"""

from __future__ import annotations

from typing import Any

from broker.errors import TiersError


class PdfUnavailable(TiersError):
    status = 503
    slug = "pdf-unavailable"
    title = "PDF rendering is not available on this server."


def _weasyprint() -> Any:
    try:
        import weasyprint  # lazy: importing it loads Pango through cffi
    except OSError as error:  # cffi names the shared library it could not open
        raise PdfUnavailable(
            f"WeasyPrint could not load a system library it needs (Pango): {error}. Ask for HTML or JSON instead."
        ) from error
    except ImportError as error:
        raise PdfUnavailable(f"WeasyPrint is not installed: {error}.") from error
    return weasyprint


def html_to_pdf(html: str) -> bytes:
    """A tagged PDF (PDF/UA-1 structure) of a standalone HTML page."""
    weasyprint = _weasyprint()
    # Uncompressed so the structure tree stays readable in the file; the reports are a few pages.
    document: bytes = weasyprint.HTML(string=html).write_pdf(
        pdf_tags=True, pdf_variant="pdf/ua-1", uncompressed_pdf=True
    )
    return document
