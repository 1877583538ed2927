"""README.md and docs/: every relative link lands on a file (and heading) inside the
repository, and every page is reachable from docs/index.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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
