"""Run the real Pulumi program under Pulumi's mock runtime and record what it registers.

One mechanism serves the unit tests, ``make bench``, ``make compliance`` and the local
deployment: :func:`evaluate` runs ``tap.main()`` exactly as ``pulumi up`` would, with a
:class:`pulumi.runtime.Mocks` standing in for the engine. The default :class:`FakeAws` mocks
answer with plausible ids and ARNs; the emulator deployment passes mocks that call AWS APIs.

Every registration is captured with its inputs (camelCase, as the provider would receive them)
and its resource options (``protect``, ``retainOnDelete``, ``dependsOn``), by wrapping
:class:`pulumi.runtime.mocks.MockMonitor`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

PROJECT = "scalepayments"
ACCOUNT_ID = "123456789012"


@dataclass(frozen=True)
class Registration:
    """One resource the program registered, with the options it asked for."""

    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    protect: bool
    retain_on_delete: bool
    depends_on: tuple[str, ...]
    state: dict[str, Any] = field(default_factory=dict)
    ignore_changes: tuple[str, ...] = ()

    @property
    def component(self) -> str:
        """The type token of the nearest parent component (e.g. ``scalepayments:network:Network``)."""
        for part in reversed(self.urn.split("::")[2].split("$")[:-1]):
            if not part.startswith("pulumi:pulumi:Stack"):
                return part
        return ""


@dataclass
class Evaluation:
    """Everything one program run registered, and its resolved stack outputs."""

    stack: str
    registrations: list[Registration]
    outputs: dict[str, Any]

    def of_type(self, type_: str) -> list[Registration]:
        """Registrations of one resource type token, in registration order."""
        return [r for r in self.registrations if r.type == type_]

    def one(self, type_: str) -> Registration:
        """The single registration of ``type_``; fails if there are zero or several."""
        found = self.of_type(type_)
        if len(found) != 1:
            raise AssertionError(f"expected exactly one {type_}, found {[r.name for r in found]}")
        return found[0]

    def named(self, name: str) -> Registration:
        """The registration with logical name ``name``."""
        for r in self.registrations:
            if r.name == name:
                return r
        raise KeyError(f"no resource named {name!r}; names: {sorted(r.name for r in self.registrations)}")

    def custom(self) -> list[Registration]:
        """Registrations of real cloud resources (not components)."""
        return [r for r in self.registrations if r.custom]


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A MockMonitor that also records each registration's options and inputs."""

    def __init__(self, mocks: pulumi.runtime.Mocks, on_register: Callable[[Registration], None] | None = None):
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self._lock = threading.Lock()
        self._on_register = on_register

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        """Forward to the mocks, then record the request with its resource options."""
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        from pulumi.runtime import rpc

        inputs = rpc.deserialize_properties(request.object)
        registration = Registration(
            type=request.type,
            name=request.name,
            urn=response.urn,
            parent=request.parent,
            custom=bool(request.custom),
            inputs=dict(inputs),
            protect=bool(request.protect),
            retain_on_delete=bool(request.retainOnDelete),
            depends_on=tuple(request.dependencies),
            state=dict(self.resources[response.urn].state) if response.urn in self.resources else {},
            ignore_changes=tuple(request.ignoreChanges),
        )
        with self._lock:
            self.registrations.append(registration)
        if self._on_register is not None:
            self._on_register(registration)
        return response


