"""Edge guardrails (PCI DSS 4.0 Req 4.2, 6.4 and 10.2): the ALB speaks TLS 1.2+ only, turns plain
HTTP into a redirect, drops malformed headers, logs every request and sits behind a WAF that blocks
with the AWS baseline managed rule groups.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from policy.rules.base import DEFAULT_PARAMS, Params, ResourceRule, Rule, StackResource, StackRule, Violation, pci
from policy.rules.readers import as_list, as_map, by_type, find, is_true, parse_json

LOAD_BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
LISTENERS = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")
LISTENER_RULES = ("aws:lb/listenerRule:ListenerRule", "aws:alb/listenerRule:ListenerRule")
WAF_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"

#: The AWS managed rule groups every web ACL runs in blocking mode (PCI DSS 6.4.2's "automated technical
#: solution that detects and prevents web-based attacks"): OWASP-style common attacks, known-bad inputs
#: (Log4Shell and the like), Amazon's IP reputation list, and anonymising proxies/VPNs/Tor.
BASELINE_MANAGED_RULE_GROUPS: tuple[str, ...] = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesAnonymousIpList",
)

#: ELB security policies that negotiate TLS 1.2 or newer only (ELBSecurityPolicy-2016-08 allows TLS 1.0).
TLS12_POLICY = re.compile(r"^ELBSecurityPolicy-(TLS13-1-[23]|TLS-1-2|FS-1-2)(-|$)")


def _is_application(props: Mapping[str, Any]) -> bool:
    return str(props.get("loadBalancerType") or "application") == "application"


def _protocol(props: Mapping[str, Any]) -> str:
    # AWS defaults an ALB listener without a protocol to HTTP.
    return str(props.get("protocol") or "HTTP").upper()


def alb_https_tls12(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """HTTPS/TLS listeners use a security policy that allows TLS 1.2 or newer only."""
    if _protocol(props) not in ("HTTPS", "TLS"):
        return []
    policy = props.get("sslPolicy")
    if not isinstance(policy, str) or not TLS12_POLICY.match(policy):
        shown = policy if isinstance(policy, str) and policy else "<default ELBSecurityPolicy-2016-08>"
        return [pci("4.2.1", f"listener TLS policy '{shown}' allows protocols older than TLS 1.2 (sslPolicy)")]
    return []


def _redirects_to_https(action: Any) -> bool:
    action = as_map(action)
    return action.get("type") == "redirect" and str(as_map(action.get("redirect")).get("protocol", "")).upper() == "HTTPS"


def alb_http_only_redirects(resources: Sequence[StackResource], params: Params = DEFAULT_PARAMS) -> list[Violation]:
    """Each internet-facing ALB has an HTTPS listener; HTTP listeners and their rules only redirect to HTTPS."""
    violations = []
    listeners = by_type(resources, *LISTENERS)
    for lb in by_type(resources, *LOAD_BALANCERS):
        if not _is_application(lb.props) or is_true(lb.props.get("internal")):
            continue
        own = [x for x in listeners if x.props.get("loadBalancerArn") in lb.keys()]
        if not any(_protocol(x.props) == "HTTPS" for x in own):
            violations.append(Violation(lb.name, pci("4.2.1", "internet-facing load balancer has no HTTPS listener"), lb.urn))
    for listener in listeners:
        if _protocol(listener.props) != "HTTP":
            continue
        actions = as_list(listener.props.get("defaultActions"))
        if not actions or not all(_redirects_to_https(a) for a in actions):
            kinds = ", ".join(str(as_map(a).get("type")) for a in actions) or "none"
            violations.append(
                Violation(
                    listener.name,
                    pci("4.2.1", f"HTTP listener default action is '{kinds}'; it must only redirect to HTTPS"),
                    listener.urn,
                )
            )
    for rule in by_type(resources, *LISTENER_RULES):
        parent = find(resources, rule.props.get("listenerArn"), *LISTENERS)
        if parent is None or _protocol(parent.props) != "HTTP":
            continue
        if not all(_redirects_to_https(a) for a in as_list(rule.props.get("actions"))):
            violations.append(
                Violation(
                    rule.name,
                    pci(
                        "4.2.1",
                        f"listener rule on HTTP listener '{parent.name}' serves traffic instead of redirecting to HTTPS",
                    ),
                    rule.urn,
                )
            )
    return violations


def alb_drop_invalid_headers(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Application load balancers drop requests with invalid HTTP header fields (request smuggling)."""
    if _is_application(props) and not is_true(props.get("dropInvalidHeaderFields")):
        return [pci("6.4.1", "load balancer forwards invalid HTTP headers (dropInvalidHeaderFields is not true)")]
    return []


