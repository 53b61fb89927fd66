"""The local deployment engine: every type the program uses has a handler, and a real round trip works.

The round-trip tests start moto's server in this process on a free 127.0.0.1 port and deploy dev
through the same code path as ``make deploy``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pulumi
import pytest

from lib.cidr import plan_subnets
from lib.config import PRESETS, Environment
from tools import deploy as deploy_cli
from tools import outputs as outputs_cli
from tools.emulator import Aws, DeploymentError, EmulatorMocks, Request, UnknownTypeError, account_aws, state
from tools.emulator.engine import ResourceHandler, normalize
from tools.emulator.handlers import CALLS, HANDLERS
from tools.evaluate import Evaluation, FakeAws, default_config, evaluate

ENVIRONMENTS = ("dev", "staging", "prod")
# Accounts of their own, so these tests never meet the environments' accounts (111..., 222..., 333...).
ROUND_TRIP_ACCOUNT = "444444444444"


class RecordingFakeAws(FakeAws):
    """FakeAws that also remembers which data sources the program called."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: set[str] = set()

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        self.tokens.add(args.token)
        return super().call(args)


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def offline(request: pytest.FixtureRequest) -> tuple[str, Evaluation, set[str]]:
    """The program evaluated under FakeAws, with the data-source tokens it called."""
    mocks = RecordingFakeAws()
    evaluation = evaluate(request.param, default_config(request.param), mocks=mocks)
    return request.param, evaluation, mocks.tokens


def test_every_resource_type_has_a_handler(offline: tuple[str, Evaluation, set[str]]) -> None:
    env, evaluation, _ = offline
    types = {r.type for r in evaluation.custom()}
    missing = sorted(types - set(HANDLERS))
    assert not missing, f"{env}: resource types with no emulator handler: {missing}"


def test_every_data_source_has_a_handler(offline: tuple[str, Evaluation, set[str]]) -> None:
    env, _, tokens = offline
    assert tokens, f"{env}: the program called no data source (account id comes from getCallerIdentity)"
    missing = sorted(tokens - set(CALLS))
    assert not missing, f"{env}: data sources with no emulator handler: {missing}"


def test_handler_tokens_are_well_formed() -> None:
    for token in [*HANDLERS, *CALLS]:
        package, module, name = token.split(":")
        assert package in ("aws", "random", "tls") and module and name, f"malformed token {token}"


# --- engine behaviour without an emulator -------------------------------------------------------------


def offline_aws() -> Aws:
    """An Aws whose clients would point nowhere; the tests below never reach a client."""
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    return Aws(session=session, endpoint="http://127.0.0.1:9", account_id="000000000000")


def resource_args(typ: str, name: str, inputs: dict[str, Any] | None = None, custom: bool = True) -> Any:
    return pulumi.runtime.MockResourceArgs(typ=typ, name=name, inputs=inputs or {}, custom=custom)


def creating(token: str, create: Any) -> ResourceHandler:
    """A handler whose create is ``create`` (read and delete are never reached by these tests)."""

    def unreachable(*_args: Any) -> None:
        raise AssertionError("only create is exercised here")

    return ResourceHandler(token, create=create, read=unreachable, delete=unreachable)


def test_unknown_resource_type_stops_with_its_name() -> None:
    mocks = EmulatorMocks(offline_aws(), handlers={}, calls={})
    with pytest.raises(UnknownTypeError) as caught:
        mocks.new_resource(resource_args("aws:foo/bar:Baz", "my-baz"))
    assert "aws:foo/bar:Baz" in str(caught.value) and "'my-baz'" in str(caught.value)
    assert mocks.error is caught.value


def test_unknown_data_source_stops_with_its_token() -> None:
    mocks = EmulatorMocks(offline_aws(), handlers={}, calls={})
    with pytest.raises(UnknownTypeError, match="aws:index/getNothing:getNothing"):
        mocks.call(pulumi.runtime.MockCallArgs(token="aws:index/getNothing:getNothing", args={}, provider=""))


def test_component_resources_need_no_handler() -> None:
    mocks = EmulatorMocks(offline_aws(), handlers={}, calls={})
    assert mocks.new_resource(resource_args("scalepayments:network:Network", "network", custom=False)) == ("", {})
    assert mocks.errors == []


def test_client_error_names_resource_operation_and_message() -> None:
    def failing(_aws: Aws, _req: Request) -> tuple[str, dict[str, Any]]:
        raise botocore.exceptions.ClientError(
            {"Error": {"Code": "InvalidSubnet.Range", "Message": "The CIDR '10.9.0.0/24' is invalid."}}, "CreateSubnet"
        )

    mocks = EmulatorMocks(offline_aws(), handlers={"aws:ec2/subnet:Subnet": creating("aws:ec2/subnet:Subnet", failing)}, calls={})
    with pytest.raises(DeploymentError) as caught:
        mocks.new_resource(resource_args("aws:ec2/subnet:Subnet", "network-public-0"))
    error = caught.value
    assert error.resource == "aws:ec2/subnet:Subnet 'network-public-0'"
    assert error.operation == "CreateSubnet"
    assert "InvalidSubnet.Range" in error.message and "10.9.0.0/24" in error.message


