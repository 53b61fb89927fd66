"""Build the front door's configuration from what was deployed, read back from the AWS API emulator.

:func:`front_door_config_from_emulator` reads an Application Load Balancer's listeners, listener rules,
target groups and associated WAFv2 web ACL through boto3 (clients for the environment's account in moto)
and returns a :class:`~tools.localplane.frontdoor.FrontDoorConfig`; :func:`moto_target_source` turns the
target groups' registrations into the front door's ``target_source``.

What cannot be emulated (AWS managed WAF rule groups, listener rules with conditions other than
path patterns, ...) is not silently dropped: it is listed in ``config.not_emulated`` and
``config.waf.not_emulated`` (see ``FrontDoorConfig.not_emulated_summary()``) for the caller to print.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from typing import Any

from tools.localplane.frontdoor import (
    BodySizeRule,
    FixedResponse,
    FrontDoorConfig,
    NotEmulatedRule,
    RateRule,
    RedirectConfig,
    Rule,
    TargetGroupConfig,
    TargetSource,
    WafConfig,
)
from tools.localplane.upstreams import HealthCheck, Target

#: ``cert_loader(certificate_arn) -> (cert_pem_path, key_pem_path)``: ACM never returns private keys.
CertLoader = Callable[[str], tuple[str, str]]

#: The priority the front door gives a listener's default ``forward`` action (ALB rule priorities end at 50000).
DEFAULT_ACTION_PRIORITY = 50001

#: TLS 1.2 cipher suites (OpenSSL names) of the ELB policies the program uses, from the ELB security-policy
#: table. Policies not listed keep OpenSSL's defaults; the minimum TLS version is honoured for all.
POLICY_CIPHERS: dict[str, str] = {
    "ELBSecurityPolicy-TLS13-1-2-2021-06": ":".join(
        [
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-RSA-AES128-GCM-SHA256",
            "ECDHE-ECDSA-AES128-SHA256",
            "ECDHE-RSA-AES128-SHA256",
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-ECDSA-AES256-SHA384",
            "ECDHE-RSA-AES256-SHA384",
        ]
    ),
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06": ":".join(
        [
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-RSA-AES128-GCM-SHA256",
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-RSA-AES256-GCM-SHA384",
        ]
    ),
}

# (marker in the policy name, minimum TLS version), most specific first.
_POLICY_MINIMUMS: tuple[tuple[str, str], ...] = (
    ("TLS13-1-3", "TLSv1.3"),
    ("TLS13-1-2", "TLSv1.2"),
    ("TLS-1-2", "TLSv1.2"),
    ("FS-1-2", "TLSv1.2"),
    ("TLS13-1-1", "TLSv1.1"),
    ("TLS-1-1", "TLSv1.1"),
    ("FS-1-1", "TLSv1.1"),
    ("TLS13-1-0", "TLSv1"),
    ("ELBSecurityPolicy-2016-08", "TLSv1"),
    ("ELBSecurityPolicy-2015-05", "TLSv1"),
    ("ELBSecurityPolicy-FS-2018-06", "TLSv1"),
)


def tls_settings_for_policy(policy: str | None) -> tuple[str, str | None, bool]:
    """ELB security policy -> ``(minimum TLS version, TLS 1.2 ciphers or None, known)``.

    ``...TLS13-1-2...`` -> TLS 1.2, ``...TLS13-1-3...`` -> TLS 1.3, and so on. An unknown policy gets
    TLS 1.2 (never weaker than the program deploys) with ``known`` False, for the caller to report.
    """
    if policy:
        for marker, minimum in _POLICY_MINIMUMS:
            if marker in policy:
                return minimum, POLICY_CIPHERS.get(policy), True
    return "TLSv1.2", None, False


def front_door_config_from_emulator(
    elbv2: Any,
    wafv2: Any,
    load_balancer_arn: str,
    *,
    cert_loader: CertLoader,
    https_port: int | None = None,
    http_port: int | None = None,
    access_log_path: str | None = None,
) -> FrontDoorConfig:
    """The :class:`FrontDoorConfig` of the load balancer ``load_balancer_arn`` as deployed in the emulator.

    ``elbv2``/``wafv2`` are boto3 clients (``wafv2`` may be None: no WAF lookup). Requires an HTTPS listener.
    """
    listeners = list(_paginate(elbv2, "describe_listeners", "Listeners", LoadBalancerArn=load_balancer_arn))
    https = [li for li in listeners if li.get("Protocol") == "HTTPS"]
    if not https:
        raise ValueError(f"{load_balancer_arn} has no HTTPS listener")
    https.sort(key=lambda li: (li.get("Port") != 443, li.get("Port", 0)))
    listener = https[0]
    not_emulated = [
        f"HTTPS listener on port {li.get('Port')} (only the one on {listener.get('Port')} is served)" for li in https[1:]
    ]

    certificates = listener.get("Certificates") or []
    if not certificates:
        raise ValueError(f"HTTPS listener {listener['ListenerArn']} has no certificate")
    certificate = next((c for c in certificates if c.get("IsDefault")), certificates[0])
    cert_path, key_path = cert_loader(certificate["CertificateArn"])

    policy = listener.get("SslPolicy")
    min_tls, ciphers, known = tls_settings_for_policy(policy)
    if not known:
        not_emulated.append(f"SSL policy {policy!r} is not known: serving with a TLS 1.2 minimum and OpenSSL's ciphers")

    rules: list[Rule] = []
    default_response = FixedResponse()
    for action in _ordered(listener.get("DefaultActions", [])):
        kind = action.get("Type")
        if kind == "fixed-response":
            fixed = action.get("FixedResponseConfig") or {}
            default_response = FixedResponse(
                status=int(fixed.get("StatusCode", "404")),
                content_type=fixed.get("ContentType") or "text/plain",
                body=fixed.get("MessageBody") or "",
            )
            break
        if kind == "forward":
            rules.append(Rule(DEFAULT_ACTION_PRIORITY, ["*"], _forward_target(action)))
            break
        not_emulated.append(f"HTTPS listener default action {kind!r} (answering the front door's 404 instead)")
        break

    for rule in _paginate(elbv2, "describe_rules", "Rules", ListenerArn=listener["ListenerArn"]):
        if rule.get("IsDefault") or rule.get("Priority") == "default":
            continue  # the listener's default actions, read above
        parsed = _rule(rule)
        if isinstance(parsed, str):
            not_emulated.append(parsed)
        else:
            rules.append(parsed)
    rules.sort(key=lambda r: r.priority)

    redirect: RedirectConfig | None = None
    for http in (li for li in listeners if li.get("Protocol") == "HTTP"):
        actions = _ordered(http.get("DefaultActions", []))
        if actions and actions[0].get("Type") == "redirect":
            config = actions[0].get("RedirectConfig") or {}
            redirect = RedirectConfig(
                protocol=config.get("Protocol", "#{protocol}"),
                port=str(config.get("Port", "#{port}")),
                status=int(str(config.get("StatusCode", "HTTP_301")).removeprefix("HTTP_")),
                host=config.get("Host", "#{host}"),
                path=config.get("Path", "/#{path}"),
                query=config.get("Query", "#{query}"),
            )
        else:
            not_emulated.append(f"HTTP listener on port {http.get('Port')}: only a redirect default action is emulated")

    target_groups = _target_groups(elbv2, sorted({r.target_group_arn for r in rules}))
    waf = _waf_for(wafv2, load_balancer_arn) if wafv2 is not None else None
    return FrontDoorConfig(
        cert_path=cert_path,
        key_path=key_path,
        https_port=https_port,
        http_port=http_port,
        min_tls_version=min_tls,
        ciphers=ciphers,
        ssl_policy=policy,
        rules=rules,
        default_response=default_response,
        target_groups=target_groups,
        redirect=redirect,
        waf=waf,
        access_log_path=access_log_path,
        load_balancer_arn=load_balancer_arn,
        name=load_balancer_arn.rsplit("/", 2)[-2] if load_balancer_arn.count("/") >= 2 else "frontdoor",
        not_emulated=not_emulated,
    )


def moto_target_source(elbv2: Any, *, resolve: Callable[[str, int], Target] | None = None) -> TargetSource:
    """A ``target_source`` reading registrations with ``DescribeTargetHealth``.

    Only membership is taken from the emulator: whether a target is healthy is decided by the front
    door's own health checks, as on the ALB (moto does not check anything). Targets reported
    ``draining`` are already deregistered. ``resolve(target_id, port)`` maps a registration to the
    address to connect to (default: ``Target(target_id, port)``).

    Caveat (moto 5.2.5): a target group keeps its targets in a dict keyed by ``Id`` alone, so registering
    ``127.0.0.1:8001`` and ``127.0.0.1:8002`` in the same group leaves only the last one. Tasks of one service
    need distinct ``Id`` values (e.g. ``127.0.0.2``, ``127.0.0.3``, ... with ``resolve`` mapping them back to
    ``127.0.0.1:<port>``) to coexist in one target group.
    """
    make = resolve or (lambda target_id, port: Target(target_id, port))

    def source(target_group_arn: str) -> list[Target]:
        descriptions = elbv2.describe_target_health(TargetGroupArn=target_group_arn)["TargetHealthDescriptions"]
        targets = []
        for description in descriptions:
            if (description.get("TargetHealth") or {}).get("State") == "draining":
                continue
            target = description["Target"]
            if "Port" not in target:
                continue  # ip targets are always registered with a port by the local task runner
            targets.append(make(target["Id"], int(target["Port"])))
        return targets

    return source


# --- listener rules -----------------------------------------------------------------------------------------


def _paginate(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def _ordered(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Actions in evaluation order (``Order``; without it, as listed)."""
    return sorted(actions, key=lambda a: a.get("Order", 0))


