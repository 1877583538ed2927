"""The colour legend: an HTML table with a swatch per class, shared by the pages (no heavy
imports, so the Models page stays quick)."""

from __future__ import annotations

import html


def legend_html(rows: list[tuple[str, str, list[str]]], headers: list[str]) -> str:
    """An HTML table with a colour swatch per row: ``rows`` are (colour, name, cells)."""
    # Compact cells: the Predict page's legend column is a third of the main column, and
    # Streamlit's own table padding pushed a hectares column out of it at 1400 px.
    cell = 'style="padding:0.2em 0.45em"'
    number = 'style="padding:0.2em 0.45em;text-align:right"'
    head = "".join(f"<th {cell}>{html.escape(h)}</th>" for h in ["", "class", *headers])
    body = []
    for color, name, cells in rows:
        swatch = (f'<span style="display:inline-block;width:1em;height:1em;'
                  f'background:{html.escape(color)};border:1px solid #888"></span>')
        tds = "".join(f"<td {number}>{html.escape(c)}</td>" for c in cells)
        body.append(f"<tr><td {cell}>{swatch}</td><td {cell}>{html.escape(name)}</td>{tds}"
                    f"</tr>")
    return (f'<table class="segpipe-legend" style="font-size:0.9em;max-width:100%">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
