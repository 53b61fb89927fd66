"""aws:lb -- Elastic Load Balancing v2: the ALB, its target groups, listeners and listener rules."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from tools.emulator.engine import Aws, Request, ResourceHandler
from tools.emulator.handlers.translate import api_params, delete_call, described, drop_none, fields, none_when, read_by, tag_list

# Rules without an explicit priority take the next free one: serialise the read-then-create.
_PRIORITY_LOCK = threading.Lock()


def _bool(value: Any) -> str:
    return "true" if value else "false"


def _modify_attributes(modify: Callable[..., Any], target: Mapping[str, str], pairs: Mapping[str, Any]) -> None:
    """``modify`` (Modify{LoadBalancer,TargetGroup}Attributes) of ``target`` with the attributes of ``pairs`` that are set.

    The API takes [{Key, Value}] with string values; unset (None) pairs are left out, and with none set nothing is called.
    """
    attributes = [{"Key": k, "Value": _bool(v) if isinstance(v, bool) else str(v)} for k, v in pairs.items() if v is not None]
    if attributes:
        modify(**target, Attributes=attributes)


def _load_balancer_attributes(elb: Any, arn: str) -> dict[str, str]:
    """DescribeLoadBalancerAttributes, as a map."""
    return {a["Key"]: a["Value"] for a in elb.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]}


# --- aws:lb/loadBalancer:LoadBalancer --------------------------------------------------------------------


def _load_balancer(aws: Aws, arn: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeLoadBalancers + DescribeLoadBalancerAttributes."""
    elb = aws.client("elbv2")
    found = elb.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"][0]
    attrs = _load_balancer_attributes(elb, arn)
    computed: dict[str, Any] = {
        "name": found["LoadBalancerName"],
        "arn": arn,
        "arnSuffix": arn.split(":loadbalancer/", 1)[1],
        "dnsName": found["DNSName"],
        "zoneId": found.get("CanonicalHostedZoneId"),
        "vpcId": found.get("VpcId"),
        "internal": found.get("Scheme") == "internal",
        "loadBalancerType": found.get("Type"),
        "ipAddressType": found.get("IpAddressType"),
        "securityGroups": found.get("SecurityGroups", []),
        "subnets": [z["SubnetId"] for z in found.get("AvailabilityZones", [])],
        "enableDeletionProtection": attrs.get("deletion_protection.enabled") == "true",
    }
    if inputs.get("accessLogs"):
        computed["accessLogs"] = {
            "bucket": attrs.get("access_logs.s3.bucket", ""),
            "prefix": attrs.get("access_logs.s3.prefix", ""),
            "enabled": attrs.get("access_logs.s3.enabled") == "true",
        }
    if "routing.http.drop_invalid_header_fields.enabled" in attrs:
        computed["dropInvalidHeaderFields"] = attrs["routing.http.drop_invalid_header_fields.enabled"] == "true"
    return computed


