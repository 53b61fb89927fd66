"""Emulator handlers: found by convention, and each able to create, read back and delete what it handles.

The round trips deploy every environment through ``tools.deploy`` (the ``make deploy`` code path) into
one in-process moto server, each in its own account, then read every created resource back, delete
them all in reverse creation order and check through the AWS APIs that the account holds nothing of
the stack any more.
"""

from __future__ import annotations

import datetime
import io
import json
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pulumi
import pytest

from tools import deploy as deploy_cli
from tools.emulator import Aws, EmulatorMocks, Request, account_aws
from tools.emulator.engine import CreatedResource, ResourceHandler
from tools.emulator.handlers import CALLS, HANDLERS, REGISTRY, DiscoveryError, discover, token_module
from tools.emulator.handlers.translate import GoneError, none_when
from tools.evaluate import Evaluation, Registration

HANDLERS_DIR = Path(__file__).resolve().parents[2] / "tools" / "emulator" / "handlers"
ENVIRONMENTS = ("dev", "staging", "prod")
# Accounts of their own, apart from the environments' (111..., 222..., 333...) and test_emulator's (444444444444).
ROUND_TRIP_ACCOUNTS = {"dev": "555555555501", "staging": "555555555502", "prod": "555555555503"}
SINGLE_HANDLER_ACCOUNT = "555555555509"

# --- discovery ----------------------------------------------------------------------------------------


def test_token_modules_are_exactly_the_module_files() -> None:
    files = {
        f"{path.parent.name}:{path.stem}"
        for path in HANDLERS_DIR.glob("*/*.py")
        if not path.name.startswith("_") and not path.parent.name.startswith("_")
    }
    assert set(REGISTRY.modules) == files, "a handler module file declares nothing, or a token module has no file"
    assert {token_module(t) for t in [*HANDLERS, *CALLS]} == files


def test_each_handler_is_defined_in_the_module_of_its_token() -> None:
    for token, handler in HANDLERS.items():
        assert handler.token == token
        assert handler.create.__module__ == REGISTRY.modules[token_module(token)], f"{token}: create defined elsewhere"
    for token, call in CALLS.items():
        assert call.__module__ == REGISTRY.modules[token_module(token)], f"{token}: defined elsewhere"


def test_handlers_kept_after_delete_say_why() -> None:
    retained = {t for t, h in HANDLERS.items() if h.retained}
    assert retained == {
        "aws:elasticache/parameterGroup:ParameterGroup",
        "aws:elasticache/subnetGroup:SubnetGroup",
        "aws:elasticache/userGroup:UserGroup",
        "random:index/randomPassword:RandomPassword",
        "tls:index/privateKey:PrivateKey",
        "tls:index/selfSignedCert:SelfSignedCert",
    }
    assert all(len(HANDLERS[t].retained) > 20 for t in retained)


