"""Shared tail of ``python -m services.<name>``: logging set up, then uvicorn until SIGTERM."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.config import ServiceConfig
from services.common.logs import configure_logging
from services.common.web import serve

__all__ = ["run_service"]


def run_service(service: ServiceConfig, app: FastAPI) -> None:
    """Log JSON lines for ``service`` and serve ``app`` on its BIND_ADDRESS:PORT."""
    configure_logging(service.service, service.environment)
    serve(app, service)