class FakeAws(pulumi.runtime.Mocks):
    """Offline stand-in for AWS: echoes inputs and adds the ids, ARNs and endpoints the program reads."""

    def __init__(self, region: str = "us-east-1", account_id: str = ACCOUNT_ID) -> None:
        self.region = region
        self.account_id = account_id

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        """Return ``<name>-id`` and the inputs plus computed attributes."""
        resource_id = f"{args.name}-id"
        service = args.typ.split(":")[1].split("/")[0] if ":" in args.typ else "x"
        state: dict[str, Any] = {
            **args.inputs,
            "id": resource_id,
            "arn": args.inputs.get("arn") or f"arn:aws:{service}:{self.region}:{self.account_id}:{args.name}",
        }
        table: dict[str, dict[str, Any]] = {
            "aws:lb/loadBalancer:LoadBalancer": {
                "dnsName": f"{args.name}.{self.region}.elb.amazonaws.com",
                "arnSuffix": f"app/{args.inputs.get('name', args.name)}/0123456789abcdef",
                "zoneId": "Z35SXDOTRQ7X7K",
            },
            "aws:lb/targetGroup:TargetGroup": {"arnSuffix": f"targetgroup/{args.inputs.get('name', args.name)}/0123"},
            "aws:rds/cluster:Cluster": {
                "endpoint": f"{args.name}.cluster-abc.{self.region}.rds.amazonaws.com",
                "readerEndpoint": f"{args.name}.cluster-ro-abc.{self.region}.rds.amazonaws.com",
                "masterUserSecrets": [
                    {
                        "secretArn": f"arn:aws:secretsmanager:{self.region}:{self.account_id}:secret:rds!{args.name}",
                        "kmsKeyId": args.inputs.get("masterUserSecretKmsKeyId", ""),
                        "secretStatus": "active",
                    }
                ],
                "clusterResourceId": "cluster-ABCDEFGHIJ",
            },
            "aws:elasticache/user:User": {
                "arn": f"arn:aws:elasticache:{self.region}:{self.account_id}:user:{args.inputs.get('userId')}"
            },
            "aws:elasticache/userGroup:UserGroup": {
                "arn": f"arn:aws:elasticache:{self.region}:{self.account_id}:usergroup:{args.inputs.get('userGroupId')}"
            },
            "aws:servicediscovery/httpNamespace:HttpNamespace": {
                "arn": f"arn:aws:servicediscovery:{self.region}:{self.account_id}:namespace/ns-{args.name}"
            },
            "aws:elasticache/replicationGroup:ReplicationGroup": {
                "arn": f"arn:aws:elasticache:{self.region}:{self.account_id}:replicationgroup:"
                f"{args.inputs.get('replicationGroupId', args.name)}",
                "primaryEndpointAddress": f"master.{args.name}.abc.use1.cache.amazonaws.com",
                "readerEndpointAddress": f"replica.{args.name}.abc.use1.cache.amazonaws.com",
                "memberClusters": [
                    f"{args.inputs.get('replicationGroupId', args.name)}-{i:03d}"
                    for i in range(1, int(args.inputs.get("numCacheClusters", 1)) + 1)
                ],
            },
            "aws:ecs/cluster:Cluster": {"name": args.inputs.get("name", args.name)},
            "aws:ecr/repository:Repository": {
                "repositoryUrl": f"{self.account_id}.dkr.ecr.{self.region}.amazonaws.com/{args.inputs.get('name', args.name)}"
            },
            "aws:ec2/vpc:Vpc": {"defaultSecurityGroupId": f"{args.name}-default-sg"},
            "aws:kms/key:Key": {"keyId": resource_id},
            "aws:guardduty/detector:Detector": {"accountId": self.account_id},
            "aws:route53/record:Record": {"fqdn": str(args.inputs.get("name", args.name)).rstrip(".")},
            "aws:acm/certificate:Certificate": {
                "domainValidationOptions": [
                    {
                        "domainName": args.inputs.get("domainName", "example.com"),
                        "resourceRecordName": "_abc.example.com.",
                        "resourceRecordType": "CNAME",
                        "resourceRecordValue": "_xyz.acm-validations.aws.",
                    }
                ]
            },
            "random:index/randomPassword:RandomPassword": {"result": "x" * int(args.inputs.get("length", 32))},
            "tls:index/privateKey:PrivateKey": {"privateKeyPem": "-----BEGIN PRIVATE KEY-----\nfake\n"},
            "tls:index/selfSignedCert:SelfSignedCert": {"certPem": "-----BEGIN CERTIFICATE-----\nfake\n"},
        }
        computed = table.get(args.typ, {})
        state.update({k: v for k, v in computed.items() if k not in args.inputs})
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """Answer the data sources the program uses."""
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": self.account_id,
                "arn": f"arn:aws:iam::{self.account_id}:user/ci",
                "userId": "AIDA",
                "id": self.account_id,
            }, []
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}, []
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}, []
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            # Like the API, with an opted-in Local Zone that sorts before the regular zones, and filters applied.
            zones = [(f"{self.region}-bos-1a", "use1-bos1-az1", "opted-in")] + [
                (f"{self.region}{s}", f"use1-az{i}", "opt-in-not-required") for i, s in enumerate("abcdef", start=1)
            ]
            for flt in args.args.get("filters") or []:
                if flt.get("name") == "opt-in-status":
                    zones = [z for z in zones if z[2] in flt.get("values", [])]
            zones.sort()
            return {"names": [z[0] for z in zones], "zoneIds": [z[1] for z in zones], "id": self.region}, []
        if args.token == "aws:elb/getServiceAccount:getServiceAccount":
            return {"arn": "arn:aws:iam::127311923021:root", "id": "127311923021"}, []
        if args.token == "aws:guardduty/getDetector:getDetector":
            return {"id": "existing-detector", "status": "ENABLED", "findingPublishingFrequency": "SIX_HOURS"}, []
        raise NotImplementedError(f"FakeAws has no answer for data source {args.token}")


def evaluate(
    stack: str,
    config: Mapping[str, str] | None = None,
    mocks: pulumi.runtime.Mocks | None = None,
    on_register: Callable[[Registration], None] | None = None,
    entry: Callable[[], dict[str, Any]] | None = None,
) -> Evaluation:
    """Run ``tap.main()`` (or ``entry``) for ``stack`` with ``config`` (full keys, e.g. ``scalepayments:azCount``).

    Returns every registration and the resolved outputs. Exceptions raised by the program
    (a ConfigError, say) propagate unchanged, after the runtime has been shut down.
    """
    import tap  # the program's entry module

    region = (config or {}).get("aws:region", "us-east-1")
    mocks = mocks or FakeAws(region=region)
    monitor = RecordingMonitor(mocks, on_register)
    pulumi_settings.reset_options(project=PROJECT, stack=stack, preview=False)
    pulumi_mocks.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    set_all_config(dict(config or {}))
    pulumi_settings.SETTINGS.rpc_manager.clear()
    pulumi_settings.SETTINGS.outputs.clear()

    resolved: dict[str, Any] = {}

    def program() -> None:
        outputs = (entry or tap.main)()
        values: dict[str, Any] | None = _sync_await(pulumi.Output.from_input(outputs).future())
        resolved.update(values or {})

    _sync_await(run_pulumi_func(program))
    return Evaluation(stack=stack, registrations=list(monitor.registrations), outputs=resolved)


def default_config(environment: str) -> dict[str, str]:
    """Config that lets each environment evaluate offline (staging and prod need a certificate and an alarm subscriber)."""
    config = {"aws:region": "us-east-1"}
    if environment != "dev":
        config["scalepayments:certificateArn"] = (
            f"arn:aws:acm:us-east-1:{ACCOUNT_ID}:certificate/00000000-0000-0000-0000-{environment:0>12}"
        )
        config["scalepayments:alarmSubscriberArns"] = f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:scalepay-oncall-{environment}"
    return config