def alb_access_logs(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """Load balancers write access logs to S3."""
    logs = as_map(props.get("accessLogs"))
    if not is_true(logs.get("enabled")) or not logs.get("bucket"):
        return [pci("10.2.1", "load balancer access logs are off (accessLogs.enabled with a bucket)")]
    return []


def _camel_keys(value: Any) -> Any:
    """``ruleJson`` (the WAF API's PascalCase) with camelCase keys, as the ``rules`` input spells them."""
    if isinstance(value, Mapping):
        return {(k[:1].lower() + k[1:]) if isinstance(k, str) else k: _camel_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel_keys(v) for v in value]
    return value


def _web_acl_rules(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The web ACL's rules, from ``rules`` or from the ``ruleJson`` alternative."""
    rules = as_list(props.get("rules")) + as_list(_camel_keys(parse_json(props.get("ruleJson"))))
    return [as_map(rule) for rule in rules]


def _blocks(rule: Mapping[str, Any]) -> bool:
    """A rule-group rule's override action is ``none`` (the group's own block actions apply), not ``count``."""
    override = as_map(rule.get("overrideAction"))
    return override.get("none") is not None and override.get("count") is None


def waf_baseline_managed_rules(resource_type: str, props: Mapping[str, Any], params: Params = DEFAULT_PARAMS) -> list[str]:
    """The web ACL runs the AWS baseline managed rule groups with override action ``none`` (blocking)."""
    found: dict[str, list[Mapping[str, Any]]] = {}
    for rule in _web_acl_rules(props):
        group = as_map(as_map(rule.get("statement")).get("managedRuleGroupStatement"))
        if group.get("vendorName") == "AWS" and isinstance(group.get("name"), str):
            found.setdefault(group["name"], []).append(rule)
    messages = []
    for name in BASELINE_MANAGED_RULE_GROUPS:
        if name not in found:
            messages.append(pci("6.4.2", f"web ACL does not run the AWS managed rule group {name}"))
        elif not any(_blocks(rule) for rule in found[name]):
            messages.append(
                pci("6.4.2", f"web ACL runs the AWS managed rule group {name} in count mode; its override action must be none")
            )
    return messages


def waf_attached(resources: Sequence[StackResource], params: Params = DEFAULT_PARAMS) -> list[Violation]:
    """Every internet-facing application load balancer is associated with a WAFv2 web ACL."""
    protected = {str(a.props.get("resourceArn")) for a in by_type(resources, WAF_ASSOCIATION) if a.props.get("webAclArn")}
    return [
        Violation(lb.name, pci("6.4.2", "internet-facing load balancer has no WAF web ACL association"), lb.urn)
        for lb in by_type(resources, *LOAD_BALANCERS)
        if _is_application(lb.props) and not is_true(lb.props.get("internal")) and not (lb.keys() & protected)
    ]


RULES: tuple[Rule, ...] = (
    ResourceRule(
        "alb-https-tls12",
        "edge",
        "4.2.1",
        "HTTPS listeners use a TLS 1.2+ security policy.",
        LISTENERS,
        alb_https_tls12,
    ),
    StackRule(
        "alb-http-only-redirects",
        "edge",
        "4.2.1",
        "Internet-facing ALBs serve HTTPS; HTTP listeners only redirect to HTTPS.",
        LISTENERS,
        alb_http_only_redirects,
    ),
    ResourceRule(
        "alb-drop-invalid-headers",
        "edge",
        "6.4.1",
        "Application load balancers drop invalid header fields.",
        LOAD_BALANCERS,
        alb_drop_invalid_headers,
    ),
    ResourceRule(
        "alb-access-logs",
        "edge",
        "10.2.1",
        "Load balancers write access logs.",
        LOAD_BALANCERS,
        alb_access_logs,
    ),
    StackRule(
        "waf-attached",
        "edge",
        "6.4.2",
        "Internet-facing application load balancers are protected by a WAF web ACL.",
        LOAD_BALANCERS,
        waf_attached,
    ),
    ResourceRule(
        "waf-baseline-managed-rules",
        "edge",
        "6.4.2",
        "WAF web ACLs block with the AWS Common, Known Bad Inputs, IP Reputation and Anonymous IP rule groups.",
        (WEB_ACL,),
        waf_baseline_managed_rules,
    ),
)
