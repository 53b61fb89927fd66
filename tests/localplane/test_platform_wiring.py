"""How the platform turns what was deployed into processes: task environments, images, secrets, the control endpoint.

The end-to-end behaviour (payments through the front door, failures, isolation) is in
tests/integration/test_running_platform.py; these pin the rules the task runner applies, each with the case
that must *not* be rewritten, so that a wiring mistake in the program still breaks the services locally.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from lp_support import REGION
from moto.server import ThreadedMotoServer

from services.images import read_dockerfile
from tools.emulator.engine import account_aws
from tools.localplane.control import ControlServer
from tools.localplane.deployed import Container, NotRunnableError, TaskDefinition, secret_value
from tools.localplane.images import LocalImage, resolve_image, split_reference
from tools.localplane.supervisor import free_port
from tools.localplane.tasks import LocalAddresses, local_argv, task_environment
from tools.release.images import ImageRef, push_to_emulator

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "services" / "Dockerfile"
DB_ENDPOINT = "scalepay-aurora-dev.cluster-abc.us-east-1.rds.amazonaws.com"
CACHE_ENDPOINT = "master.scalepay-redis-dev.abc.use1.cache.amazonaws.com"


def _definition(environment: dict[str, str], secrets: dict[str, str] | None = None) -> TaskDefinition:
    container = Container(
        name="payment",
        image="111111111111.dkr.ecr.us-east-1.amazonaws.com/scalepay-payment-dev:1.0.0",
        environment=environment,
        secrets=secrets or {},
        port=8080,
        health_check=("python", "-m", "services.common.healthcheck"),
        health_interval_s=30,
        health_timeout_s=5,
        health_retries=3,
        health_start_period_s=60,
        readonly_root=True,
        mount_paths=("/tmp",),
    )
    return TaskDefinition("arn:task/payment:1", "scalepay-payment-dev", "arn:aws:iam::111111111111:role/t", "", container)


def _image() -> LocalImage:
    spec = read_dockerfile(DOCKERFILE, "payment")
    return LocalImage(
        "111111111111.dkr.ecr.us-east-1.amazonaws.com/scalepay-payment-dev:1.0.0",
        DOCKERFILE,
        "payment",
        spec,
        {"/etc/ssl/certs/rds-global-bundle.pem": "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"},
    )


ADDRESSES = LocalAddresses(
    data_stores={(DB_ENDPOINT, 5432): 40001, (CACHE_ENDPOINT, 6379): 40002},
    aliases={"notification:8080": "http://127.0.0.1:40003"},
    trust_store=Path("/plane/ca/ca.pem"),
)


def _environment(declared: dict[str, str], secrets: dict[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    env, rewrites = task_environment(
        _definition(declared),
        _image(),
        secrets=secrets or {},
        region="us-east-1",
        port=51234,
        scratch=Path("/plane/tasks/abc"),
        addresses=ADDRESSES,
        credentials={"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:1/v2/credentials/abc"},
    )
    return env, [r.variable for r in rewrites]


def test_data_store_endpoints_and_their_ports_point_at_the_local_stand_ins() -> None:
    env, changed = _environment(
        {"DB_HOST": DB_ENDPOINT, "DB_PORT": "5432", "REDIS_HOST": CACHE_ENDPOINT, "REDIS_PORT": "6379", "DB_NAME": "payments"}
    )
    assert (env["DB_HOST"], env["DB_PORT"], env["REDIS_HOST"], env["REDIS_PORT"]) == ("127.0.0.1", "40001", "127.0.0.1", "40002")
    assert env["DB_NAME"] == "payments"
    assert {"DB_HOST", "DB_PORT", "REDIS_HOST", "REDIS_PORT"} <= set(changed) and "DB_NAME" not in changed


def test_a_wrong_port_or_an_unknown_host_is_left_as_declared_so_it_fails() -> None:
    env, changed = _environment(
        {"DB_HOST": DB_ENDPOINT, "DB_PORT": "5433", "REDIS_HOST": "cache.example.com", "REDIS_PORT": "6379"}
    )
    assert env["DB_HOST"] == "127.0.0.1" and env["DB_PORT"] == "5433", "a port the cluster does not serve stays wrong"
    assert env["REDIS_HOST"] == "cache.example.com" and env["REDIS_PORT"] == "6379"
    assert "DB_PORT" not in changed and "REDIS_HOST" not in changed


def test_service_connect_aliases_container_port_and_image_paths_are_mapped() -> None:
    env, _ = _environment(
        {
            "NOTIFICATION_URL": "http://notification:8080",
            "PAYMENT_URL": "http://payment:9090",  # not an alias of the namespace: unchanged
            "PORT": "8080",
            "DB_SSL_ROOT_CERT": "/etc/ssl/certs/rds-global-bundle.pem",
        }
    )
    assert env["NOTIFICATION_URL"] == "http://127.0.0.1:40003"
    assert env["PAYMENT_URL"] == "http://payment:9090"
    assert env["PORT"] == "51234"
    assert env["DB_SSL_ROOT_CERT"] == "/plane/ca/ca.pem"
    assert env["PYTHONPATH"] == str(ROOT), "the image's /app is this checkout"
    assert env["HOME"] == env["TMPDIR"] == "/plane/tasks/abc", "the image's HOME=/tmp is the task's scratch volume"


def test_runtime_variables_credentials_and_nothing_of_the_callers_environment() -> None:
    env, _ = _environment({"SERVICE_NAME": "payment"}, secrets={"DB_MASTER_PASSWORD": "s3cret"})
    assert env["AWS_REGION"] == "us-east-1" and env["BIND_ADDRESS"] == "127.0.0.1"
    assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"].endswith("/v2/credentials/abc")
    assert env["DB_MASTER_PASSWORD"] == "s3cret" and env["SSL_CERT_FILE"] == "/plane/ca/ca.pem"
    assert env["AWS_CONFIG_FILE"] == env["AWS_SHARED_CREDENTIALS_FILE"] == "/dev/null"
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "VIRTUAL_ENV"} & set(env)


def test_the_images_python_is_this_interpreter() -> None:
    assert local_argv(_image()) == [sys.executable, "-m", "services.payment"]


def test_image_references_outside_a_private_ecr_are_refused() -> None:
    assert split_reference("111111111111.dkr.ecr.us-east-1.amazonaws.com/scalepay-api-dev:1.0.0") == (
        "111111111111.dkr.ecr.us-east-1.amazonaws.com",
        "scalepay-api-dev",
        "1.0.0",
    )
    with pytest.raises(NotRunnableError, match="not in a private ECR repository"):
        split_reference("public.ecr.aws/docker/library/python:3.11-slim")


@pytest.fixture(scope="module")
def moto_endpoint() -> Any:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_an_image_resolves_to_the_dockerfile_target_it_was_built_from(moto_endpoint: str) -> None:
    aws = account_aws(moto_endpoint, "111111111111", REGION)
    ecr = aws.client("ecr")
    ecr.create_repository(repositoryName="scalepay-payment-dev")
    reference = "111111111111.dkr.ecr.us-east-1.amazonaws.com/scalepay-payment-dev:1.0.0"
    with pytest.raises(NotRunnableError, match="CannotPullContainerError"):
        resolve_image(aws, reference)
    push_to_emulator(ecr, ImageRef("payment", "scalepay-payment-dev", reference.split("/")[0], "1.0.0"))
    image = resolve_image(aws, reference)
    assert (image.dockerfile, image.target) == (DOCKERFILE, "payment")
    assert image.argv == ("python", "-m", "services.payment") and image.run_as == (10001, 10001)
    assert image.downloads["/etc/ssl/certs/rds-global-bundle.pem"].startswith("https://truststore.pki.rds.amazonaws.com/")
    # An image whose configuration no Dockerfile target of this checkout produces (pushed from another revision).
    ecr.create_repository(repositoryName="scalepay-notification-dev")
    ecr.put_image(
        repositoryName="scalepay-notification-dev",
        imageManifest=json.dumps({"schemaVersion": 2, "config": {"digest": "sha256:" + "0" * 64}, "layers": []}),
        imageManifestMediaType="application/vnd.oci.image.manifest.v1+json",
        imageTag="1.0.0",
    )
    with pytest.raises(NotRunnableError, match="built from no Dockerfile target"):
        resolve_image(aws, "111111111111.dkr.ecr.us-east-1.amazonaws.com/scalepay-notification-dev:1.0.0")


def test_secrets_resolve_whole_or_by_json_key_as_the_ecs_agent_does(moto_endpoint: str) -> None:
    aws = account_aws(moto_endpoint, "111111111111", REGION)
    secret = '{"username": "admin", "password": "pw"}'
    arn = aws.client("secretsmanager").create_secret(Name="rds!cluster-x", SecretString=secret)["ARN"]
    assert secret_value(aws, arn) == secret
    assert secret_value(aws, f"{arn}:username::") == "admin"
    assert secret_value(aws, f"{arn}:password:AWSCURRENT:") == "pw"
    with pytest.raises(NotRunnableError, match="no key 'token'"):
        secret_value(aws, f"{arn}:token::")
    with pytest.raises(NotRunnableError, match="only Secrets Manager"):
        secret_value(aws, "arn:aws:ssm:us-east-1:111111111111:parameter/x")


def test_the_control_endpoint_needs_its_token_and_names_unknown_actions() -> None:
    calls: list[tuple[str, str, dict[str, Any]]] = []
    control = ControlServer(
        lambda: {"stacks": {}}, {"databases/stop": lambda stack, name, body: calls.append((stack, name, body)) or {"ok": True}}
    )
    control.start()
    url = control.url
    try:
        assert httpx.get(f"{control.url}/status").status_code == 401
        auth = {"Authorization": f"Bearer {control.token}"}
        assert httpx.get(f"{control.url}/status", headers=auth).json() == {"stacks": {}}
        assert httpx.post(f"{control.url}/stacks/dev/databases/c1/stop", headers=auth, json={"x": 1}).json() == {"ok": True}
        assert calls == [("dev", "c1", {"x": 1})]
        assert httpx.post(f"{control.url}/stacks/dev/databases/c1/drop", headers=auth).status_code == 404
    finally:
        control.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/status", timeout=1)  # stopped: nothing listens any more