def create_load_balancer(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:lb/loadBalancer:LoadBalancer -> CreateLoadBalancer + ModifyLoadBalancerAttributes, read back with Describe*."""
    elb = aws.client("elbv2")
    name = req.physical_name("name", 32)
    mappings = [
        drop_none({"SubnetId": m.get("subnetId"), "AllocationId": m.get("allocationId")}) for m in req.get("subnetMappings", [])
    ]
    arn = elb.create_load_balancer(
        **drop_none(
            {
                "Name": name,
                "Subnets": list(req.get("subnets", [])) or None,
                "SubnetMappings": mappings or None,
                "SecurityGroups": list(req.get("securityGroups", [])) or None,
                "Scheme": "internal" if req.get("internal") else "internet-facing",
                "Type": req.get("loadBalancerType", "application"),
                "IpAddressType": req.get("ipAddressType"),
                "Tags": tag_list(req.get("tags")) or None,
            }
        )
    )["LoadBalancers"][0]["LoadBalancerArn"]
    logs = req.get("accessLogs") or {}
    connection_logs = req.get("connectionLogs") or {}
    _modify_attributes(
        elb.modify_load_balancer_attributes,
        {"LoadBalancerArn": arn},
        {
            "deletion_protection.enabled": req.get("enableDeletionProtection"),
            "routing.http2.enabled": req.get("enableHttp2"),
            "idle_timeout.timeout_seconds": req.get("idleTimeout"),
            "routing.http.drop_invalid_header_fields.enabled": req.get("dropInvalidHeaderFields"),
            "routing.http.desync_mitigation_mode": req.get("desyncMitigationMode"),
            "load_balancing.cross_zone.enabled": req.get("enableCrossZoneLoadBalancing"),
            "waf.fail_open.enabled": req.get("enableWafFailOpen"),
            "routing.http.preserve_host_header.enabled": req.get("preserveHostHeader"),
            "routing.http.xff_header_processing.mode": req.get("xffHeaderProcessingMode"),
            "client_keep_alive.seconds": req.get("clientKeepAlive"),
            "access_logs.s3.enabled": logs.get("enabled", bool(logs.get("bucket"))) if logs else None,
            "access_logs.s3.bucket": logs.get("bucket"),
            "access_logs.s3.prefix": logs.get("prefix"),
            "connection_logs.s3.enabled": connection_logs.get("enabled") if connection_logs else None,
            "connection_logs.s3.bucket": connection_logs.get("bucket"),
            "connection_logs.s3.prefix": connection_logs.get("prefix"),
        },
    )
    return described(aws, req, arn, _load_balancer)


read_load_balancer = read_by(_load_balancer, "LoadBalancerNotFound")


@none_when("LoadBalancerNotFound")
def delete_load_balancer(aws: Aws, arn: str, _recorded: Mapping[str, Any]) -> None:
    """DeleteLoadBalancer (its listeners and rules go with it).

    Deletion protection is switched off first (ModifyLoadBalancerAttributes), as an operator does
    before a destroy: AWS refuses to delete a protected load balancer, and deleting is the decision.
    """
    elb = aws.client("elbv2")
    if _load_balancer_attributes(elb, arn).get("deletion_protection.enabled") == "true":
        _modify_attributes(elb.modify_load_balancer_attributes, {"LoadBalancerArn": arn}, {"deletion_protection.enabled": False})
    elb.delete_load_balancer(LoadBalancerArn=arn)


# --- aws:lb/targetGroup:TargetGroup ----------------------------------------------------------------------


def _target_group(aws: Aws, arn: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeTargetGroups."""
    found = aws.client("elbv2").describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]
    return {
        "name": found["TargetGroupName"],
        "arn": arn,
        "arnSuffix": arn.split(":", 5)[5],
        **fields(found, "Port", "Protocol", "VpcId", "TargetType"),
        "loadBalancerArns": found.get("LoadBalancerArns", []),
        "healthCheck": drop_none(
            {
                "enabled": found.get("HealthCheckEnabled"),
                "path": found.get("HealthCheckPath"),
                "port": found.get("HealthCheckPort"),
                "protocol": found.get("HealthCheckProtocol"),
                "interval": found.get("HealthCheckIntervalSeconds"),
                "timeout": found.get("HealthCheckTimeoutSeconds"),
                "healthyThreshold": found.get("HealthyThresholdCount"),
                "unhealthyThreshold": found.get("UnhealthyThresholdCount"),
                "matcher": (found.get("Matcher") or {}).get("HttpCode"),
            }
        ),
    }


