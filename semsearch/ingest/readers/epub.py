"""EPUB: the XHTML chapters in spine order through the HTML reader; no extra needed.

An EPUB is a zip of XHTML files plus an OPF manifest naming their order (the spine) and
the book's title. The zip is checked for bombs first (see docx.check_zip).
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from xml.etree import ElementTree as ET

from .base import Extracted, Reader, SectionBuilder, Unreadable
from .docx import check_zip
from .html import HtmlReader

_OPF = "{http://www.idpf.org/2007/opf}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"


class EpubReader(Reader):
    kind = "epub"
    suffixes = frozenset({".epub"})
    size_factor = 10

    def read(self, data: bytes, name: str) -> Extracted:
        check_zip(data)
        html = HtmlReader()
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                container = ET.fromstring(z.read("META-INF/container.xml"))
                rootfile = container.find(f".//{_CONTAINER}rootfile")
                if rootfile is None:
                    raise Unreadable("no rootfile in META-INF/container.xml")
                opf_path = rootfile.get("full-path", "")
                opf = ET.fromstring(z.read(opf_path))
                title = (opf.findtext(f".//{_DC}title") or "").strip()
                items = {
                    i.get("id"): i.get("href", "") for i in opf.iter(f"{_OPF}item") if i.get("id")
                }
                base = posixpath.dirname(opf_path)
                out = SectionBuilder()
                seen: set[str] = set()
                for ref in opf.iter(f"{_OPF}itemref"):
                    href = items.get(ref.get("idref"))
                    if not href or href in seen or out.full:
                        continue  # a spine naming one chapter 2,000 times reads it once
                    seen.add(href)
                    chapter = html.read(z.read(posixpath.join(base, href)), href)
                    out.begin()  # a chapter's text before its first heading has none
                    pos = 0
                    for sec in chapter.sections:
                        out.add(chapter.text[pos : sec.start])
                        out.begin(heading=sec.heading)
                        out.add(chapter.text[sec.start : sec.end])
                        pos = sec.end
                    out.add(chapter.text[pos:] + "\n")
                    out.begin()
        except (KeyError, ET.ParseError, zipfile.BadZipFile, ValueError) as exc:
            raise Unreadable(f"not a valid EPUB ({exc})") from None
        text, sections = out.finish()
        return Extracted(text, self.kind, title or name, sections, None, out.warnings())
