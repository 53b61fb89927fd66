"""Local deployment engine: the real Pulumi program, carried out against the moto AWS emulator with boto3."""

from tools.emulator.engine import (
    Aws,
    CreatedResource,
    DataSource,
    DeploymentError,
    EmulatorMocks,
    Request,
    ResourceHandler,
    UnknownTypeError,
    account_aws,
    account_session,
)

__all__ = [
    "Aws",
    "CreatedResource",
    "DataSource",
    "DeploymentError",
    "EmulatorMocks",
    "Request",
    "ResourceHandler",
    "UnknownTypeError",
    "account_aws",
    "account_session",
]
