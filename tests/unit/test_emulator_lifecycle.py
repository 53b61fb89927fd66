"""The local deployment behaves like `pulumi up` and `pulumi destroy` (issue #9), checked through the AWS APIs.

Each test deploys the real program into a moto server on a free 127.0.0.1 port through the same code
as `make deploy` / `make destroy`, with its records and outputs in a temporary directory.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tools import deploy as cli
from tools.emulator import DeploymentError, account_aws, server
from tools.emulator import state as records
from tools.emulator.endpoint import EndpointError, check
from tools.evaluate import Registration


@pytest.fixture(autouse=True)
def private_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Records, certificates and outputs of these tests live in tmp_path, never in the working tree."""
    monkeypatch.setattr(records, "STATE_ROOT", tmp_path / "state")
    monkeypatch.setattr(cli, "SECRETS_ROOT", tmp_path / "certificates")
    return tmp_path


@pytest.fixture
def emulator() -> Iterator[str]:
    """A fresh in-process moto (moto keeps its state per process: reset it so every test starts empty)."""
    instance = server.start(in_process=True)
    try:
        urllib.request.urlopen(urllib.request.Request(f"{instance.endpoint}/moto-api/reset", method="POST"), timeout=10)
        yield instance.endpoint
    finally:
        urllib.request.urlopen(urllib.request.Request(f"{instance.endpoint}/moto-api/reset", method="POST"), timeout=10)
        instance.stop()


def stack_resources(endpoint: str, account: str) -> dict[str, list[str]]:
    """What the stack's kinds of resources exist in an account, read through the AWS APIs."""
    aws = account_aws(endpoint, account)
    kms = aws.client("kms")
    return {
        "vpcs": [v["VpcId"] for v in aws.client("ec2").describe_vpcs()["Vpcs"] if not v["IsDefault"]],
        "roles": [r["RoleName"] for r in aws.client("iam").list_roles()["Roles"] if r["RoleName"].startswith("scalepay-")],
        "log groups": [g["logGroupName"] for g in aws.client("logs").describe_log_groups()["logGroups"]],
        "buckets": [b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]],
        "live keys": [
            k["KeyId"]
            for k in kms.list_keys()["Keys"]
            if kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"] != "PendingDeletion"
        ],
        "certificates": [c["CertificateArn"] for c in aws.client("acm").list_certificates()["CertificateSummaryList"]],
        "queues": aws.client("sqs").list_queues().get("QueueUrls", []),
        # A deleted cluster stays listed as INACTIVE for a while (on AWS too): only ACTIVE ones count.
        "clusters": [
            c["clusterArn"]
            for c in aws.client("ecs").describe_clusters(clusters=aws.client("ecs").list_clusters()["clusterArns"])["clusters"]
            if c["status"] == "ACTIVE"
        ],
        "databases": [c["DBClusterIdentifier"] for c in aws.client("rds").describe_db_clusters()["DBClusters"]],
        "load balancers": [lb["LoadBalancerArn"] for lb in aws.client("elbv2").describe_load_balancers()["LoadBalancers"]],
        "topics": [t["TopicArn"] for t in aws.client("sns").list_topics()["Topics"]],
        "repositories": [r["repositoryName"] for r in aws.client("ecr").describe_repositories()["repositories"]],
    }


