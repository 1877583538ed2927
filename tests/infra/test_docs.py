"""docs/kubernetes.md and infra/README.md name real files, and their commands use the image
names and Secret names the manifests and Dockerfiles use."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGES = [REPO_ROOT / "docs" / "kubernetes.md", REPO_ROOT / "infra" / "README.md"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_paths_named_in_the_page_exist(page: Path) -> None:
    text = page.read_text()
    paths = set(re.findall(r"(?<![\w/])((?:infra|tests|pipelines|docs)/[\w./*-]*[\w])", text))
    assert paths
    missing = sorted(path for path in paths if not list(REPO_ROOT.glob(path)))
    assert not missing, f"{page.name} names missing paths: {missing}"


def test_build_commands_match_the_dockerfiles() -> None:
    text = (REPO_ROOT / "docs" / "kubernetes.md").read_text()
    builds = re.findall(r"docker build -f (\S+)\s+-t ghcr\.io/segpipe/(\S+):\$VERSION", text)
    expected = {
        "infra/docker/component.Dockerfile": "segpipe-component",
        "infra/docker/component-gpu.Dockerfile": "segpipe-component-gpu",
        "infra/docker/serving.Dockerfile": "segpipe-serving",
    }
    assert dict(builds) == expected


def test_secret_names_match_the_manifests() -> None:
    text = (REPO_ROOT / "docs" / "kubernetes.md").read_text()
    created = set(re.findall(r"create secret generic (\S+)", text))
    base = "".join(path.read_text() for path in (REPO_ROOT / "infra" / "k8s" / "base").glob("*"))
    referenced = set(re.findall(r"secretKeyRef:\s+name: (\S+)", base))
    assert created == referenced == {"segpipe-db", "segpipe-s3"}