def create_target_group(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:lb/targetGroup:TargetGroup -> CreateTargetGroup + ModifyTargetGroupAttributes."""
    elb = aws.client("elbv2")
    name = req.physical_name("name", 32)
    check = req.get("healthCheck") or {}
    matcher = check.get("matcher")
    arn = elb.create_target_group(
        **drop_none(
            {
                "Name": name,
                **api_params(req.inputs, "protocol", "protocolVersion", "port", "vpcId", "targetType", "ipAddressType"),
                "HealthCheckEnabled": check.get("enabled"),
                "HealthCheckPath": check.get("path"),
                "HealthCheckPort": str(check["port"]) if check.get("port") else None,
                "HealthCheckProtocol": check.get("protocol"),
                "HealthCheckIntervalSeconds": check.get("interval"),
                "HealthCheckTimeoutSeconds": check.get("timeout"),
                "HealthyThresholdCount": check.get("healthyThreshold"),
                "UnhealthyThresholdCount": check.get("unhealthyThreshold"),
                "Matcher": {"HttpCode": matcher} if matcher else None,
                "Tags": tag_list(req.get("tags")) or None,
            }
        )
    )["TargetGroups"][0]["TargetGroupArn"]
    stickiness = req.get("stickiness") or {}
    _modify_attributes(
        elb.modify_target_group_attributes,
        {"TargetGroupArn": arn},
        {
            "deregistration_delay.timeout_seconds": req.get("deregistrationDelay"),
            "slow_start.duration_seconds": req.get("slowStart"),
            "load_balancing.algorithm.type": req.get("loadBalancingAlgorithmType"),
            "stickiness.enabled": stickiness.get("enabled") if stickiness else None,
            "stickiness.type": stickiness.get("type"),
            "stickiness.lb_cookie.duration_seconds": stickiness.get("cookieDuration"),
        },
    )
    return described(aws, req, arn, _target_group)


read_target_group = read_by(_target_group, "TargetGroupNotFound")
# AWS refuses while a listener or rule still forwards to it; those go first.
delete_target_group = delete_call("elbv2", "delete_target_group", "TargetGroupArn", "TargetGroupNotFound")


# --- actions and conditions shared by listeners and rules -------------------------------------------------


def _action(action: Mapping[str, Any]) -> dict[str, Any]:
    """A listener/rule ``action`` block -> the API's Action."""
    redirect = action.get("redirect")
    fixed = action.get("fixedResponse")
    forward = action.get("forward")
    return drop_none(
        {
            **api_params(action, "type", "order", "targetGroupArn"),
            "RedirectConfig": drop_none(
                {
                    **api_params(redirect, "protocol", "host", "path", "query", "statusCode"),
                    "Port": str(redirect["port"]) if redirect.get("port") else None,
                }
            )
            if redirect
            else None,
            "FixedResponseConfig": drop_none(
                {
                    "ContentType": fixed.get("contentType"),
                    "MessageBody": fixed.get("messageBody"),
                    "StatusCode": str(fixed.get("statusCode")),
                }
            )
            if fixed
            else None,
            "ForwardConfig": drop_none(
                {
                    "TargetGroups": [
                        drop_none({"TargetGroupArn": t["arn"], "Weight": t.get("weight")})
                        for t in forward.get("targetGroups", [])
                    ],
                    "TargetGroupStickinessConfig": drop_none(
                        {
                            "Enabled": (forward.get("stickiness") or {}).get("enabled"),
                            "DurationSeconds": (forward.get("stickiness") or {}).get("duration"),
                        }
                    )
                    or None,
                }
            )
            if forward
            else None,
        }
    )


def _actions_state(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Actions read back -> the provider's action blocks (the parts the program can read)."""
    out = []
    for a in actions:
        item: dict[str, Any] = {"type": a["Type"]}
        if a.get("TargetGroupArn"):
            item["targetGroupArn"] = a["TargetGroupArn"]
        if a.get("RedirectConfig"):
            r = a["RedirectConfig"]
            item["redirect"] = drop_none(
                {
                    "protocol": r.get("Protocol"),
                    "port": r.get("Port"),
                    "statusCode": r.get("StatusCode"),
                    "host": r.get("Host"),
                    "path": r.get("Path"),
                    "query": r.get("Query"),
                }
            )
        if a.get("FixedResponseConfig"):
            f = a["FixedResponseConfig"]
            item["fixedResponse"] = drop_none(
                {"contentType": f.get("ContentType"), "messageBody": f.get("MessageBody"), "statusCode": f.get("StatusCode")}
            )
        if a.get("Order") is not None:
            item["order"] = a["Order"]
        out.append(item)
    return out


_CONDITIONS = {
    "hostHeader": ("host-header", "HostHeaderConfig"),
    "pathPattern": ("path-pattern", "PathPatternConfig"),
    "httpRequestMethod": ("http-request-method", "HttpRequestMethodConfig"),
    "sourceIp": ("source-ip", "SourceIpConfig"),
}


def _condition(condition: Mapping[str, Any]) -> dict[str, Any]:
    """A rule ``conditions`` block -> the API's RuleCondition."""
    for key, (field, config) in _CONDITIONS.items():
        if condition.get(key):
            return {"Field": field, config: {"Values": list(condition[key]["values"])}}
    if condition.get("httpHeader"):
        header = condition["httpHeader"]
        return {
            "Field": "http-header",
            "HttpHeaderConfig": {"HttpHeaderName": header["httpHeaderName"], "Values": list(header["values"])},
        }
    if condition.get("queryStrings"):
        return {
            "Field": "query-string",
            "QueryStringConfig": {
                "Values": [drop_none({"Key": q.get("key"), "Value": q["value"]}) for q in condition["queryStrings"]]
            },
        }
    raise RuntimeError(f"CreateRule: unsupported condition {condition!r}")


# --- aws:lb/listener:Listener ----------------------------------------------------------------------------


def _listener(aws: Aws, arn: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeListeners."""
    found = aws.client("elbv2").describe_listeners(ListenerArns=[arn])["Listeners"][0]
    certificates = found.get("Certificates") or []
    return {
        "arn": arn,
        **fields(found, "Port", "Protocol", "SslPolicy"),
        "certificateArn": certificates[0]["CertificateArn"] if certificates else None,
        "defaultActions": _actions_state(found.get("DefaultActions", [])),
    }


def create_listener(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:lb/listener:Listener -> CreateListener, read back with DescribeListeners."""
    arn = aws.client("elbv2").create_listener(
        **drop_none(
            {
                **api_params(req.inputs, "loadBalancerArn", "protocol", "port", "sslPolicy"),
                "Certificates": [{"CertificateArn": req.get("certificateArn")}] if req.get("certificateArn") else None,
                "AlpnPolicy": [req.get("alpnPolicy")] if req.get("alpnPolicy") else None,
                "DefaultActions": [_action(a) for a in req.get("defaultActions", [])],
                "Tags": tag_list(req.get("tags")) or None,
            }
        )
    )["Listeners"][0]["ListenerArn"]
    return described(aws, req, arn, _listener)


read_listener = read_by(_listener, "ListenerNotFound")
# Its rules go with it.
delete_listener = delete_call("elbv2", "delete_listener", "ListenerArn", "ListenerNotFound")


# --- aws:lb/listenerRule:ListenerRule --------------------------------------------------------------------


def _listener_rule(aws: Aws, arn: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeRules."""
    found = aws.client("elbv2").describe_rules(RuleArns=[arn])["Rules"][0]
    return {"arn": arn, "priority": int(found["Priority"]), "actions": _actions_state(found.get("Actions", []))}


def create_listener_rule(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:lb/listenerRule:ListenerRule -> CreateRule, read back with DescribeRules."""
    elb = aws.client("elbv2")
    priority = req.get("priority")
    if priority is not None:
        arn = _create_rule(elb, req, priority)
    else:
        with _PRIORITY_LOCK:
            # The provider picks the next free priority on the listener when none is given.
            rules = elb.describe_rules(ListenerArn=req.get("listenerArn"))["Rules"]
            taken = [int(r["Priority"]) for r in rules if r["Priority"].isdigit()]
            arn = _create_rule(elb, req, max(taken, default=0) + 1)
    return described(aws, req, arn, _listener_rule)


def _create_rule(elb: Any, req: Request, priority: int) -> str:
    """CreateRule with the given priority; returns the rule ARN."""
    arn: str = elb.create_rule(
        **drop_none(
            {
                "ListenerArn": req.get("listenerArn"),
                "Priority": priority,
                "Conditions": [_condition(c) for c in req.get("conditions", [])],
                "Actions": [_action(a) for a in req.get("actions", [])],
                "Tags": tag_list(req.get("tags")) or None,
            }
        )
    )["Rules"][0]["RuleArn"]
    return arn


read_listener_rule = read_by(_listener_rule, "RuleNotFound", "ListenerNotFound")
delete_listener_rule = delete_call("elbv2", "delete_rule", "RuleArn", "RuleNotFound", "ListenerNotFound")


RESOURCES = (
    ResourceHandler("aws:lb/loadBalancer:LoadBalancer", create_load_balancer, read_load_balancer, delete_load_balancer),
    ResourceHandler("aws:lb/targetGroup:TargetGroup", create_target_group, read_target_group, delete_target_group),
    ResourceHandler("aws:lb/listener:Listener", create_listener, read_listener, delete_listener),
    ResourceHandler("aws:lb/listenerRule:ListenerRule", create_listener_rule, read_listener_rule, delete_listener_rule),
)