def test_after_a_failure_nothing_more_is_created() -> None:
    created: list[str] = []

    def ok(_aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
        created.append(req.name)
        return "id", {}

    def failing(_aws: Aws, _req: Request) -> tuple[str, dict[str, Any]]:
        raise RuntimeError("boom")

    handlers = {"t:a/b:Ok": creating("t:a/b:Ok", ok), "t:a/b:Bad": creating("t:a/b:Bad", failing)}
    mocks = EmulatorMocks(offline_aws(), handlers=handlers, calls={})
    with pytest.raises(DeploymentError):
        mocks.new_resource(resource_args("t:a/b:Bad", "bad"))
    with pytest.raises(DeploymentError, match="earlier resource failed"):
        mocks.new_resource(resource_args("t:a/b:Ok", "later"))
    assert created == [], "a resource was created after the deployment had failed"
    assert mocks.error is not None and "'bad'" in mocks.error.resource


def test_inputs_are_normalised_as_the_provider_sees_them() -> None:
    secret = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "s3cret"}
    assert normalize({"port": 443.0, "threshold": 2.5, "nested": [{"priority": 1.0}], "password": secret}) == {
        "port": 443,
        "threshold": 2.5,
        "nested": [{"priority": 1}],
        "password": "s3cret",
    }


def test_write_outputs_writes_env_and_primary_files(tmp_path: Path) -> None:
    outputs = {"environment": "staging", "vpcId": "vpc-1", "serviceNames": {"api": "a"}, "azs": ["us-east-1a"]}
    paths = outputs_cli.write_outputs(outputs, tmp_path)
    assert paths == [tmp_path / "staging" / "flat-outputs.json", tmp_path / "flat-outputs.json"]
    for path in paths:
        assert json.loads(path.read_text()) == outputs, f"{path} does not hold the outputs as JSON"
    only_env = outputs_cli.write_outputs({**outputs, "environment": "dev"}, tmp_path / "x", primary=False)
    assert only_env == [tmp_path / "x" / "dev" / "flat-outputs.json"]


def test_outputs_cli_reads_pulumi_stack_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in `pulumi` executable on PATH: the CLI must run it and write what it prints.
    fake = tmp_path / "bin" / "pulumi"
    fake.parent.mkdir()
    printed = {"environment": "prod", "albDnsName": "x.elb.amazonaws.com", "privateSubnetIds": ["subnet-1"]}
    fake.write_text(
        f"#!{sys.executable}\nimport sys, json\n"
        "assert sys.argv[1:] == ['stack', 'output', '--json', '--stack', 'org/prod'], sys.argv\n"
        f"print(json.dumps({printed!r}))\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    assert outputs_cli.main(["--stack", "org/prod", "--outputs-dir", str(tmp_path / "out")]) == 0
    assert json.loads((tmp_path / "out" / "prod" / "flat-outputs.json").read_text()) == printed
    assert json.loads((tmp_path / "out" / "flat-outputs.json").read_text()) == printed


# --- a real round trip against an in-process emulator -----------------------------------------------


@contextlib.contextmanager
def forgotten(endpoint: str, stack: str) -> Iterator[None]:
    """The stack's state record set aside (as if deployed by someone else), then put back as it was."""
    record = state.load(endpoint, stack)
    assert record is not None, f"{stack} has no state record in {endpoint}"
    state.remove(endpoint, stack)
    try:
        yield
    finally:
        state.save(record)


@pytest.fixture(scope="module")
def deployed_dev(emulator: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Aws, Evaluation, Path, str]:
    """dev deployed into its own account through tools.deploy, outputs written to a temp dir."""
    root = tmp_path_factory.mktemp("cfn-outputs")
    log = io.StringIO()
    original = deploy_cli.ACCOUNTS["dev"]
    deploy_cli.ACCOUNTS["dev"] = ROUND_TRIP_ACCOUNT  # keep the round trip out of the real dev account
    try:
        results = deploy_cli.deploy(["dev"], emulator, root=root, stream=log)
    finally:
        deploy_cli.ACCOUNTS["dev"] = original
    (result,) = results
    assert result.evaluation is not None
    return account_aws(emulator, ROUND_TRIP_ACCOUNT), result.evaluation, root, log.getvalue()


def test_round_trip_vpc_is_real(deployed_dev: tuple[Aws, Evaluation, Path, str]) -> None:
    aws, evaluation, _, _ = deployed_dev
    vpc_id = evaluation.outputs["vpcId"]
    assert vpc_id.startswith("vpc-"), f"vpcId {vpc_id!r} is not an EC2 VPC id"
    vpc = aws.client("ec2").describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]
    assert vpc["CidrBlock"] == PRESETS[Environment.DEV].network.vpc_cidr
    assert vpc["OwnerId"] == ROUND_TRIP_ACCOUNT == evaluation.outputs["accountId"]