def _forward_target(action: dict[str, Any]) -> str:
    """The target group of a forward action (weighted forwarding is approximated by its heaviest group)."""
    if action.get("TargetGroupArn"):
        return str(action["TargetGroupArn"])
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
    if not groups:
        raise ValueError(f"forward action without a target group: {action}")
    return str(max(groups, key=lambda g: g.get("Weight", 1))["TargetGroupArn"])


def _rule(rule: dict[str, Any]) -> Rule | str:
    """A listener rule -> :class:`Rule`, or a line for ``not_emulated`` explaining why it is not served."""
    priority = int(rule["Priority"])
    patterns: list[str] = []
    for condition in rule.get("Conditions", []):
        field = condition.get("Field")
        if field != "path-pattern":
            return f"listener rule priority {priority}: condition {field!r} is not emulated (rule skipped)"
        # The API returns the values in the legacy ``Values`` list, in ``PathPatternConfig``, or both.
        for value in [*condition.get("Values", []), *(condition.get("PathPatternConfig") or {}).get("Values", [])]:
            if value not in patterns:
                patterns.append(value)
    if not patterns:
        return f"listener rule priority {priority}: no path-pattern condition (rule skipped)"
    actions = _ordered(rule.get("Actions", []))
    if not actions or actions[0].get("Type") != "forward":
        kind = actions[0].get("Type") if actions else None
        return f"listener rule priority {priority}: action {kind!r} is not emulated (rule skipped)"
    return Rule(priority, patterns, _forward_target(actions[0]))


