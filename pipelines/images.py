"""Container images the Kubeflow components run in, defined once.

The tags follow infra/docker/*.Dockerfile: ``ghcr.io/segpipe/<image>:<package version>``, so a
pipeline compiled from version X of segpipe runs in the images built from version X.
"""

from __future__ import annotations

from importlib import metadata

IMAGE_REGISTRY = "ghcr.io/segpipe"
_FALLBACK_VERSION = "0.1.0"


def package_version() -> str:
    """segpipe's installed version (pyproject.toml), or the fallback in a bare checkout."""
    try:
        return metadata.version("segpipe")
    except metadata.PackageNotFoundError:
        return _FALLBACK_VERSION


def component_image(gpu: bool = False, version: str | None = None) -> str:
    """``ghcr.io/segpipe/segpipe-component[-gpu]:<version>``: segpipe preinstalled, so the
    lightweight components need no ``packages_to_install``."""
    name = "segpipe-component-gpu" if gpu else "segpipe-component"
    return f"{IMAGE_REGISTRY}/{name}:{version or package_version()}"


COMPONENT_IMAGE = component_image()
COMPONENT_GPU_IMAGE = component_image(gpu=True)