def run(*argv: str) -> tuple[int, str, str]:
    """The CLI, with its output captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(list(argv))
    return status, out.getvalue(), err.getvalue()


def test_deploy_again_is_a_no_op_a_change_is_shown_not_applied_and_destroy_leaves_nothing(
    emulator: str, private_records: Path
) -> None:
    outputs = str(private_records / "outputs")
    status, out, _ = run("up", "--env", "dev", "--endpoint", emulator, "--outputs-dir", outputs)
    assert status == 0 and "152 resources deployed" in out
    before = stack_resources(emulator, cli.ACCOUNTS["dev"])
    assert before["vpcs"] and before["databases"] == ["scalepay-aurora-dev"]

    status, out, _ = run("up", "--env", "dev", "--endpoint", emulator, "--outputs-dir", outputs)
    assert status == 0 and "[dev] 0 changes" in out
    assert stack_resources(emulator, cli.ACCOUNTS["dev"]) == before, "a second deploy of an unchanged stack changed the account"

    status, _, err = run("up", "--env", "dev", "--endpoint", emulator, "--outputs-dir", outputs, "--config", "dbInstanceCount=2")
    assert status == 1
    assert "nothing was changed" in err and "REPLACE=1" in err
    assert stack_resources(emulator, cli.ACCOUNTS["dev"]) == before, "a plan with changes must not touch the account"
    status, out, _ = run("plan", "--env", "dev", "--endpoint", emulator, "--config", "dbInstanceCount=2")
    assert status == 0 and "+ create   aws:rds/clusterInstance:ClusterInstance database-instance-2" in out

    status, out, _ = run("destroy", "--env", "dev", "--endpoint", emulator, "--outputs-dir", outputs)
    assert status == 0 and "152 resources deleted, 0 retained" in out
    assert stack_resources(emulator, cli.ACCOUNTS["dev"]) == {key: [] for key in before}
    assert records.load(emulator, "dev") is None and not (Path(outputs) / "dev").exists()


def test_destroy_refuses_a_protected_prod_until_told(emulator: str, private_records: Path) -> None:
    outputs = str(private_records / "outputs")
    assert run("up", "--env", "prod", "--endpoint", emulator, "--outputs-dir", outputs)[0] == 0
    before = stack_resources(emulator, cli.ACCOUNTS["prod"])
    status, _, err = run("destroy", "--env", "prod", "--endpoint", emulator, "--outputs-dir", outputs)
    assert status == 1
    assert "are protected" in err and "nothing was deleted" in err and "UNPROTECT=1" in err
    assert stack_resources(emulator, cli.ACCOUNTS["prod"]) == before
    status, out, _ = run("destroy", "--env", "prod", "--endpoint", emulator, "--outputs-dir", outputs, "--unprotect")
    assert status == 0
    # As `pulumi destroy` does, retain-on-delete resources (prod's keys and data stores) stay in the account.
    retained = [line for line in out.splitlines() if "retained (retainOnDelete)" in line]
    assert retained and any("aws:rds/cluster:Cluster" in line for line in retained)
    left = stack_resources(emulator, cli.ACCOUNTS["prod"])
    assert left["databases"] == ["scalepay-aurora-prod"] and left["load balancers"] == [] and left["clusters"] == []


def test_a_failed_deploy_says_what_it_created_and_destroy_removes_it(emulator: str, private_records: Path) -> None:
    # Something in the account already holds a name the stack needs (here: the data key's alias).
    aws = account_aws(emulator, cli.ACCOUNTS["dev"])
    squatter = aws.client("kms").create_key()["KeyMetadata"]["KeyId"]
    aws.client("kms").create_alias(AliasName="alias/scalepay-data-dev", TargetKeyId=squatter)
    status, _, err = run("up", "--env", "dev", "--endpoint", emulator, "--outputs-dir", str(private_records / "outputs"))
    assert status == 1
    assert "DEPLOYMENT FAILED" in err and "aws:kms/alias:Alias" in err
    assert "resources were created before the failure; remove them with: make destroy ENV=dev ENDPOINT=" in err
    record = records.load(emulator, "dev")
    assert record is not None and record.status == records.FAILED and record.resources
    # A new deploy refuses to pile on top of the half-finished one.
    outputs = str(private_records / "outputs")
    status, _, err = run("up", "--env", "dev", "--endpoint", emulator, "--outputs-dir", outputs)
    assert status == 1 and "did not finish" in err and "make destroy ENV=dev" in err
    assert run("destroy", "--env", "dev", "--endpoint", emulator, "--outputs-dir", outputs)[0] == 0
    left = stack_resources(emulator, cli.ACCOUNTS["dev"])
    assert left["vpcs"] == [] and left["roles"] == [] and left["log groups"] == []
    assert left["live keys"] == [squatter], "only what was there before the deploy remains"


def test_a_deploy_interrupted_by_a_killed_emulator_is_destroyed_after_a_restart(private_records: Path) -> None:
    port = server.free_port()
    first = server.start(port)
    endpoint = first.endpoint
    seen: list[Registration] = []

    def kill_after_40(registration: Registration) -> None:
        seen.append(registration)
        if len(seen) == 40:
            first.stop()

    target = cli.targets(["dev"], "dedicated")[0]
    config = cli.run_config(target, "dedicated", {})
    try:
        with pytest.raises(DeploymentError) as excinfo:
            cli.deploy_stack(endpoint, target, config, stream=io.StringIO(), on_register=kill_after_40)
    finally:
        first.stop()
    assert "Could not connect to the endpoint URL" in excinfo.value.message
    record = records.load(endpoint, "dev")
    assert record is not None and record.status == records.FAILED and len(record.resources) >= 30
    second = server.start(port)
    try:
        status, out, _ = run("destroy", "--env", "dev", "--endpoint", endpoint, "--outputs-dir", str(private_records / "out"))
        assert status == 0 and f"{len(record.resources)} resources deleted" in out
        assert records.load(endpoint, "dev") is None
    finally:
        second.stop()


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("localhost:5000", "is not an emulator URL: expected http://<host>:<port>"),
        ("http://127.0.0.1", "is not an emulator URL"),
        ("http://127.0.0.1:1", "no emulator answers at http://127.0.0.1:1"),
    ],
)
def test_a_malformed_or_unreachable_endpoint_fails_in_under_two_seconds(endpoint: str, expected: str) -> None:
    started = time.monotonic()
    status, _, err = run("up", "--env", "dev", "--endpoint", endpoint)
    assert time.monotonic() - started < 2.0
    assert status == 1 and expected in err and "Traceback" not in err


def test_a_moto_without_managed_policies_is_named_with_the_command_to_fix_it() -> None:
    """A plain `python -m moto.server` (no managed policies) is refused up front, with the command that works."""
    port = server.free_port()
    environment = {k: v for k, v in os.environ.items() if k != "MOTO_IAM_LOAD_MANAGED_POLICIES"}
    plain = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        server.wait_until_up(f"http://127.0.0.1:{port}")
        started = time.monotonic()
        with pytest.raises(EndpointError, match=r"has no AWS managed policies.*tools\.emulator\.server --port"):
            check(f"http://127.0.0.1:{port}")
        assert time.monotonic() - started < 2.0
    finally:
        plain.terminate()
        plain.wait(timeout=10)


def test_a_config_error_is_one_line_and_nothing_starts() -> None:
    status, out, err = run("up", "--env", "staging", "--config", "minTasks=5", "--config", "maxTasks=2")
    assert status == 1
    assert err.strip() == "error: scalepayments:maxTasks: invalid value 2; allowed: at least minTasks (5)"
    assert "Started the moto emulator" not in out


def test_profiles_reach_each_environment_with_no_hand_work(
    emulator: str, private_records: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = private_records / "outputs"
    assert run("up", "--env", "dev", "--endpoint", emulator, "--outputs-dir", str(outputs))[0] == 0
    vpc = __import__("json").loads((outputs / "dev" / "flat-outputs.json").read_text())["vpcId"]
    for variable in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(outputs / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(outputs / "aws-credentials"))
    session = boto3.Session(profile_name="scalepay-dev")
    assert vpc in [v["VpcId"] for v in session.client("ec2").describe_vpcs()["Vpcs"]]
    assert session.client("sts").get_caller_identity()["Account"] == cli.ACCOUNTS["dev"]
