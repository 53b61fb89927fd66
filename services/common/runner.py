"""Shared ``python -m services.<name>``: the configuration checked first, then JSON logging and uvicorn until SIGTERM."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol, TypeVar

from services.common.config import ServiceConfig, exit_on_config_error
from services.common.logs import configure_logging

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["run_service"]


class ServiceSettings(Protocol):
    """A service's configuration: its own settings and, under ``service``, what every HTTP service reads."""

    @property
    def service(self) -> ServiceConfig:
        """BIND_ADDRESS, PORT, ENVIRONMENT, ... (the part :func:`run_service` needs)."""
        ...


Config = TypeVar("Config", bound=ServiceSettings)


def run_service(load: Callable[[Mapping[str, str]], Config], app_factory: str) -> None:
    """Exit 2 with one line on a bad variable; otherwise serve the app ``app_factory`` makes until SIGTERM.

    ``load`` reads the configuration from the environment. ``app_factory`` (``"<module>:<function>"``, called with the
    configuration) is imported only once the configuration is known good: a misconfigured task fails in milliseconds,
    before FastAPI, uvicorn and the service's own dependencies load.
    """
    with exit_on_config_error():
        config = load(os.environ)
    # Only now, with a good configuration: web (FastAPI, uvicorn, the clients) and the service's app module.
    from services.common.web import serve

    module, _, name = app_factory.partition(":")
    create_app: Callable[[Config], FastAPI] = getattr(importlib.import_module(module), name)
    configure_logging(config.service.service, config.service.environment)
    serve(create_app(config), config.service)
