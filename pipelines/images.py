"""Container images the Kubeflow components run in, defined once.

The published images are ``ghcr.io/segpipe/<image>:<package version>`` (infra/docker/
*.Dockerfile), so a pipeline compiled from version X of segpipe runs in the images built from
version X. A cluster that pulls from its own registry, or runs a build of its own, names them
with ``$SEGPIPE_IMAGE_REGISTRY`` / ``$SEGPIPE_IMAGE_TAG`` or ``segpipe compile|submit
--image-registry/--image-tag``.

kfp fixes a component's image when the component is decorated (at import), before any option
is read. The components are therefore decorated with the published images, and ``retarget``
rewrites the compiled spec's executors to the images asked for when ``segpipe compile`` or
``segpipe submit`` (pipelines.runner) writes the spec. Local runs ignore images.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata

IMAGE_REGISTRY = "ghcr.io/segpipe"
REGISTRY_ENV = "SEGPIPE_IMAGE_REGISTRY"
TAG_ENV = "SEGPIPE_IMAGE_TAG"
_FALLBACK_VERSION = "0.1.0"
CPU_IMAGE_NAME = "segpipe-component"
GPU_IMAGE_NAME = "segpipe-component-gpu"

# Docker's reference grammar: host[:port] and lower-case path components; tags up to 128.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REGISTRY = re.compile(rf"(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*|"
                       r"[A-Za-z0-9.-]+(?::[0-9]+)?")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


class ImageError(ValueError):
    """A registry or tag that cannot name an image; says which option or variable gave it."""


def package_version() -> str:
    """segpipe's installed version (pyproject.toml), or the fallback in a bare checkout."""
    try:
        return metadata.version("segpipe")
    except metadata.PackageNotFoundError:
        return _FALLBACK_VERSION


def component_image(gpu: bool = False, version: str | None = None) -> str:
    """The published ``ghcr.io/segpipe/segpipe-component[-gpu]:<version>``: segpipe
    preinstalled, so the lightweight components need no ``packages_to_install``."""
    return ComponentImages(IMAGE_REGISTRY, version or package_version()).image(gpu)


@dataclass(frozen=True)
class ComponentImages:
    """The CPU and GPU component images of one registry and tag."""

    registry: str
    tag: str

    def image(self, gpu: bool = False) -> str:
        return f"{self.registry}/{GPU_IMAGE_NAME if gpu else CPU_IMAGE_NAME}:{self.tag}"

    @property
    def cpu(self) -> str:
        return self.image(gpu=False)

    @property
    def gpu(self) -> str:
        return self.image(gpu=True)

    @classmethod
    def resolve(cls, registry: str | None = None, tag: str | None = None,
                environ: Mapping[str, str] | None = None) -> ComponentImages:
        """Given values first, then ``$SEGPIPE_IMAGE_REGISTRY`` / ``$SEGPIPE_IMAGE_TAG``, then
        the published registry and segpipe's version; each checked, naming its origin."""
        environ = os.environ if environ is None else environ
        registry_value = _pick(registry, "--image-registry", environ, REGISTRY_ENV)
        tag_value = _pick(tag, "--image-tag", environ, TAG_ENV)
        chosen_registry = IMAGE_REGISTRY
        if registry_value:
            origin, value = registry_value
            value = value.strip().rstrip("/")
            if not _REGISTRY.fullmatch(value):
                raise ImageError(f"{origin}: {value!r} is not a registry path (e.g. "
                                 "registry.example.org:5000/team, lower-case)")
            chosen_registry = value
        chosen_tag = package_version()
        if tag_value:
            origin, value = tag_value
            value = value.strip()
            if not _TAG.fullmatch(value):
                raise ImageError(f"{origin}: {value!r} is not an image tag (letters, digits, "
                                 "'_', '.', '-'; at most 128; not starting with '.' or '-')")
            chosen_tag = value
        return cls(chosen_registry, chosen_tag)


def _pick(given: str | None, option: str, environ: Mapping[str, str],
          variable: str) -> tuple[str, str] | None:
    if given is not None and given.strip():
        return option, given
    if environ.get(variable, "").strip():
        return f"${variable}", environ[variable]
    return None


def retarget(deployment: dict, decorated: ComponentImages, wanted: ComponentImages) -> None:
    """Point every executor of a compiled pipeline's ``deploymentSpec`` at ``wanted``'s
    images, in place. An executor image that is not one of ``decorated``'s (the images the
    components were decorated with) is an error, not silently kept."""
    mapping = {decorated.cpu: wanted.cpu, decorated.gpu: wanted.gpu}
    for name, executor in deployment["executors"].items():
        container = executor["container"]
        if container["image"] not in mapping:
            raise ImageError(f"executor {name} runs {container['image']}, not a segpipe "
                             "component image")
        container["image"] = mapping[container["image"]]
