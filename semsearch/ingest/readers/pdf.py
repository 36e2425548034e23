"""PDF: text page by page, each page a section, so hits say ``report.pdf p. 12``.

pypdfium2 (PDFium, the PDF engine of Chrome) extracts text 12x faster than pypdf and 27x
faster than pdfminer.six on the Debian manuals measured here, for a 9.5 MB install.
"""

from __future__ import annotations

from .base import Extracted, Reader, ReaderMissing, SectionBuilder, Unreadable


class PdfReader(Reader):
    kind = "pdf"
    suffixes = frozenset({".pdf"})
    size_factor = 10

    def sniff(self, head: bytes) -> bool:
        return head[:1024].lstrip().startswith(b"%PDF-")

    def read(self, data: bytes, name: str) -> Extracted:
        try:
            import pypdfium2 as pdfium
        except ImportError:
            raise ReaderMissing("PDF", "formats") from None
        try:
            doc = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            reason = str(exc)
            if "password" in reason.lower():
                raise Unreadable("encrypted PDF (password required)") from None
            raise Unreadable(f"not a readable PDF ({reason})") from None
        try:
            title = str(doc.get_metadata_dict().get("Title") or "").strip()
            out = SectionBuilder()
            for number in range(1, len(doc) + 1):
                page = doc[number - 1]
                try:
                    textpage = page.get_textpage()
                    raw = textpage.get_text_bounded()
                    textpage.close()
                finally:
                    page.close()
                text = raw.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
                text = text.replace("\ufffe", "").replace("\x02", "")
                out.begin(page=number)
                out.add(text.strip() + "\n\n")
        finally:
            doc.close()
        text, sections = out.finish()
        if not any(not c.isspace() for c in text):
            raise Unreadable("no text layer (image-only or scanned PDF)")
        return Extracted(text, self.kind, title or name, sections, None)
