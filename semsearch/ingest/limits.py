"""Bounds on what one file may cost to read, declared once.

A file past a bound is cut or skipped with one warning naming it, and the build goes on:
hostile input (YAML alias bombs, shared PDF page trees, decompression bombs, huge lists
or tables) must not take unbounded memory or time.
"""

#: Most characters of text kept from one file (PDF, EPUB, DOCX, ...); the rest is dropped.
MAX_TEXT_CHARS = 32 * 1024 * 1024
#: Most pages read from one PDF.
MAX_PDF_PAGES = 20_000
#: Most bytes the Flate streams of one PDF may inflate to at a compression ratio above
#: ``MAX_INFLATE_RATIO`` (real PDFs compress ~3-10x; a stream of spaces 1000x).
MAX_PDF_INFLATED = 64 * 1024 * 1024
MAX_INFLATE_RATIO = 200
#: Most rows taken from one JSONL/CSV/TSV file.
MAX_ROWS = 200_000
#: Most bad JSONL lines reported one by one per file (the rest are counted).
MAX_ROW_WARNINGS = 3
#: Most YAML nodes front matter may expand to (aliases counted each time they are used),
#: and most characters of scalars it may expand to.
MAX_YAML_NODES = 10_000
MAX_YAML_CHARS = 256 * 1024
#: Markdown longer than this is split at headings by a line scan instead of markdown-it,
#: whose token stream takes ~500 bytes and ~15 us per list item (3 GB for 2M items): at
#: this size, at most ~130 MB.
MAX_MARKDOWN_PARSE = 256 * 1024