def _target_groups(elbv2: Any, arns: list[str]) -> dict[str, TargetGroupConfig]:
    groups: dict[str, TargetGroupConfig] = {}
    for start in range(0, len(arns), 20):
        for tg in _paginate(elbv2, "describe_target_groups", "TargetGroups", TargetGroupArns=arns[start : start + 20]):
            health = None
            if tg.get("HealthCheckEnabled", True):
                health = HealthCheck(
                    path=tg.get("HealthCheckPath") or "/",
                    interval_s=float(tg.get("HealthCheckIntervalSeconds", 30)),
                    timeout_s=float(tg.get("HealthCheckTimeoutSeconds", 5)),
                    healthy_threshold=int(tg.get("HealthyThresholdCount", 5)),
                    unhealthy_threshold=int(tg.get("UnhealthyThresholdCount", 2)),
                    matcher=(tg.get("Matcher") or {}).get("HttpCode") or "200",
                )
            attributes = {
                a["Key"]: a["Value"]
                for a in elbv2.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"]).get("Attributes", [])
            }
            groups[tg["TargetGroupArn"]] = TargetGroupConfig(
                name=tg["TargetGroupName"],
                health=health,
                port=int(tg.get("Port") or 0),
                protocol=tg.get("Protocol") or "HTTP",
                deregistration_delay_s=float(attributes.get("deregistration_delay.timeout_seconds", 300)),
            )
    missing = set(arns) - set(groups)
    if missing:
        raise ValueError(f"listener rules forward to target groups that do not exist: {sorted(missing)}")
    return groups