def test_round_trip_subnets_have_planned_cidrs(deployed_dev: tuple[Aws, Evaluation, Path, str]) -> None:
    aws, evaluation, _, _ = deployed_dev
    network = PRESETS[Environment.DEV].network
    plan = plan_subnets(network.vpc_cidr, network.az_count)
    for tier, planned in (("public", plan.public), ("private", plan.private), ("database", plan.database)):
        ids = evaluation.outputs[f"{tier}SubnetIds"]
        found = aws.client("ec2").describe_subnets(SubnetIds=ids)["Subnets"]
        by_id = {s["SubnetId"]: s for s in found}
        assert [by_id[i]["CidrBlock"] for i in ids] == list(planned), f"{tier} subnets {ids} differ from the plan"
        assert all(s["VpcId"] == evaluation.outputs["vpcId"] for s in found), f"{tier} subnets outside the VPC"


def test_round_trip_alb_dns_name_is_read_back(deployed_dev: tuple[Aws, Evaluation, Path, str]) -> None:
    aws, evaluation, _, _ = deployed_dev
    found = aws.client("elbv2").describe_load_balancers(LoadBalancerArns=[evaluation.outputs["albArn"]])["LoadBalancers"][0]
    assert evaluation.outputs["albDnsName"] == found["DNSName"]
    assert found["Scheme"] == "internet-facing"
    assert {z["SubnetId"] for z in found["AvailabilityZones"]} == set(evaluation.outputs["publicSubnetIds"])


def test_round_trip_data_tier_endpoints_are_read_back(deployed_dev: tuple[Aws, Evaluation, Path, str]) -> None:
    aws, evaluation, _, _ = deployed_dev
    outputs = evaluation.outputs
    cluster = aws.client("rds").describe_db_clusters(DBClusterIdentifier=outputs["auroraClusterIdentifier"])["DBClusters"][0]
    assert outputs["auroraWriterEndpoint"] == cluster["Endpoint"]
    assert outputs["auroraSecretArn"] == cluster["MasterUserSecret"]["SecretArn"]
    aws.client("secretsmanager").describe_secret(SecretId=outputs["auroraSecretArn"])  # RDS created it
    group = aws.client("elasticache").describe_replication_groups(ReplicationGroupId=outputs["redisReplicationGroupId"])
    assert outputs["redisPrimaryEndpoint"] == group["ReplicationGroups"][0]["NodeGroups"][0]["PrimaryEndpoint"]["Address"]


def test_round_trip_writes_outputs_and_endpoint(deployed_dev: tuple[Aws, Evaluation, Path, str], emulator: str) -> None:
    _, evaluation, root, log = deployed_dev
    written = json.loads((root / "dev" / "flat-outputs.json").read_text())
    assert written == json.loads(json.dumps(evaluation.outputs)), "dev/flat-outputs.json differs from the stack outputs"
    assert json.loads((root / "flat-outputs.json").read_text()) == written
    endpoint = json.loads((root / "endpoint.json").read_text())
    assert endpoint["endpoint"] == emulator and endpoint["region"] == "us-east-1"
    assert "resources created" in log and "ALB DNS name" in log, "no progress or summary printed"


def test_failure_mid_deployment_names_resource_and_operation(
    deployed_dev: tuple[Aws, Evaluation, Path, str], emulator: str
) -> None:
    # dev is already in this account: deployed again without its state record, it collides on the first named resource.
    target = deploy_cli.Target("dev", ROUND_TRIP_ACCOUNT, owns_singletons=True, owner="dev")
    with forgotten(emulator, "dev"), pytest.raises(DeploymentError) as caught:
        deploy_cli.deploy_stack(emulator, target, deploy_cli.run_config(target, "dedicated", {}), stream=io.StringIO())
    error = caught.value
    registered = {(r.type, r.name) for r in deployed_dev[1].custom()}
    assert any(error.resource == f"{typ} {name!r}" for typ, name in registered), f"{error.resource} is no program resource"
    assert error.operation.startswith(("Create", "Put", "Register", "Allocate", "Request", "Import")), error.operation
    assert "exist" in error.message.lower(), f"the emulator's message is missing: {error.message}"


def test_cli_reports_failure_and_exits_non_zero(
    deployed_dev: tuple[Aws, Evaluation, Path, str], emulator: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = deploy_cli.ACCOUNTS["dev"]
    deploy_cli.ACCOUNTS["dev"] = ROUND_TRIP_ACCOUNT
    try:
        with forgotten(emulator, "dev"):
            status = deploy_cli.main(["--env", "dev", "--endpoint", emulator, "--outputs-dir", str(tmp_path)])
    finally:
        deploy_cli.ACCOUNTS["dev"] = original
    assert status == 1
    err = capsys.readouterr().err
    assert "DEPLOYMENT FAILED" in err and "resource:" in err and "operation:" in err
