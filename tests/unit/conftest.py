"""Shared fixtures of the unit tests: each environment is evaluated once per test session.

The program runs under Pulumi's mock runtime (:func:`tools.evaluate.evaluate`) with the config that
lets each environment evaluate offline (:func:`tools.evaluate.default_config`). Every module that needs
an environment's resource graph or its resolved configuration takes it from here instead of running
the program again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache

import pytest

from lib.config import EnvironmentConfig, build
from tools.evaluate import Evaluation, default_config, evaluate
from tools.insight.graph import Graph

ENVIRONMENTS = ("dev", "staging", "prod")


@cache
def evaluated_stack(env: str) -> Evaluation:
    """The program's registrations and outputs for ``env`` (one evaluation per session; do not mutate)."""
    return evaluate(env, default_config(env))


@cache
def resolved_config(env: str) -> EnvironmentConfig:
    """The validated configuration the program resolves for ``env`` with the default offline config."""
    raw = default_config(env)
    settings = {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith("scalepayments:")}
    return build(env, settings, raw.get("aws:region"))


@pytest.fixture(scope="session", autouse=True)
def local_deployment_records(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Deployments made by the tests record their state and certificates in a temporary directory, not in .deploy/."""
    from tools import deploy
    from tools.emulator import state

    root = tmp_path_factory.mktemp("deploy")
    saved = state.STATE_ROOT, deploy.SECRETS_ROOT
    state.STATE_ROOT, deploy.SECRETS_ROOT = root / "state", root / "certificates"
    try:
        yield
    finally:
        state.STATE_ROOT, deploy.SECRETS_ROOT = saved


@pytest.fixture(scope="session")
def evaluated() -> Callable[[str], Evaluation]:
    """``evaluated(env)``: the shared evaluation of an environment."""
    return evaluated_stack


@pytest.fixture(scope="session")
def resolved() -> Callable[[str], EnvironmentConfig]:
    """``resolved(env)``: the shared resolved configuration of an environment."""
    return resolved_config


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def stack(request: pytest.FixtureRequest, evaluated: Callable[[str], Evaluation]) -> Evaluation:
    """Each environment's shared evaluation in turn (a module that needs a richer view defines its own ``stack``)."""
    return evaluated(request.param)


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def run(
    request: pytest.FixtureRequest, evaluated: Callable[[str], Evaluation], resolved: Callable[[str], EnvironmentConfig]
) -> tuple[EnvironmentConfig, Evaluation]:
    """Each environment in turn as its resolved configuration and its shared evaluation."""
    env = request.param
    return resolved(env), evaluated(env)


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    """moto's server in this process on a free 127.0.0.1 port, one per test module (stopped even when a test fails)."""
    from tools.emulator import server

    running = server.start(in_process=True)
    try:
        yield running.endpoint
    finally:
        running.stop()


@cache
def stack_graph(env: str) -> Graph:
    """The insight tools' reading of the shared evaluation of ``env`` (one per session)."""
    return Graph(evaluated_stack(env), default_config(env))


@pytest.fixture(scope="session")
def graph() -> Callable[[str], Graph]:
    """``graph(env)``: the resource graph of an environment as ``make preview/diff/cost/diagram`` read it."""
    return stack_graph
