"""ContainerCredentialsServer: the ECS container credentials endpoint stand-in, read by botocore's default chain."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from lp_support import ACCOUNT_ID, AwsFixture

from tools.localplane.credentials import ContainerCredentialsServer
from tools.localplane.supervisor import Supervisor, port_is_free

_RESOLVE = """
import json, botocore.session
session = botocore.session.get_session()
creds = session.get_credentials()
frozen = creds.get_frozen_credentials()
print(json.dumps({"method": creds.method, "key": frozen.access_key, "secret": frozen.secret_key, "token": frozen.token}))
"""


@pytest.fixture
def server(aws: AwsFixture, supervisor: Supervisor) -> Iterator[ContainerCredentialsServer]:
    srv = ContainerCredentialsServer(aws.sts, aws.registry, supervisor=supervisor)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _get(url: str, token: str | None) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, headers={"Authorization": token} if token is not None else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_botocore_default_chain_resolves_task_role(server: ContainerCredentialsServer, aws: AwsFixture) -> None:
    server.register_task("task-payments-1", aws.allowed_role_arn)
    env = server.env_for_task("task-payments-1")
    assert set(env) == {"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN"}
    assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == f"http://127.0.0.1:{server.port}/v2/credentials/task-payments-1"
    result = subprocess.run(
        [sys.executable, "-c", _RESOLVE], env={**env, "AWS_REGION": "us-east-1"}, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    assert resolved["method"] == "container-role"
    registered = aws.registry.lookup(resolved["key"])
    assert registered is not None
    assert registered.role_arn == aws.allowed_role_arn
    assert registered.account_id == ACCOUNT_ID
    assert (registered.secret_access_key, registered.session_token) == (resolved["secret"], resolved["token"])


def test_endpoint_document_and_authorization(server: ContainerCredentialsServer, aws: AwsFixture) -> None:
    token = server.register_task("task-a", aws.allowed_role_arn)
    other = server.register_task("task-b", aws.denied_role_arn)
    url = server.env_for_task("task-a")["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
    status, body = _get(url, token)
    assert status == 200
    assert set(body) == {"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "RoleArn"}
    assert body["RoleArn"] == aws.allowed_role_arn
    expiration = dt.datetime.strptime(body["Expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert dt.timedelta(minutes=50) < expiration - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=1)
    assert _get(url, token)[1]["AccessKeyId"] == body["AccessKeyId"]  # cached, not re-assumed per request
    assert _get(url, None)[0] == 401
    assert _get(url, "wrong")[0] == 401
    assert _get(url, other)[0] == 401  # another task's token does not open this task's credentials
    assert _get(url.replace("task-a", "task-zzz"), token)[0] == 404
    assert _get(f"http://127.0.0.1:{server.port}/v2/metadata", token)[0] == 404

    server.unregister_task("task-a")
    assert _get(url, token)[0] == 404
    with pytest.raises(KeyError):
        server.env_for_task("task-a")


def test_credentials_refreshed_before_expiry(aws: AwsFixture) -> None:
    now = [dt.datetime.now(dt.UTC)]
    with ContainerCredentialsServer(aws.sts, aws.registry, clock=lambda: now[0]) as srv:
        srv.register_task("task-r", aws.allowed_role_arn)
        first = srv.credentials_for("task-r")
        now[0] = first.expiration - dt.timedelta(minutes=21)
        assert srv.credentials_for("task-r") == first
        now[0] = first.expiration - dt.timedelta(minutes=19)
        second = srv.credentials_for("task-r")
        assert second.access_key_id != first.access_key_id
        # Both stay known to the token verifiers: a token signed with the old key a moment ago is still checked.
        assert aws.registry.lookup(first.access_key_id) is not None
        assert aws.registry.lookup(second.access_key_id) is not None
        port = srv.port
    assert port_is_free(port)


def test_stopped_by_supervisor(aws: AwsFixture) -> None:
    supervisor = Supervisor(name="creds")
    srv = ContainerCredentialsServer(aws.sts, aws.registry, supervisor=supervisor)
    srv.start()
    port = srv.port
    assert not port_is_free(port)
    supervisor.close()
    assert port_is_free(port)
