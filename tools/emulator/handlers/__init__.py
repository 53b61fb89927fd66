"""The handler tables, collected by convention: token -> :class:`ResourceHandler`, token -> data-source function.

Layout (like moto's own): ``<provider>/<module>.py`` holds every handler of the Pulumi tokens
``<provider>:<module>/...`` -- ``aws/ec2.py`` all of ``aws:ec2/...``, ``aws/index.py`` the
provider-level data sources ``aws:index/...``, ``random/index.py`` those of ``random:index/...``.
Such a module declares what it handles::

    RESOURCES = (ResourceHandler("aws:kms/key:Key", create_key, read_key, delete_key), ...)
    DATA_SOURCES = (DataSource("aws:index/getRegion:getRegion", region), ...)

:func:`discover` walks the package and merges those declarations; there is no list of modules to
keep. It refuses a token claimed twice, a token declared outside its own module, a handler module
that declares nothing, and declarations in a module that is not a handler module. Modules directly
in this package (:mod:`.translate`, :mod:`.moto_fixes`) are shared helpers; modules and packages
whose name starts with ``_`` are private and skipped.

Adding a resource type is adding ``create``/``read``/``delete`` functions and one ``ResourceHandler``
line to the module of its token (a new file for a new token module).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from dataclasses import dataclass
from types import ModuleType

from tools.emulator.engine import CallHandler, DataSource, ResourceHandler


class DiscoveryError(RuntimeError):
    """The handler package breaks the layout convention (see the module docstring)."""


@dataclass(frozen=True)
class Registry:
    """What :func:`discover` found."""

    resources: dict[str, ResourceHandler]
    data_sources: dict[str, DataSource]
    # Token module ("aws:ec2") -> the Python module that holds its handlers.
    modules: dict[str, str]

    @property
    def calls(self) -> dict[str, CallHandler]:
        """Data-source token -> the function that answers it."""
        return {token: source.call for token, source in self.data_sources.items()}


def token_module(token: str) -> str:
    """``aws:ec2/vpc:Vpc`` -> ``aws:ec2``; ``aws:index/getRegion:getRegion`` -> ``aws:index``."""
    parts = token.split(":")
    if len(parts) != 3 or not all(parts):
        raise DiscoveryError(f"malformed token {token!r}: expected <provider>:<module>[/<name>]:<Type>")
    return f"{parts[0]}:{parts[1].split('/', 1)[0]}"


def _declared(module: ModuleType) -> tuple[tuple[ResourceHandler, ...], tuple[DataSource, ...]]:
    resources = tuple(getattr(module, "RESOURCES", ()))
    data_sources = tuple(getattr(module, "DATA_SOURCES", ()))
    for item in resources:
        if not isinstance(item, ResourceHandler):
            raise DiscoveryError(f"{module.__name__}.RESOURCES holds {item!r}, not a ResourceHandler")
    for item in data_sources:
        if not isinstance(item, DataSource):
            raise DiscoveryError(f"{module.__name__}.DATA_SOURCES holds {item!r}, not a DataSource")
    return resources, data_sources


def _claim(claimed: dict[str, str], token: str, where: str) -> None:
    if token in claimed:
        raise DiscoveryError(f"{token} has two handlers: in {claimed[token]} and in {where}")
    claimed[token] = where


def discover(package: ModuleType) -> Registry:
    """Import every handler module of ``package`` and collect its declarations (see the module docstring)."""
    prefix = package.__name__ + "."
    resources: dict[str, ResourceHandler] = {}
    data_sources: dict[str, DataSource] = {}
    claimed: dict[str, str] = {}
    modules: dict[str, str] = {}
    for info in sorted(pkgutil.walk_packages(package.__path__, prefix), key=lambda i: i.name):
        parts = info.name.removeprefix(prefix).split(".")
        if info.ispkg or any(part.startswith("_") for part in parts):
            continue
        module = importlib.import_module(info.name)
        declared_resources, declared_sources = _declared(module)
        if len(parts) != 2:
            if declared_resources or declared_sources:
                raise DiscoveryError(f"{info.name} declares handlers; they belong in <provider>/<module>.py")
            continue
        expected = f"{parts[0]}:{parts[1]}"
        if not declared_resources and not declared_sources:
            raise DiscoveryError(f"{info.name} is a handler module but declares no RESOURCES or DATA_SOURCES")
        declared: tuple[ResourceHandler | DataSource, ...] = (*declared_resources, *declared_sources)
        for item in declared:
            _claim(claimed, item.token, info.name)
            if token_module(item.token) != expected:
                raise DiscoveryError(
                    f"{item.token} is declared in {info.name}; handlers of {token_module(item.token)} belong in "
                    f"{prefix}{token_module(item.token).replace(':', '.')}"
                )
        resources.update({h.token: h for h in declared_resources})
        data_sources.update({s.token: s for s in declared_sources})
        modules[expected] = info.name
    return Registry(resources=resources, data_sources=data_sources, modules=modules)


REGISTRY = discover(sys.modules[__name__])
HANDLERS: dict[str, ResourceHandler] = REGISTRY.resources
CALLS: dict[str, CallHandler] = REGISTRY.calls
