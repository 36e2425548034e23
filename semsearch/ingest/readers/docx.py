"""Office Open XML documents (DOCX): paragraphs and tables in order, headings as sections.

python-docx (with lxml) is an extra: 15.5 MB installed. Before it sees a file, the zip's
declared sizes are checked, so a zip bomb is refused instead of decompressed.
"""

from __future__ import annotations

import io
import zipfile

from .base import Extracted, Reader, ReaderMissing, SectionBuilder, Unreadable, heading_path

#: Most a document's parts may expand to, and the highest compression ratio accepted for
#: a large part (real DOCX XML compresses ~10x; bombs 1000x and more).
MAX_UNZIPPED = 256 * 1024 * 1024
MAX_RATIO = 200


def check_zip(data: bytes, limit: int = MAX_UNZIPPED) -> list[str]:
    """Refuse corrupt archives and zip bombs before anything is decompressed.

    zipfile stops each member at its declared size, so bounding the declared sizes
    bounds the decompression. Returns the member names."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise Unreadable(f"not a valid zip container ({exc})") from None
    total = sum(i.file_size for i in infos)
    if total > limit:
        raise Unreadable(f"expands to {total} bytes (limit {limit}): refusing a zip bomb")
    for i in infos:
        if i.file_size > 1 << 20 and i.file_size > MAX_RATIO * max(i.compress_size, 1):
            ratio = i.file_size // max(i.compress_size, 1)
            raise Unreadable(f"{i.filename} expands {ratio}x: refusing a zip bomb")
    return [i.filename for i in infos]


class DocxReader(Reader):
    kind = "docx"
    suffixes = frozenset({".docx"})
    size_factor = 10  # embedded images make DOCX files large; only the XML is read

    def read(self, data: bytes, name: str) -> Extracted:
        try:
            import docx
        except ImportError:
            raise ReaderMissing("DOCX", "formats") from None
        names = check_zip(data)
        try:
            document = docx.Document(io.BytesIO(data))
            # python-docx invents "Word Document" when a file has no core properties part
            has_core = "docProps/core.xml" in names
            title = (document.core_properties.title or "").strip() if has_core else ""
            out = SectionBuilder()
            stack: list[tuple[int, str]] = []
            for block in document.iter_inner_content():
                if isinstance(block, docx.table.Table):
                    for row in block.rows:
                        cells = [c.text.strip() for c in row.cells]
                        out.add(" | ".join(c for c in cells if c) + "\n")
                    out.add("\n")
                    continue
                text = block.text.strip()
                if not text:
                    continue
                style = block.style.name if block.style is not None else ""
                if style == "Title":
                    title = title or text
                    out.add(text + "\n\n")
                    continue
                level = _heading_level(style)
                if level:
                    out.begin(heading=heading_path(stack, level, text))
                    title = title or (text if level == 1 else "")
                out.add(text + "\n\n")
        except (KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise Unreadable(f"not a valid DOCX ({exc})") from None
        body, sections = out.finish()
        return Extracted(body, self.kind, title or name, sections, None, out.warnings())


def _heading_level(style: str) -> int:
    if style.startswith("Heading "):
        tail = style.removeprefix("Heading ")
        return int(tail) if tail.isdigit() else 0
    return 0
