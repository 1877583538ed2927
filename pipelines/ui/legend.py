"""The colour legend: an HTML table with a swatch per class, shared by the pages (no heavy
imports, so the Models page stays quick)."""

from __future__ import annotations

import html


def legend_html(rows: list[tuple[str, str, list[str]]], headers: list[str]) -> str:
    """An HTML table with a colour swatch per row: ``rows`` are (colour, name, cells)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["", "class", *headers])
    body = []
    for color, name, cells in rows:
        swatch = (f'<span style="display:inline-block;width:1em;height:1em;'
                  f'background:{html.escape(color)};border:1px solid #888"></span>')
        tds = "".join(f"<td>{html.escape(c)}</td>" for c in cells)
        body.append(f"<tr><td>{swatch}</td><td>{html.escape(name)}</td>{tds}</tr>")
    return (f'<table class="segpipe-legend"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")
