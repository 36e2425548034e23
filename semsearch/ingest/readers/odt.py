"""OpenDocument text (ODT): headings and paragraphs from content.xml, with the standard
library's XML parser (expat, which refuses entity-expansion bombs); no extra needed."""

from __future__ import annotations

import io
import zipfile
from xml.etree import ElementTree as ET

from .base import Extracted, Reader, SectionBuilder, Unreadable, heading_path
from .docx import check_zip

_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_DC = "{http://purl.org/dc/elements/1.1/}"


class OdtReader(Reader):
    kind = "odt"
    suffixes = frozenset({".odt"})

    def read(self, data: bytes, name: str) -> Extracted:
        check_zip(data)
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                content = ET.fromstring(z.read("content.xml"))
                title = ""
                if "meta.xml" in z.namelist():
                    title = ET.fromstring(z.read("meta.xml")).findtext(f".//{_DC}title") or ""
        except (KeyError, ET.ParseError, zipfile.BadZipFile, ValueError) as exc:
            raise Unreadable(f"not a valid ODT ({exc})") from None
        out = SectionBuilder()
        stack: list[tuple[int, str]] = []
        for el in content.iter():
            if el.tag not in (f"{_TEXT}h", f"{_TEXT}p"):
                continue
            text = "".join(el.itertext()).strip()
            if not text:
                continue
            if el.tag == f"{_TEXT}h":
                level = int(el.get(f"{_TEXT}outline-level", "1") or 1)
                out.begin(heading=heading_path(stack, level, text))
            out.add(text + "\n\n")
        body, sections = out.finish()
        return Extracted(body, self.kind, title.strip() or name, sections, None, out.warnings())
