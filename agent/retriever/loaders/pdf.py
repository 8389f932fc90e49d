"""PDF: the text layer of every page (pypdf), pages separated by a blank line.

Scanned PDFs without a text layer yield no text and are reported as such; OCR is out
of scope.
"""

from __future__ import annotations

import io
import logging

from agent.retriever.loaders.text import UnreadableFile


def load_pdf(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError, PyPdfError

    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise UnreadableFile("not a PDF file (no %PDF header)")
    # pypdf logs recoverable problems of sloppy files as warnings; they are noise here.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                if not reader.decrypt(""):
                    raise UnreadableFile("encrypted PDF (a password is needed)")
            except (NotImplementedError, PyPdfError) as exc:
                raise UnreadableFile(f"encrypted PDF ({exc})") from None
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except UnreadableFile:
        raise
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnreadableFile(f"broken PDF ({type(exc).__name__}: {exc})") from None
    text = "\n\n".join(page for page in pages if page)
    if not text.strip():
        raise UnreadableFile("PDF has no text layer (scanned? OCR is not supported)")
    return text