@pytest.fixture
def make_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Write a throwaway handler package under tmp_path and import it; forgotten again afterwards."""
    name = f"throwaway_handlers_{uuid.uuid4().hex[:8]}"
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(files: dict[str, str]) -> Any:
        root = tmp_path / name
        for relative, text in {"__init__.py": "", **files}.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        return __import__(name)

    yield make
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[module]


def _handler_module(*tokens: str, data_sources: tuple[str, ...] = ()) -> str:
    lines = [
        "from tools.emulator.engine import DataSource, ResourceHandler",
        "from tools.emulator.handlers.translate import delete_nothing, read_recorded",
        "def create(aws, req):",
        "    return 'id', {}",
        "def answer(aws, args):",
        "    return {}",
        "RESOURCES = (" + "".join(f"ResourceHandler({t!r}, create, read_recorded, delete_nothing), " for t in tokens) + ")",
        "DATA_SOURCES = (" + "".join(f"DataSource({t!r}, answer), " for t in data_sources) + ")",
    ]
    return "\n".join(lines) + "\n"


def test_discovery_collects_each_module_and_skips_helpers(make_package: Any) -> None:
    package = make_package(
        {
            "aws/__init__.py": "",
            "aws/ec2.py": _handler_module("aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet"),
            "aws/index.py": _handler_module(data_sources=("aws:index/getRegion:getRegion",)),
            "aws/_shared.py": "VALUE = 1\n",
            "random/__init__.py": "",
            "random/index.py": _handler_module("random:index/randomPassword:RandomPassword"),
            "translate.py": "def helper():\n    return 1\n",
        }
    )
    found = discover(package)
    assert set(found.resources) == {"aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "random:index/randomPassword:RandomPassword"}
    assert set(found.calls) == {"aws:index/getRegion:getRegion"}
    assert found.modules == {
        "aws:ec2": f"{package.__name__}.aws.ec2",
        "aws:index": f"{package.__name__}.aws.index",
        "random:index": f"{package.__name__}.random.index",
    }


def test_discovery_refuses_a_token_claimed_twice(make_package: Any) -> None:
    package = make_package(
        {
            "aws/__init__.py": "",
            "aws/ec2.py": _handler_module("aws:ec2/vpc:Vpc"),
            "aws/ec2_more.py": _handler_module("aws:ec2/vpc:Vpc"),
        }
    )
    with pytest.raises(DiscoveryError, match=r"aws:ec2/vpc:Vpc has two handlers: in \S+\.aws\.ec2 and in \S+\.aws\.ec2_more"):
        discover(package)


def test_discovery_refuses_a_token_claimed_twice_in_one_module(make_package: Any) -> None:
    package = make_package({"aws/__init__.py": "", "aws/kms.py": _handler_module("aws:kms/key:Key", "aws:kms/key:Key")})
    with pytest.raises(DiscoveryError, match="aws:kms/key:Key has two handlers"):
        discover(package)


def test_discovery_refuses_a_token_in_another_module(make_package: Any) -> None:
    package = make_package({"aws/__init__.py": "", "aws/ec2.py": _handler_module("aws:vpc/securityGroupIngressRule:Rule")})
    with pytest.raises(DiscoveryError, match=r"aws:vpc/securityGroupIngressRule:Rule is declared in \S+\.aws\.ec2.*\.aws\.vpc"):
        discover(package)


def test_discovery_refuses_a_handler_module_that_declares_nothing(make_package: Any) -> None:
    package = make_package({"aws/__init__.py": "", "aws/ec2.py": "def create(aws, req):\n    return 'id', {}\n"})
    with pytest.raises(DiscoveryError, match=r"\.aws\.ec2 is a handler module but declares no RESOURCES or DATA_SOURCES"):
        discover(package)


def test_discovery_refuses_handlers_outside_provider_modules(make_package: Any) -> None:
    package = make_package({"helpers.py": _handler_module("aws:kms/key:Key")})
    with pytest.raises(DiscoveryError, match=r"\.helpers declares handlers; they belong in <provider>/<module>\.py"):
        discover(package)


def test_malformed_token_is_refused() -> None:
    with pytest.raises(DiscoveryError, match="malformed token"):
        token_module("aws-ec2-vpc")


# --- engine: the record of what was created -------------------------------------------------------------


def offline_aws() -> Aws:
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    return Aws(session=session, endpoint="http://127.0.0.1:9", account_id="000000000000")


def registration(typ: str, name: str, urn: str, depends_on: tuple[str, ...] = ()) -> Registration:
    return Registration(
        type=typ,
        name=name,
        urn=urn,
        parent="urn:parent",
        custom=True,
        inputs={},
        protect=True,
        retain_on_delete=False,
        depends_on=depends_on,
    )


def test_created_resources_are_recorded_with_urn_and_dependencies() -> None:
    def create(_aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
        return f"{req.name}-id", {"arn": f"arn:{req.name}", "size": req.get("size")}

    token = "t:m/thing:Thing"
    handler = ResourceHandler(token, create, read=lambda *_: None, delete=lambda *_: None)
    mocks = EmulatorMocks(offline_aws(), handlers={token: handler}, calls={})
    resource_id, state = mocks.new_resource(
        pulumi.runtime.MockResourceArgs(typ=token, name="a", inputs={"size": 2.0}, custom=True)
    )
    assert (resource_id, state) == ("a-id", {"arn": "arn:a", "size": 2, "id": "a-id"})
    mocks.registered(registration(token, "a", "urn:a", ("urn:dep",)))
    # A component's registration (nothing created for it) leaves the records alone.
    mocks.new_resource(pulumi.runtime.MockResourceArgs(typ="c:m:Component", name="comp", inputs={}, custom=False))
    mocks.registered(registration("c:m:Component", "comp", "urn:comp"))
    assert mocks.created == [
        CreatedResource(
            type=token,
            name="a",
            id="a-id",
            state={"arn": "arn:a", "size": 2},
            urn="urn:a",
            parent="urn:parent",
            depends_on=("urn:dep",),
            protect=True,
        )
    ]


# --- translate ------------------------------------------------------------------------------------------


def test_none_when_turns_listed_not_found_errors_and_gone_into_none() -> None:
    def failing(code: str) -> Any:
        @none_when("NoSuchThing")
        def read() -> dict[str, Any]:
            if code == "gone":
                raise GoneError("deleting")
            raise botocore.exceptions.ClientError({"Error": {"Code": code, "Message": "m"}}, "GetThing")

        return read

    assert failing("NoSuchThing")() is None
    assert failing("gone")() is None
    with pytest.raises(botocore.exceptions.ClientError):
        failing("AccessDenied")()


# --- round trips against an in-process emulator -----------------------------------------------------------


@dataclass
class RoundTrip:
    """One environment deployed, read back, deleted, read again and deleted again."""

    env: str
    aws: Aws
    evaluation: Evaluation
    created: list[CreatedResource]
    reads: dict[int, dict[str, Any] | None] = field(default_factory=dict)
    delete_errors: list[str] = field(default_factory=list)
    reads_after: dict[int, dict[str, Any] | None] = field(default_factory=dict)
    second_delete_errors: list[str] = field(default_factory=list)
    deleted_at: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.UTC))


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def round_trip(request: pytest.FixtureRequest, emulator: str) -> RoundTrip:
    env = request.param
    aws = account_aws(emulator, ROUND_TRIP_ACCOUNTS[env])
    target = deploy_cli.Target(env, ROUND_TRIP_ACCOUNTS[env], owns_singletons=True, owner=env)
    result = deploy_cli.deploy_stack(emulator, target, deploy_cli.run_config(target, "dedicated", {}), stream=io.StringIO())
    assert result.evaluation is not None
    created = [
        CreatedResource(r.type, r.name, r.id, r.state, r.urn, r.parent, tuple(r.depends_on), r.protect, r.retain_on_delete)
        for r in result.record.resources
    ]
    trip = RoundTrip(env, aws, result.evaluation, created)
    for index, record in enumerate(trip.created):
        trip.reads[index] = HANDLERS[record.type].read(aws, record.id, record.state)
    trip.deleted_at = datetime.datetime.now(datetime.UTC)
    for index in reversed(range(len(trip.created))):
        record = trip.created[index]
        try:
            HANDLERS[record.type].delete(aws, record.id, record.state)
        except Exception as exc:  # collected, so that one failure still shows every other
            trip.delete_errors.append(f"{record.type} {record.name}: {type(exc).__name__}: {exc}")
    for index, record in enumerate(trip.created):
        trip.reads_after[index] = HANDLERS[record.type].read(aws, record.id, record.state)
    for record in reversed(trip.created):
        try:
            HANDLERS[record.type].delete(aws, record.id, record.state)
        except Exception as exc:
            trip.second_delete_errors.append(f"{record.type} {record.name}: {type(exc).__name__}: {exc}")
    return trip


def test_round_trip_records_every_created_resource(round_trip: RoundTrip) -> None:
    registered = {r.urn: r for r in round_trip.evaluation.custom()}
    assert len(round_trip.created) == len(registered), "created records differ from the custom registrations"
    for record in round_trip.created:
        found = registered.get(record.urn)
        assert found is not None, f"{record.type} {record.name}: recorded without the URN of its registration"
        assert (found.type, found.name, found.state["id"]) == (record.type, record.name, record.id)
        assert record.depends_on == found.depends_on and record.parent == found.parent
        assert {k: v for k, v in found.state.items() if k != "id"} == record.state


def test_round_trip_read_returns_the_created_resource(round_trip: RoundTrip) -> None:
    for index, record in enumerate(round_trip.created):
        found = round_trip.reads[index]
        where = f"{round_trip.env} {record.type} {record.name}"
        assert found is not None, f"{where}: read found nothing right after the deployment"
        assert set(record.state) <= set(found), f"{where}: read lost {set(record.state) - set(found)}"
        for key in ("arn", "name"):
            if key in record.state:
                assert found[key] == record.state[key], f"{where}: {key} read back {found[key]!r}, created {record.state[key]!r}"
        for key, value in record.state.items():
            if value == record.id:
                assert found[key] == record.id, f"{where}: {key} (the id) read back as {found[key]!r}"


def test_round_trip_bucket_policies_read_back_unchanged(round_trip: RoundTrip) -> None:
    # Bucket logging's moto stand-in swaps the target bucket's policy for a moment: it must be the stack's again.
    policies = [(i, r) for i, r in enumerate(round_trip.created) if r.type == "aws:s3/bucketPolicy:BucketPolicy"]
    assert policies
    for index, record in policies:
        found = round_trip.reads[index]
        assert found is not None and json.loads(found["policy"]) == json.loads(record.state["policy"]), record.name


def test_round_trip_scaling_policies_carry_their_own_arn(round_trip: RoundTrip) -> None:
    policies = [r for r in round_trip.created if r.type == "aws:appautoscaling/policy:Policy"]
    assert policies
    for record in policies:
        assert record.state["arn"].endswith(f":policyName/{record.state['name']}"), record.state["arn"]


def test_round_trip_delete_removes_every_resource(round_trip: RoundTrip) -> None:
    assert round_trip.delete_errors == []
    still_there = [
        f"{r.type} {r.name}"
        for i, r in enumerate(round_trip.created)
        if round_trip.reads_after[i] is not None and not HANDLERS[r.type].retained
    ]
    assert still_there == [], f"{round_trip.env}: read still finds deleted resources"
    for index, record in enumerate(round_trip.created):
        if HANDLERS[record.type].retained:
            assert round_trip.reads_after[index] is not None, f"{record.type}: retained, so read keeps its state"


def test_round_trip_delete_is_idempotent(round_trip: RoundTrip) -> None:
    assert round_trip.second_delete_errors == []


def _ids(created: list[CreatedResource], typ: str, key: str | None = None) -> set[str]:
    return {str(r.state[key]) if key else r.id for r in created if r.type == typ}


def test_round_trip_account_holds_none_of_the_stack(round_trip: RoundTrip) -> None:
    aws, created = round_trip.aws, round_trip.created
    ec2 = aws.client("ec2")
    vpcs = ec2.describe_vpcs()["Vpcs"]
    default_vpcs = {v["VpcId"] for v in vpcs if v.get("IsDefault")}
    assert [v["VpcId"] for v in vpcs if not v.get("IsDefault")] == [], "a VPC besides the default one"
    assert [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"] if s["VpcId"] not in default_vpcs] == []
    assert [t["RouteTableId"] for t in ec2.describe_route_tables()["RouteTables"] if t["VpcId"] not in default_vpcs] == []
    assert [g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"] if g.get("VpcId") not in default_vpcs] == []
    gateways = ec2.describe_internet_gateways()["InternetGateways"]
    assert [g["InternetGatewayId"] for g in gateways if {a["VpcId"] for a in g.get("Attachments", [])} - default_vpcs] == []
    assert not _ids(created, "aws:ec2/internetGateway:InternetGateway") & {g["InternetGatewayId"] for g in gateways}
    assert [n["NatGatewayId"] for n in ec2.describe_nat_gateways()["NatGateways"] if n["State"] != "deleted"] == []
    assert ec2.describe_addresses()["Addresses"] == [], "an Elastic IP is still allocated"
    assert ec2.describe_network_interfaces()["NetworkInterfaces"] == [], "a network interface outlived its owner"
    assert [e for e in ec2.describe_vpc_endpoints()["VpcEndpoints"] if e["State"].lower() != "deleted"] == []
    assert ec2.describe_flow_logs()["FlowLogs"] == []

    stack_roles = _ids(created, "aws:iam/role:Role")
    assert stack_roles and not stack_roles & {r["RoleName"] for r in aws.client("iam").list_roles()["Roles"]}
    assert aws.client("logs").describe_log_groups()["logGroups"] == []
    assert aws.client("s3").list_buckets()["Buckets"] == []
    assert aws.client("ecr").describe_repositories()["repositories"] == []

    ecs = aws.client("ecs")
    clusters = ecs.list_clusters()["clusterArns"]
    assert [c for c in ecs.describe_clusters(clusters=clusters)["clusters"] if c["status"] != "INACTIVE"] == []
    for cluster in clusters:
        services = ecs.list_services(cluster=cluster)["serviceArns"]
        if services:
            found = ecs.describe_services(cluster=cluster, services=services)["services"]
            assert [
                (s["serviceName"], s["status"], s["desiredCount"])
                for s in found
                if s["status"] != "INACTIVE" or s["desiredCount"]
            ] == []
    assert ecs.list_task_definitions(status="ACTIVE")["taskDefinitionArns"] == []

    rds = aws.client("rds")
    assert rds.describe_db_clusters()["DBClusters"] == []
    assert rds.describe_db_instances()["DBInstances"] == []
    assert rds.describe_db_subnet_groups()["DBSubnetGroups"] == []
    groups = rds.describe_db_cluster_parameter_groups()["DBClusterParameterGroups"]
    assert [g["DBClusterParameterGroupName"] for g in groups if not g["DBClusterParameterGroupName"].startswith("default.")] == []
    snapshots = rds.describe_db_cluster_snapshots()["DBClusterSnapshots"]
    final = {
        str(r.state["finalSnapshotIdentifier"])
        for r in created
        if r.state.get("finalSnapshotIdentifier") and not r.state.get("skipFinalSnapshot")
    }
    assert {s["DBClusterSnapshotIdentifier"] for s in snapshots} == final, "only the final snapshots may outlive the cluster"

    cache = aws.client("elasticache")
    live = [
        (g["ReplicationGroupId"], g["Status"])
        for g in cache.describe_replication_groups()["ReplicationGroups"]
        if g["Status"] != "deleting"
    ]
    assert live == [], "a replication group not being deleted"
    # moto 5.2.5 has no DeleteCacheSubnetGroup: the stack's subnet groups stay, and nothing else.
    subnet_groups = {g["CacheSubnetGroupName"] for g in cache.describe_cache_subnet_groups()["CacheSubnetGroups"]}
    assert subnet_groups == _ids(created, "aws:elasticache/subnetGroup:SubnetGroup")

    elb = aws.client("elbv2")
    assert elb.describe_load_balancers()["LoadBalancers"] == []
    assert elb.describe_target_groups()["TargetGroups"] == []
    sns = aws.client("sns")
    assert sns.list_topics()["Topics"] == [] and sns.list_subscriptions()["Subscriptions"] == []
    cloudwatch = aws.client("cloudwatch")
    assert cloudwatch.describe_alarms()["MetricAlarms"] == [], "an alarm (or a target-tracking one) is left"
    assert cloudwatch.list_dashboards()["DashboardEntries"] == []
    assert aws.client("secretsmanager").list_secrets()["SecretList"] == [], "a secret (or RDS's master secret) is left"
    scaling = aws.client("application-autoscaling")
    assert scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"] == []
    assert scaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"] == []

    kms = aws.client("kms")
    for record in (r for r in created if r.type == "aws:kms/key:Key"):
        meta = kms.describe_key(KeyId=record.id)["KeyMetadata"]
        assert meta["KeyState"] == "PendingDeletion", f"key {record.name} is {meta['KeyState']}"
        window = max(7, int(record.state.get("deletionWindowInDays") or 30))
        expected = round_trip.deleted_at + datetime.timedelta(days=window)
        assert abs(meta["DeletionDate"] - expected) < datetime.timedelta(hours=1), f"key {record.name}: not its own window"
    assert [a["AliasName"] for a in kms.list_aliases()["Aliases"] if not a["AliasName"].startswith("alias/aws/")] == []

    certificates = {c["CertificateArn"] for c in aws.client("acm").list_certificates()["CertificateSummaryList"]}
    assert not certificates & _ids(created, "aws:acm/certificate:Certificate")
    assert aws.client("wafv2").list_web_acls(Scope="REGIONAL")["WebACLs"] == []
    assert aws.client("guardduty").list_detectors()["DetectorIds"] == []
    config = aws.client("config")
    assert config.describe_configuration_recorders()["ConfigurationRecorders"] == []
    assert config.describe_delivery_channels()["DeliveryChannels"] == []
    assert config.describe_config_rules()["ConfigRules"] == []
    assert aws.client("cloudtrail").describe_trails()["trailList"] == []


# --- handlers the program does not use in any environment today ----------------------------------------


@pytest.fixture(scope="module")
def single(emulator: str) -> Aws:
    """An account of its own for handler-by-handler round trips."""
    return account_aws(emulator, SINGLE_HANDLER_ACCOUNT)


def _round_trip_one(aws: Aws, token: str, name: str, inputs: dict[str, Any]) -> CreatedResource:
    """create -> read (same identity) -> delete -> read None -> delete again, through the handler only."""
    handler = HANDLERS[token]
    resource_id, state = handler.create(aws, Request(typ=token, name=name, inputs=inputs))
    found = handler.read(aws, resource_id, state)
    assert found is not None and {k: found.get(k) for k in ("arn", "name")} == {k: state.get(k) for k in ("arn", "name")}
    handler.delete(aws, resource_id, state)
    assert handler.read(aws, resource_id, state) is None, f"{token}: still read after delete"
    handler.delete(aws, resource_id, state)
    return CreatedResource(token, name, resource_id, state)


def test_route53_record_round_trip(single: Aws) -> None:
    zone = single.client("route53").create_hosted_zone(Name="scalepay.test", CallerReference=uuid.uuid4().hex)["HostedZone"]
    record = _round_trip_one(
        single,
        "aws:route53/record:Record",
        "api-record",
        {"zoneId": zone["Id"], "name": "api", "type": "A", "ttl": 60, "records": ["10.0.0.1"]},
    )
    assert record.state["fqdn"] == "api.scalepay.test"


def test_sns_topic_subscription_round_trip(single: Aws) -> None:
    topic_arn = single.client("sns").create_topic(Name="alerts")["TopicArn"]
    queue_url = single.client("sqs").create_queue(QueueName="alerts-queue")["QueueUrl"]
    queue_arn = single.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    _round_trip_one(
        single,
        "aws:sns/topicSubscription:TopicSubscription",
        "alerts-sub",
        {"topic": topic_arn, "protocol": "sqs", "endpoint": queue_arn},
    )


def test_certificate_validation_ends_with_its_certificate(single: Aws) -> None:
    certificate, validation = (
        HANDLERS["aws:acm/certificate:Certificate"],
        HANDLERS["aws:acm/certificateValidation:CertificateValidation"],
    )
    arn, cert_state = certificate.create(
        single, Request("aws:acm/certificate:Certificate", "cert", {"domainName": "api.scalepay.test"})
    )
    vid, v_state = validation.create(
        single, Request("aws:acm/certificateValidation:CertificateValidation", "valid", {"certificateArn": arn})
    )
    assert validation.read(single, vid, v_state) == v_state
    validation.delete(single, vid, v_state)
    certificate.delete(single, arn, cert_state)
    assert validation.read(single, vid, v_state) is None and certificate.read(single, arn, cert_state) is None


def test_role_delete_removes_only_its_own_policies(single: Aws) -> None:
    iam = single.client("iam")
    role = HANDLERS["aws:iam/role:Role"]
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}],
        }
    )
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})
    managed = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    inputs = {
        "name": "owner-role",
        "assumeRolePolicy": trust,
        "inlinePolicies": [{"name": "own", "policy": policy}],
        "managedPolicyArns": [managed],
    }
    name, state = role.create(single, Request("aws:iam/role:Role", "owner-role", inputs))
    # A RolePolicy of the stack (not the role's own): it is its handler's to delete, not the role's.
    separate_id, separate_state = HANDLERS["aws:iam/rolePolicy:RolePolicy"].create(
        single, Request("aws:iam/rolePolicy:RolePolicy", "separate", {"role": name, "name": "separate", "policy": policy})
    )
    with pytest.raises(botocore.exceptions.ClientError, match="DeleteConflict"):
        role.delete(single, name, state)
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == ["separate"]
    assert iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"] == []
    HANDLERS["aws:iam/rolePolicy:RolePolicy"].delete(single, separate_id, separate_state)
    role.delete(single, name, state)
    assert role.read(single, name, state) is None


def test_bucket_delete_clears_every_version_and_delete_marker_first(single: Aws) -> None:
    s3 = single.client("s3")
    name, state = HANDLERS["aws:s3/bucket:Bucket"].create(
        single, Request("aws:s3/bucket:Bucket", "data", {"bucket": "scalepay-versions-test"})
    )
    HANDLERS["aws:s3/bucketVersioning:BucketVersioning"].create(
        single,
        Request(
            "aws:s3/bucketVersioning:BucketVersioning", "data", {"bucket": name, "versioningConfiguration": {"status": "Enabled"}}
        ),
    )
    s3.put_object(Bucket=name, Key="report.csv", Body=b"v1")
    s3.put_object(Bucket=name, Key="report.csv", Body=b"v2")
    s3.delete_object(Bucket=name, Key="report.csv")
    listed = s3.list_object_versions(Bucket=name)
    assert (len(listed.get("Versions", [])), len(listed.get("DeleteMarkers", []))) == (2, 1)
    HANDLERS["aws:s3/bucket:Bucket"].delete(single, name, state)
    assert HANDLERS["aws:s3/bucket:Bucket"].read(single, name, state) is None
    assert name not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
