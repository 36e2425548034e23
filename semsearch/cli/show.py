"""``semsearch show LOCATION``: a document, or the chunks a hit's location names, from the
index (the text as indexed, so it matches the hit even after the file changed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from .app import IndexOpt, app
from .output import safe


@app.command()
def show(
    where: Annotated[
        str,
        typer.Argument(
            metavar="LOCATION",
            help="As a hit printed it: PATH:12, PATH:12-20, 'PATH p. 3', 'PATH › Section', "
            "or PATH for the whole document.",
        ),
    ],
    index: IndexOpt = None,
    context: Annotated[
        int, typer.Option("-C", "--context", min=0, help="Also N chunks on each side.")
    ] = 0,
) -> None:
    """Print a document, or the chunks at a location, as indexed."""
    from .. import api
    from ..api.hits import located, parse_location
    from ..config import bundled_seeds

    loc = parse_location(where)
    ix = index if index is not None else api.default_index_dir()
    path = loc.path
    if index is None and path.startswith("samples/") and not api.index_exists(ix):
        ix, path = api.sample_index_dir(), str(bundled_seeds() / path.removeprefix("samples/"))
    searcher = api.SemanticIndex.load(ix)
    doc_id = str(Path(path).expanduser().absolute()) if not Path(path).is_absolute() else path
    passages = searcher.passages(doc_id)
    if loc.lines is None and loc.page is None and not loc.section:
        typer.echo(safe(searcher.document(doc_id).text, newlines=True))
        return
    chosen = located(passages, loc)
    if not chosen:
        raise UsageError(f"nothing at {where!r} in the index (the document has no such place)")
    first, last = max(chosen[0] - context, 0), min(chosen[-1] + context, len(passages) - 1)
    typer.echo(
        "\n\n".join(safe(p.text, newlines=True) for p in passages[first : last + 1]).rstrip()
    )
