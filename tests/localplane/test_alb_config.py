"""front_door_config_from_emulator / moto_target_source against an in-process moto server (ThreadedMotoServer)."""

# ruff: noqa: F811 - fixtures imported from frontdoor_fixtures are requested by parameter name

from __future__ import annotations

import base64
import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
import pytest
from frontdoor_fixtures import (  # noqa: F401 - fixtures, requested by parameter name
    TlsFiles,
    UpstreamFactory,
    client_context,
    tls_files,
    upstreams,
)
from moto.server import ThreadedMotoServer

from tests.polling import wait_until
from tools.localplane.alb_config import (
    DEFAULT_ACTION_PRIORITY,
    front_door_config_from_emulator,
    moto_target_source,
    search_string,
    tls_settings_for_policy,
    waf_config_from_web_acl,
)
from tools.localplane.frontdoor import (
    BodySizeRule,
    FixedResponse,
    FrontDoor,
    NotEmulatedRule,
    RateRule,
    RedirectConfig,
    Rule,
)
from tools.localplane.upstreams import HealthCheck, Target, TargetState

REGION = "us-east-1"
NOT_FOUND = '{"error":"not found"}'


@dataclass
class Deployed:
    """What the module fixture created in moto."""

    elbv2: Any
    wafv2: Any
    alb_arn: str
    bare_alb_arn: str
    cert_arn: str
    tg: dict[str, str]
    acl_arn: str


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _visibility(name: str) -> dict[str, Any]:
    return {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": name}


@pytest.fixture(scope="module")
def deployed(tls_files: TlsFiles) -> Iterator[Deployed]:
    """An ALB as the program deploys it (listeners, rules, target groups, certificate, WAF) in a fresh moto server."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        common = {
            "endpoint_url": f"http://{host}:{port}",
            "region_name": REGION,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        ec2, elbv2 = boto3.client("ec2", **common), boto3.client("elbv2", **common)
        acm, wafv2 = boto3.client("acm", **common), boto3.client("wafv2", **common)

        vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
            for i, az in enumerate("ab")
        ]
        alb = elbv2.create_load_balancer(Name="fd-test-alb", Subnets=subnets, Scheme="internet-facing", Type="application")
        alb_arn = alb["LoadBalancers"][0]["LoadBalancerArn"]
        bare = elbv2.create_load_balancer(Name="fd-test-bare", Subnets=subnets, Type="application")["LoadBalancers"][0]
        cert_arn = acm.import_certificate(Certificate=tls_files.cert_pem, PrivateKey=tls_files.key_pem)["CertificateArn"]

        checks = {
            "api": ("/health", 30, 5, 2, 3, "200-399"),
            "payment": ("/payment/health", 15, 4, 3, 2, "200,204"),
            "notification": ("/healthz", 10, 2, 5, 4, "200"),
        }
        tg: dict[str, str] = {}
        for service, (path, interval, timeout, healthy, unhealthy, matcher) in checks.items():
            tg[service] = elbv2.create_target_group(
                Name=f"fd-{service}-tg",
                Protocol="HTTP",
                Port=8080,
                VpcId=vpc,
                TargetType="ip",
                HealthCheckEnabled=True,
                HealthCheckPath=path,
                HealthCheckProtocol="HTTP",
                HealthCheckIntervalSeconds=interval,
                HealthCheckTimeoutSeconds=timeout,
                HealthyThresholdCount=healthy,
                UnhealthyThresholdCount=unhealthy,
                Matcher={"HttpCode": matcher},
            )["TargetGroups"][0]["TargetGroupArn"]
        elbv2.modify_target_group_attributes(
            TargetGroupArn=tg["api"], Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "30"}]
        )

        https = elbv2.create_listener(
            LoadBalancerArn=alb_arn,
            Protocol="HTTPS",
            Port=443,
            SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
            Certificates=[{"CertificateArn": cert_arn}],
            DefaultActions=[
                {
                    "Type": "fixed-response",
                    "FixedResponseConfig": {"StatusCode": "404", "ContentType": "application/json", "MessageBody": NOT_FOUND},
                }
            ],
        )["Listeners"][0]["ListenerArn"]
        elbv2.create_listener(
            LoadBalancerArn=alb_arn,
            Protocol="HTTP",
            Port=80,
            DefaultActions=[
                {"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}
            ],
        )
        # Both ways the API accepts path patterns: the legacy Values list and PathPatternConfig.
        conditions = {
            "api": [{"Field": "path-pattern", "Values": ["/api/*"]}],
            "payment": [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/payment/*"]}}],
            "notification": [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/notification/*", "/notify?/*"]}}],
        }
        for priority, service in ((10, "api"), (20, "payment"), (30, "notification")):
            elbv2.create_rule(
                ListenerArn=https,
                Priority=priority,
                Conditions=conditions[service],
                Actions=[{"Type": "forward", "TargetGroupArn": tg[service]}],
            )
        elbv2.create_rule(
            ListenerArn=https,
            Priority=40,
            Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": ["admin.example.com"]}}],
            Actions=[{"Type": "forward", "TargetGroupArn": tg["api"]}],
        )

        rules = [
            {
                "Name": "rate-limit-per-ip",
                "Priority": 0,
                "Action": {"Block": {}},
                "Statement": {"RateBasedStatement": {"Limit": 2000, "AggregateKeyType": "IP", "EvaluationWindowSec": 120}},
                "VisibilityConfig": _visibility("rate"),
            },
            {
                "Name": "payment-body-size",
                "Priority": 5,
                "Action": {"Block": {}},
                "Statement": {
                    "AndStatement": {
                        "Statements": [
                            {
                                "ByteMatchStatement": {
                                    "SearchString": b"/payment/",
                                    "FieldToMatch": {"UriPath": {}},
                                    "TextTransformations": [{"Priority": 0, "Type": "NONE"}],
                                    "PositionalConstraint": "STARTS_WITH",
                                }
                            },
                            {
                                "SizeConstraintStatement": {
                                    "FieldToMatch": {"Body": {"OversizeHandling": "MATCH"}},
                                    "ComparisonOperator": "GT",
                                    "Size": 16384,
                                    "TextTransformations": [{"Priority": 0, "Type": "NONE"}],
                                }
                            },
                        ]
                    }
                },
                "VisibilityConfig": _visibility("payment-body"),
            },
            {
                "Name": "AWSManagedRulesCommonRuleSet",
                "Priority": 20,
                "OverrideAction": {"None": {}},
                "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": "AWSManagedRulesCommonRuleSet"}},
                "VisibilityConfig": _visibility("common"),
            },
            {
                "Name": "any-body-size",
                "Priority": 30,
                "Action": {"Block": {}},
                "Statement": {
                    "SizeConstraintStatement": {
                        "FieldToMatch": {"Body": {}},
                        "ComparisonOperator": "GT",
                        "Size": 65536,
                        "TextTransformations": [{"Priority": 0, "Type": "NONE"}],
                    }
                },
                "VisibilityConfig": _visibility("any-body"),
            },
        ]
        acl = wafv2.create_web_acl(
            Name="fd-test-waf",
            Scope="REGIONAL",
            DefaultAction={"Allow": {}},
            Rules=rules,
            VisibilityConfig=_visibility("fd-test-waf"),
        )["Summary"]
        wafv2.associate_web_acl(WebACLArn=acl["ARN"], ResourceArn=alb_arn)
        yield Deployed(elbv2, wafv2, alb_arn, bare["LoadBalancerArn"], cert_arn, tg, acl["ARN"])
    finally:
        server.stop()


def test_config_is_read_back_field_by_field(deployed: Deployed, tls_files: TlsFiles) -> None:
    asked: list[str] = []

    def cert_loader(arn: str) -> tuple[str, str]:
        asked.append(arn)
        return tls_files.cert_path, tls_files.key_path

    config = front_door_config_from_emulator(
        deployed.elbv2, deployed.wafv2, deployed.alb_arn, cert_loader=cert_loader, https_port=0
    )
    assert asked == [deployed.cert_arn]
    assert (config.cert_path, config.key_path) == (tls_files.cert_path, tls_files.key_path)
    assert (config.https_port, config.http_port, config.load_balancer_arn) == (0, None, deployed.alb_arn)
    assert config.ssl_policy == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert config.min_tls_version == "TLSv1.2"
    assert config.ciphers is not None and "ECDHE-RSA-AES128-GCM-SHA256" in config.ciphers
    assert config.default_response == FixedResponse(404, "application/json", NOT_FOUND)
    assert config.redirect == RedirectConfig(protocol="HTTPS", port="443", status=301)
    tg = deployed.tg
    assert config.rules == [
        Rule(10, ["/api/*"], tg["api"]),
        Rule(20, ["/payment/*"], tg["payment"]),
        Rule(30, ["/notification/*", "/notify?/*"], tg["notification"]),
    ]
    assert config.not_emulated == ["listener rule priority 40: condition 'host-header' is not emulated (rule skipped)"]

    groups = config.target_groups
    assert set(groups) == set(tg.values())
    assert (groups[tg["api"]].name, groups[tg["api"]].port, groups[tg["api"]].protocol) == ("fd-api-tg", 8080, "HTTP")
    assert groups[tg["api"]].health == HealthCheck("/health", 30.0, 5.0, 2, 3, "200-399")
    assert groups[tg["payment"]].health == HealthCheck("/payment/health", 15.0, 4.0, 3, 2, "200,204")
    assert groups[tg["notification"]].health == HealthCheck("/healthz", 10.0, 2.0, 5, 4, "200")
    assert groups[tg["api"]].deregistration_delay_s == 30.0
    assert groups[tg["payment"]].deregistration_delay_s == 300.0  # the ELB default

    waf = config.waf
    assert waf is not None and (waf.name, waf.arn, waf.default_action) == ("fd-test-waf", deployed.acl_arn, "allow")
    assert waf.rate_rules == [RateRule("rate-limit-per-ip", 0, 2000, 120.0, "block")]
    assert waf.body_size_rules == [
        BodySizeRule("payment-body-size", 5, 16384, "/payment/", "block"),
        BodySizeRule("any-body-size", 30, 65536, None, "block"),
    ]
    assert waf.not_emulated == [
        NotEmulatedRule(
            "AWSManagedRulesCommonRuleSet", 20, "managed rule group AWS/AWSManagedRulesCommonRuleSet cannot be emulated locally"
        )
    ]
    assert "WAF rule 'AWSManagedRulesCommonRuleSet' (priority 20)" in config.not_emulated_summary()[1]


def test_load_balancer_without_web_acl_or_https_listener(deployed: Deployed, tls_files: TlsFiles) -> None:
    with pytest.raises(ValueError, match="no HTTPS listener"):
        front_door_config_from_emulator(
            deployed.elbv2,
            deployed.wafv2,
            deployed.bare_alb_arn,
            cert_loader=lambda _arn: (tls_files.cert_path, tls_files.key_path),
        )
    cert = deployed.elbv2.describe_listeners(LoadBalancerArn=deployed.alb_arn)["Listeners"]
    cert_arn = next(li for li in cert if li["Protocol"] == "HTTPS")["Certificates"][0]["CertificateArn"]
    listener = deployed.elbv2.create_listener(
        LoadBalancerArn=deployed.bare_alb_arn,
        Protocol="HTTPS",
        Port=443,
        SslPolicy="ELBSecurityPolicy-TLS13-1-3-2021-06",
        Certificates=[{"CertificateArn": cert_arn}],
        DefaultActions=[{"Type": "forward", "TargetGroupArn": deployed.tg["api"]}],
    )["Listeners"][0]["ListenerArn"]
    try:
        config = front_door_config_from_emulator(
            deployed.elbv2,
            deployed.wafv2,
            deployed.bare_alb_arn,
            cert_loader=lambda _arn: (tls_files.cert_path, tls_files.key_path),
        )
    finally:
        deployed.elbv2.delete_listener(ListenerArn=listener)
    assert config.waf is None and config.redirect is None
    assert config.min_tls_version == "TLSv1.3"
    assert config.rules == [Rule(DEFAULT_ACTION_PRIORITY, ["*"], deployed.tg["api"])]


def test_moto_target_source_lists_registered_targets(deployed: Deployed) -> None:
    elbv2, arn = deployed.elbv2, deployed.tg["notification"]
    source = moto_target_source(elbv2)
    assert source(arn) == []
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": "127.0.0.1", "Port": 18001}])
    try:
        assert source(arn) == [Target("127.0.0.1", 18001)]
        # moto 5.2.5 keys a group's targets by Id: a second port on the same IP replaces the first.
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": "127.0.0.1", "Port": 18002}])
        assert source(arn) == [Target("127.0.0.1", 18002)]
    finally:
        elbv2.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": "127.0.0.1", "Port": 18002}])
    assert source(arn) == []

    # The workaround: one loopback Id per task, mapped back to 127.0.0.1 by ``resolve``.
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": "127.0.0.2", "Port": 18003}, {"Id": "127.0.0.3", "Port": 18004}])
    try:
        mapped = moto_target_source(elbv2, resolve=lambda _id, port: Target("127.0.0.1", port))
        assert sorted(mapped(arn)) == [Target("127.0.0.1", 18003), Target("127.0.0.1", 18004)]
    finally:
        elbv2.deregister_targets(
            TargetGroupArn=arn, Targets=[{"Id": "127.0.0.2", "Port": 18003}, {"Id": "127.0.0.3", "Port": 18004}]
        )


def test_front_door_serves_the_deployed_configuration_end_to_end(
    deployed: Deployed, tls_files: TlsFiles, upstreams: UpstreamFactory
) -> None:
    api = upstreams("api")
    elbv2, arn = deployed.elbv2, deployed.tg["api"]
    config = front_door_config_from_emulator(
        elbv2, deployed.wafv2, deployed.alb_arn, cert_loader=lambda _arn: (tls_files.cert_path, tls_files.key_path)
    ).with_health_check_interval(0.05)
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": "127.0.0.1", "Port": api.port}])
    door = FrontDoor(config, moto_target_source(elbv2), poll_interval_s=0.1)
    try:
        door.start()
        wait_until(
            lambda: (
                api.target in door.pools[arn].snapshot() and door.pools[arn].snapshot()[api.target].state is TargetState.HEALTHY
            )
        )
        with httpx.Client(verify=client_context(tls_files), trust_env=False) as client:
            response = client.get(f"{door.https_url}/api/v1/ping")
            assert response.status_code == 200 and response.json()["identity"] == "api"
            assert client.get(f"{door.https_url}/payment/v1/x").status_code == 503  # nothing registered there
            assert client.get(f"{door.https_url}/other").text == NOT_FOUND
            big = client.post(f"{door.https_url}/payment/v1/x", content=b"x" * 16385)
            assert big.status_code == 403  # the deployed WAF body-size rule on /payment/
        with httpx.Client(trust_env=False) as plain:
            assert (
                plain.get(f"{door.http_url}/api/v1/ping").headers["location"]
                == f"https://127.0.0.1:{door.https_port}/api/v1/ping"
            )
        # Deregistration in the emulator reaches the front door through the poll.
        elbv2.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": "127.0.0.1", "Port": api.port}])
        wait_until(lambda: api.target not in door.pools[arn].snapshot())
    finally:
        door.stop()
        with contextlib.suppress(Exception):
            elbv2.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": "127.0.0.1", "Port": api.port}])


def test_policy_mapping_search_string_forms_and_unsupported_waf_statements() -> None:
    assert tls_settings_for_policy("ELBSecurityPolicy-TLS13-1-2-2021-06")[:1] == ("TLSv1.2",)
    assert tls_settings_for_policy("ELBSecurityPolicy-TLS13-1-2-Res-2021-06")[0] == "TLSv1.2"
    assert tls_settings_for_policy("ELBSecurityPolicy-TLS13-1-3-2021-06") == ("TLSv1.3", None, True)
    assert tls_settings_for_policy("ELBSecurityPolicy-TLS-1-2-Ext-2018-06")[0] == "TLSv1.2"
    assert tls_settings_for_policy("SomethingNew") == ("TLSv1.2", None, False)

    assert search_string(b"/payment/") == "/payment/"
    assert search_string(base64.b64encode(b"/payment/")) == "/payment/"
    assert search_string("L3BheW1lbnQv") == "/payment/"
    assert search_string("/api/") == "/api/"
    assert search_string(b"admin") == "admin"  # not a path and not base64 of one: as is

    acl = {
        "Name": "acl",
        "ARN": "arn:acl",
        "DefaultAction": {"Block": {}},
        "Rules": [
            {
                "Name": "fwd",
                "Priority": 1,
                "Action": {"Block": {}},
                "Statement": {"RateBasedStatement": {"Limit": 10, "AggregateKeyType": "FORWARDED_IP"}},
            },
            {"Name": "count", "Priority": 2, "Action": {"Count": {}}, "Statement": {"RateBasedStatement": {"Limit": 10}}},
            {"Name": "geo", "Priority": 3, "Action": {"Block": {}}, "Statement": {"GeoMatchStatement": {"CountryCodes": ["XX"]}}},
            {"Name": "captcha", "Priority": 4, "Action": {"Captcha": {}}, "Statement": {"RateBasedStatement": {"Limit": 10}}},
            {
                "Name": "lower",
                "Priority": 5,
                "Action": {"Block": {}},
                "Statement": {
                    "AndStatement": {
                        "Statements": [
                            {"SizeConstraintStatement": {"FieldToMatch": {"Body": {}}, "ComparisonOperator": "GT", "Size": 10}},
                            {
                                "ByteMatchStatement": {
                                    "SearchString": b"/pay/",
                                    "FieldToMatch": {"UriPath": {}},
                                    "PositionalConstraint": "STARTS_WITH",
                                    "TextTransformations": [{"Priority": 0, "Type": "LOWERCASE"}],
                                }
                            },
                        ]
                    }
                },
            },
        ],
    }
    waf = waf_config_from_web_acl(acl)
    assert waf.default_action == "block"
    assert waf.rate_rules == [RateRule("count", 2, 10, 300.0, "count")]
    assert waf.body_size_rules == [BodySizeRule("lower", 5, 10, "/pay/", "block", lowercase_path=True)]
    assert [(r.name, r.reason) for r in waf.not_emulated] == [
        ("fwd", "rate-based rule aggregating by FORWARDED_IP is not emulated (only IP)"),
        ("geo", "GeoMatchStatement is not emulated"),
        ("captcha", "action ['Captcha'] is not emulated (only Block, Count, Allow)"),
    ]
