"""README.md and docs/: every relative link lands on a file (and heading) inside the
repository, and every page is reachable from docs/index.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.core import TyperOption

REPO_ROOT = Path(__file__).resolve().parents[1]
PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# Written on the serving branch (issue #15); drop it from here once that branch is merged.
PENDING: set[Path] = set()


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation but '-' and '_' dropped, spaces '-'."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", page.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # not inside code blocks
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+://|mailto:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_land_inside_the_repository(page):
    for target in links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.is_relative_to(REPO_ROOT), f"{page.name}: {target} leaves the repo"
        if resolved in PENDING:
            continue
        assert resolved.exists(), f"{page.name}: {target} does not exist"
        if anchor:
            assert anchor in anchors(resolved), f"{page.name}: no heading for {target}"


def test_every_page_is_on_the_map():
    mapped = {t.partition("#")[0] for t in links(REPO_ROOT / "docs" / "index.md")}
    pages = {p.name for p in (REPO_ROOT / "docs").glob("*.md")} - {"index.md"}
    assert pages <= mapped


def command_options(name: str) -> dict[str, TyperOption]:
    """``segpipe NAME``'s options by flag, from the command object the CLI runs."""
    from pipelines.cli import app

    command = typer.main.get_command(app).commands[name]
    return {flag: param for param in command.params if isinstance(param, TyperOption)
            for flag in param.opts if flag != "--help"}


def table_rows(page: Path, first_column: str) -> list[list[str]]:
    """The cells of the rows of the table whose header starts with ``first_column``."""
    rows, inside = [], False
    for line in page.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_column:
            inside = True
        elif inside and line.startswith("|"):
            if not set(cells[0]) <= {"-", " "}:
                rows.append(cells)
        elif inside:
            break
    return rows


def shown(default: object) -> str:
    return str(default).lower() if isinstance(default, bool) else str(default)


def test_the_ui_options_table_is_the_commands_options_and_defaults():
    """docs/ui.md's table of `segpipe ui` options: every option of the command, none else,
    each with its default as the command has it; an option without one says "none",
    unless the command's own help says what it falls back to (then the doc does too)."""
    options = command_options("ui")
    documented = {}
    for flags_cell, default_cell, _ in table_rows(REPO_ROOT / "docs" / "ui.md", "option"):
        flags = re.findall(r"`(--[\w-]+)`", flags_cell)
        defaults = default_cell.split(", ") if len(flags) > 1 else [default_cell]
        assert len(defaults) == len(flags), flags_cell
        documented.update(zip(flags, defaults, strict=True))
    assert set(documented) == set(options)
    for flag, text in documented.items():
        default, help_text = options[flag].default, options[flag].help or ""
        if default is None and "default:" in help_text:
            assert text != "none", f"{flag}: the command falls back to something: say what"
        elif default is None:
            assert text == "none", f"{flag}: no default in `segpipe ui`, the doc says {text}"
        else:
            assert text.strip("`").replace(",", "") == shown(default), (flag, text, default)


def test_the_serving_limits_table_states_the_serve_commands_defaults():
    """docs/serving.md's limits set by a `segpipe serve` option: the limit's figure is the
    server's default for it (serving/options.py, which `segpipe serve` leaves them to)."""
    from serving.options import DEFAULTS

    options = command_options("serve")
    checked = set()
    for row in table_rows(REPO_ROOT / "docs" / "serving.md", "limit"):
        _, default_cell, where = row
        for flag in re.findall(r"`(--[\w-]+)`", where):
            assert flag in options, f"docs/serving.md names {flag}, which serve lacks"
            figure = re.match(r"[\d,]+", default_cell)
            assert figure, (flag, default_cell)
            dest = flag.removeprefix("--").replace("-", "_")
            assert figure.group().replace(",", "") == str(DEFAULTS[dest]), flag
            checked.add(flag)
    assert checked == {"--max-request-mb", "--timeout", "--max-json-values", "--body-timeout"}