# --- WAF ----------------------------------------------------------------------------------------------------


def _waf_for(wafv2: Any, resource_arn: str) -> WafConfig | None:
    """The web ACL associated with the load balancer, or None.

    moto 5.2.5 implements ``GetWebACLForResource`` (``wafv2/responses.py``): ``AssociateWebACL`` appends the
    resource ARN to the ACL's ``associated_resources`` and the lookup scans the ACLs of the account and
    region, returning the whole ACL (rules included), as AWS does. So the documented API is used, and the
    same code works against AWS. No association -> ``{"WebACL": null}`` (moto) or no key (AWS).
    """
    acl = wafv2.get_web_acl_for_resource(ResourceArn=resource_arn).get("WebACL")
    return waf_config_from_web_acl(acl) if acl else None


def waf_config_from_web_acl(acl: dict[str, Any]) -> WafConfig:
    """A WAFv2 ``WebACL`` (as the API returns it) -> the emulated rules, plus what cannot be emulated."""
    config = WafConfig(
        default_action="block" if "Block" in (acl.get("DefaultAction") or {}) else "allow",
        name=acl.get("Name", ""),
        arn=acl.get("ARN", ""),
    )
    for rule in sorted(acl.get("Rules", []), key=lambda r: r.get("Priority", 0)):
        name, priority = rule.get("Name", "?"), int(rule.get("Priority", 0))
        parsed = _waf_rule(rule)
        if isinstance(parsed, RateRule):
            config.rate_rules.append(parsed)
        elif isinstance(parsed, BodySizeRule):
            config.body_size_rules.append(parsed)
        else:
            config.not_emulated.append(NotEmulatedRule(name, priority, parsed))
    return config


_ACTIONS = {"Block": "block", "Count": "count", "Allow": "allow"}


def _waf_rule(rule: dict[str, Any]) -> RateRule | BodySizeRule | str:
    """One web ACL rule -> an emulated rule, or the reason it is not emulated."""
    name, priority = rule.get("Name", "?"), int(rule.get("Priority", 0))
    statement = rule.get("Statement") or {}
    if "ManagedRuleGroupStatement" in statement:
        group = statement["ManagedRuleGroupStatement"]
        return f"managed rule group {group.get('VendorName', '?')}/{group.get('Name', '?')} cannot be emulated locally"
    if "RuleGroupReferenceStatement" in statement:
        return "rule group references are not emulated"
    actions = [key for key, value in (rule.get("Action") or {}).items() if value is not None]
    if len(actions) != 1 or actions[0] not in _ACTIONS:
        return f"action {actions or None} is not emulated (only Block, Count, Allow)"
    action = _ACTIONS[actions[0]]

    if "RateBasedStatement" in statement:
        rate = statement["RateBasedStatement"]
        if rate.get("AggregateKeyType", "IP") != "IP":
            return f"rate-based rule aggregating by {rate.get('AggregateKeyType')} is not emulated (only IP)"
        if rate.get("ScopeDownStatement"):
            return "rate-based rule with a scope-down statement is not emulated"
        return RateRule(name, priority, int(rate["Limit"]), float(rate.get("EvaluationWindowSec") or 300), action)

    if "SizeConstraintStatement" in statement:
        size = _body_size(statement["SizeConstraintStatement"])
        return BodySizeRule(name, priority, size, None, action) if isinstance(size, int) else size

    if "AndStatement" in statement:
        parts = (statement["AndStatement"] or {}).get("Statements") or []
        sizes = [p["SizeConstraintStatement"] for p in parts if "SizeConstraintStatement" in p]
        matches = [p["ByteMatchStatement"] for p in parts if "ByteMatchStatement" in p]
        if len(parts) == 2 and len(sizes) == 1 and len(matches) == 1:
            size = _body_size(sizes[0])
            if not isinstance(size, int):
                return size
            prefix = _uri_prefix(matches[0])
            if isinstance(prefix, str):
                return prefix  # the reason
            return BodySizeRule(name, priority, size, prefix[0], action, lowercase_path=prefix[1])
        return "AND statements other than (body size, URI path prefix) are not emulated"

    kinds = ", ".join(sorted(statement)) or "empty statement"
    return f"{kinds} is not emulated"


def _body_size(statement: dict[str, Any]) -> int | str:
    """``SizeConstraintStatement`` on ``Body`` with ``GT`` -> the size, or the reason it is not emulated."""
    field = statement.get("FieldToMatch") or {}
    if "Body" not in field:
        return f"size constraint on {sorted(field) or 'nothing'} is not emulated (only Body)"
    if statement.get("ComparisonOperator") != "GT":
        return f"size constraint {statement.get('ComparisonOperator')} is not emulated (only GT)"
    # Locally the whole body is measured. On AWS an ALB's WAF inspects at most the first 8 KB of a body, so a
    # Size above that only matches with the field's OversizeHandling set to MATCH.
    return int(statement["Size"])


def _uri_prefix(statement: dict[str, Any]) -> tuple[str, bool] | str:
    """``ByteMatchStatement`` ``STARTS_WITH`` on ``UriPath`` -> ``(prefix, lowercase the path)``, or a reason."""
    if "UriPath" not in (statement.get("FieldToMatch") or {}):
        return "byte match on a field other than UriPath is not emulated"
    if statement.get("PositionalConstraint") != "STARTS_WITH":
        return f"byte match {statement.get('PositionalConstraint')} is not emulated (only STARTS_WITH)"
    transformations = {t.get("Type") for t in statement.get("TextTransformations") or []} - {"NONE"}
    if transformations - {"LOWERCASE"}:
        return f"text transformations {sorted(transformations)} are not emulated (only NONE, LOWERCASE)"
    return search_string(statement["SearchString"]), "LOWERCASE" in transformations


def search_string(value: bytes | str) -> str:
    """A ``ByteMatchStatement.SearchString`` as text, whichever way the client returned it.

    boto3 decodes the API's base64 blob and returns the raw bytes (``b"/payment/"``); a caller that stored
    an already base64-encoded value gets the encoded form back (``b"L3BheW1lbnQv"``). A URI path prefix
    starts with ``/``, which tells the two apart.
    """
    raw = value if isinstance(value, bytes) else value.encode("utf-8")
    text = raw.decode("utf-8", errors="replace")
    if text.startswith("/"):
        return text
    try:
        decoded = base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return text
    return decoded if decoded.startswith("/") else text
