"""Edge requirements per environment: ALB, listeners, routing, access-log bucket, certificate, WAF.

Every test runs against the whole real program (tap.py -> TapStack) under Pulumi's mock runtime,
once per environment, and checks the resources the LoadBalancer component registered.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from lib.config import EnvironmentConfig, build
from tools.evaluate import ACCOUNT_ID, Evaluation, Registration, default_config, evaluate

ENVIRONMENTS = ("dev", "staging", "prod")
EDGE = "scalepayments:edge:LoadBalancer"

ALB = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
LISTENER_RULE = "aws:lb/listenerRule:ListenerRule"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
BUCKET = "aws:s3/bucket:Bucket"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
ACM_CERT = "aws:acm/certificate:Certificate"
ACM_VALIDATION = "aws:acm/certificateValidation:CertificateValidation"
DNS_RECORD = "aws:route53/record:Record"
TLS_KEY = "tls:index/privateKey:PrivateKey"
TLS_CERT = "tls:index/selfSignedCert:SelfSignedCert"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
WAF_LOGGING = "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration"
WAF_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
LOG_RESOURCE_POLICY = "aws:cloudwatch/logResourcePolicy:LogResourcePolicy"

MANAGED_GROUPS = {
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesSQLiRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
    # Issue #8.15: VPNs, Tor and hosting providers, where card-testing bots come from.
    "AWSManagedRulesAnonymousIpList",
}

#: Largest request body per public path (issue #8.12): payment requests on /api/* up to the 8 KB the WAF can
#: inspect on an ALB; /payment/* and /notification/* serve only a health check in public.
BODY_LIMITS = {"/api/": 8192, "/payment/": 1024, "/notification/": 1024}
STANDARD_TAGS = {"Project", "Environment", "Component", "ManagedBy", "CostCenter", "Compliance"}
TAGGABLE = {ALB, LISTENER, LISTENER_RULE, TARGET_GROUP, BUCKET, ACM_CERT, WEB_ACL, LOG_GROUP}


class Edge:
    """One evaluation, seen through the resources the edge component registered."""

    def __init__(self, env: str, evaluation: Evaluation, config: EnvironmentConfig) -> None:
        self.env = env
        self.evaluation = evaluation
        self.config = config
        self.outputs = self.evaluation.outputs

    @classmethod
    def with_config(cls, env: str, config: Mapping[str, str]) -> Edge:
        """An evaluation of ``env`` with a config of its own (not the shared default one)."""
        raw = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("scalepayments:")}
        return cls(env, evaluate(env, config), build(env, raw, config.get("aws:region")))

    def all(self, type_: str) -> list[Registration]:
        return [r for r in self.evaluation.of_type(type_) if r.component == EDGE]

    def one(self, type_: str) -> Registration:
        found = self.all(type_)
        assert len(found) == 1, f"{self.env}: expected one {type_} in the edge component, found {[r.name for r in found]}"
        return found[0]

    def listener(self, port: int) -> Registration:
        found = [r for r in self.all(LISTENER) if r.inputs.get("port") == port]
        assert len(found) == 1, f"{self.env}: expected one listener on port {port}, found {[r.name for r in found]}"
        return found[0]


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def edge(
    request: pytest.FixtureRequest, evaluated: Callable[[str], Evaluation], resolved: Callable[[str], EnvironmentConfig]
) -> Edge:
    return Edge(request.param, evaluated(request.param), resolved(request.param))


@pytest.fixture(scope="module", params=[env for env in ENVIRONMENTS if env != "dev"])
def waf_edge(
    request: pytest.FixtureRequest, evaluated: Callable[[str], Evaluation], resolved: Callable[[str], EnvironmentConfig]
) -> Edge:
    """Environments whose preset enables the WAF (dev's absence is asserted by test_waf_only_where_enabled)."""
    return Edge(request.param, evaluated(request.param), resolved(request.param))


@pytest.fixture(scope="module")
def dns_validated() -> Edge:
    config = {**default_config("staging"), "scalepayments:domainName": "pay.example.com", "scalepayments:hostedZoneId": "Z123"}
    config.pop("scalepayments:certificateArn")
    return Edge.with_config("staging", config)


def _policy(registration: Registration, key: str = "policy") -> dict[str, Any]:
    value = registration.inputs[key]
    return json.loads(value) if isinstance(value, str) else value


# --- ALB ---------------------------------------------------------------------------------------


def test_alb_is_internet_facing_application_lb_in_public_subnets_with_alb_sg(edge: Edge) -> None:
    alb = edge.one(ALB)
    name = alb.inputs.get("name")
    assert alb.inputs["loadBalancerType"] == "application", f"{name}: not an application load balancer"
    assert alb.inputs.get("internal") is not True, f"{name}: must be internet-facing"
    public = edge.outputs["publicSubnetIds"]
    assert sorted(alb.inputs["subnets"]) == sorted(public), f"{name}: subnets {alb.inputs['subnets']} are not the public ones"
    assert len(alb.inputs["subnets"]) == edge.config.network.az_count >= 2, f"{name}: needs one public subnet per AZ"
    assert set(edge.outputs["privateSubnetIds"]).isdisjoint(alb.inputs["subnets"]), f"{name}: in a private subnet"
    assert alb.inputs["securityGroups"] == [edge.outputs["albSecurityGroupId"]], f"{name}: not (only) the ALB security group"


def test_alb_name_follows_convention_within_32_chars(edge: Edge) -> None:
    name = edge.one(ALB).inputs["name"]
    assert name == f"scalepay-alb-{edge.env}", name
    assert len(name) <= 32, f"{name}: ALB names are limited to 32 characters"


def test_alb_drops_invalid_headers_and_times_out_idle_connections(edge: Edge) -> None:
    alb = edge.one(ALB)
    assert alb.inputs.get("dropInvalidHeaderFields") is True, f"{alb.inputs['name']}: invalid header fields must be dropped"
    assert alb.inputs.get("idleTimeout") == 60, f"{alb.inputs['name']}: idle timeout"


def test_alb_deletion_protection_only_in_prod(edge: Edge) -> None:
    alb = edge.one(ALB)
    assert alb.inputs.get("enableDeletionProtection", False) is (edge.env == "prod"), (
        f"{alb.inputs['name']}: deletion protection must be on in prod only, got {alb.inputs.get('enableDeletionProtection')}"
    )


def test_alb_access_logs_enabled_to_the_logs_bucket_after_its_policy(edge: Edge) -> None:
    alb = edge.one(ALB)
    bucket = edge.one(BUCKET)
    logs = alb.inputs.get("accessLogs") or {}
    assert logs.get("enabled") is True, f"{alb.inputs['name']}: access logs disabled"
    assert logs.get("bucket") == bucket.inputs["bucket"] == edge.outputs["albAccessLogsBucket"], f"{alb.inputs['name']}: {logs}"
    assert logs.get("prefix") == "alb", f"{alb.inputs['name']}: log prefix {logs.get('prefix')!r}"
    policy_urn = edge.one(BUCKET_POLICY).urn
    assert policy_urn in alb.depends_on, f"{alb.inputs['name']}: must depend on the bucket policy (ELB checks write access)"


# --- access-logs bucket ---------------------------------------------------------------------------


def test_logs_bucket_name_is_unique_per_account_and_destroyable_only_where_unprotected(edge: Edge) -> None:
    bucket = edge.one(BUCKET)
    name = bucket.inputs["bucket"]
    assert name == f"scalepay-alb-logs-{edge.env}-{ACCOUNT_ID}", name
    assert len(name) <= 63, f"{name}: S3 bucket names are limited to 63 characters"
    # Issue #8.10: an unprotected environment tears down with its (versioned) logs; prod keeps them.
    expected = {"dev": True, "staging": True, "prod": False}[edge.env]
    assert bucket.inputs.get("forceDestroy") is expected, f"{name}: forceDestroy should be {expected}"
    assert STANDARD_TAGS <= set(bucket.inputs.get("tags", {})), f"{name}: missing standard tags"


def test_logs_bucket_uses_sse_s3_not_kms(edge: Edge) -> None:
    sse = edge.one(SSE)
    bucket = edge.one(BUCKET)
    assert sse.inputs["bucket"] == bucket.state["id"], f"{sse.name}: configures another bucket"
    rules = sse.inputs["rules"]
    assert len(rules) == 1, f"{sse.name}: {rules}"
    default = rules[0]["applyServerSideEncryptionByDefault"]
    # ALB log delivery cannot write to SSE-KMS buckets.
    assert default["sseAlgorithm"] == "AES256", f"{sse.name}: ALB access logs need SSE-S3, got {default}"
    assert not default.get("kmsMasterKeyId"), f"{sse.name}: no KMS key for ALB access logs"


def test_logs_bucket_blocks_all_public_access(edge: Edge) -> None:
    pab = edge.one(PUBLIC_ACCESS_BLOCK)
    assert pab.inputs["bucket"] == edge.one(BUCKET).state["id"], f"{pab.name}: configures another bucket"
    for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        assert pab.inputs.get(flag) is True, f"{pab.name}: {flag} must be true"


def test_logs_bucket_ownership_enforced_and_versioned(edge: Edge) -> None:
    bucket_id = edge.one(BUCKET).state["id"]
    ownership = edge.one(OWNERSHIP)
    assert ownership.inputs["bucket"] == bucket_id
    assert ownership.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced", f"{ownership.name}: ACLs must be disabled"
    versioning = edge.one(VERSIONING)
    assert versioning.inputs["bucket"] == bucket_id
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled", f"{versioning.name}: versioning off"


def test_logs_bucket_lifecycle_expires_current_and_noncurrent_versions(edge: Edge) -> None:
    lifecycle = edge.one(LIFECYCLE)
    days = edge.config.edge.access_log_expiration_days
    assert lifecycle.inputs["bucket"] == edge.one(BUCKET).state["id"]
    enabled = [r for r in lifecycle.inputs["rules"] if r["status"] == "Enabled"]
    assert enabled, f"{lifecycle.name}: no enabled rule"
    rule = enabled[0]
    assert rule.get("filter", {}).get("prefix", "") == "", f"{lifecycle.name}: rule must cover the whole bucket"
    assert rule["expiration"]["days"] == days, f"{lifecycle.name}: expiration {rule['expiration']} != {days} days"
    assert rule["noncurrentVersionExpiration"]["noncurrentDays"] == days, f"{lifecycle.name}: noncurrent versions kept"
    if edge.env == "prod":
        assert days >= 365, f"{lifecycle.name}: prod access logs must be kept a year (PCI DSS 10.5.1), got {days}"
    assert edge.one(VERSIONING).urn in lifecycle.depends_on, f"{lifecycle.name}: must follow versioning"


def test_logs_bucket_policy_lets_elb_log_delivery_write_to_awslogs_prefix(edge: Edge) -> None:
    policy_reg = edge.one(BUCKET_POLICY)
    bucket = edge.one(BUCKET).inputs["bucket"]
    assert policy_reg.inputs["bucket"] == edge.one(BUCKET).state["id"]
    statements = _policy(policy_reg)["Statement"]
    objects = f"arn:aws:s3:::{bucket}/alb/AWSLogs/{ACCOUNT_ID}/*"
    principals = [s["Principal"] for s in statements if s["Effect"] == "Allow" and s["Action"] == "s3:PutObject"]
    assert {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"} in principals, f"{policy_reg.name}: {principals}"
    assert {"AWS": "arn:aws:iam::127311923021:root"} in principals, f"{policy_reg.name}: regional ELB account missing"
    for statement in statements:
        if statement["Effect"] == "Allow":
            assert statement["Resource"] == objects, f"{policy_reg.name}: grant wider than {objects}: {statement}"
            assert statement["Principal"] != "*", f"{policy_reg.name}: anonymous allow {statement}"


def test_logs_bucket_policy_denies_non_tls_requests(edge: Edge) -> None:
    policy_reg = edge.one(BUCKET_POLICY)
    bucket = edge.one(BUCKET).inputs["bucket"]
    denies = [
        s
        for s in _policy(policy_reg)["Statement"]
        if s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
    ]
    assert len(denies) == 1, f"{policy_reg.name}: no TLS-only deny"
    deny = denies[0]
    assert deny["Principal"] == "*" and deny["Action"] == "s3:*", f"{policy_reg.name}: {deny}"
    assert set(deny["Resource"]) == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}, f"{policy_reg.name}: {deny}"
    assert edge.one(PUBLIC_ACCESS_BLOCK).urn in policy_reg.depends_on, f"{policy_reg.name}: race with the public access block"


# --- listeners and certificate ---------------------------------------------------------------------


def test_https_listener_443_with_tls12_policy_and_certificate(edge: Edge) -> None:
    https = edge.listener(443)
    assert https.inputs["protocol"] == "HTTPS", f"{https.name}: protocol {https.inputs['protocol']}"
    assert https.inputs["loadBalancerArn"] == edge.one(ALB).state["arn"], f"{https.name}: attached to another ALB"
    policy = https.inputs["sslPolicy"]
    assert policy == edge.config.edge.tls_policy == "ELBSecurityPolicy-TLS13-1-2-2021-06", f"{https.name}: {policy}"
    assert https.inputs.get("certificateArn"), f"{https.name}: no certificate"
    assert edge.outputs["httpsListenerArn"] == https.state["arn"]


def test_https_listener_default_action_is_json_404(edge: Edge) -> None:
    https = edge.listener(443)
    actions = https.inputs["defaultActions"]
    assert len(actions) == 1 and actions[0]["type"] == "fixed-response", f"{https.name}: {actions}"
    response = actions[0]["fixedResponse"]
    assert response["statusCode"] == "404", f"{https.name}: {response}"
    assert response["contentType"] == "application/json", f"{https.name}: {response}"
    assert json.loads(response["messageBody"]) == {"error": "not found"}, f"{https.name}: {response}"


def test_http_listener_only_redirects_to_https_with_301(edge: Edge) -> None:
    http = edge.listener(80)
    assert http.inputs["protocol"] == "HTTP"
    actions = http.inputs["defaultActions"]
    assert [a["type"] for a in actions] == ["redirect"], f"{http.name}: plain HTTP must only redirect, got {actions}"
    redirect = actions[0]["redirect"]
    assert redirect["protocol"] == "HTTPS" and str(redirect["port"]) == "443", f"{http.name}: {redirect}"
    assert redirect["statusCode"] == "HTTP_301", f"{http.name}: {redirect}"
    http_rules = [r for r in edge.all(LISTENER_RULE) if r.inputs["listenerArn"] == http.state["arn"]]
    assert not http_rules, f"{http.name}: no rule may forward plain HTTP: {[r.name for r in http_rules]}"
    assert sorted(r.inputs["port"] for r in edge.all(LISTENER)) == [80, 443], "only listeners on 80 and 443"


def test_certificate_source_per_environment(edge: Edge) -> None:
    https = edge.listener(443)
    configured = edge.config.edge.certificate_arn
    if edge.env == "dev":
        assert configured is None
        key = edge.one(TLS_KEY)
        assert key.inputs["algorithm"] == "RSA" and key.inputs["rsaBits"] >= 2048, f"{key.name}: {key.inputs}"
        cert = edge.one(TLS_CERT)
        assert cert.inputs["validityPeriodHours"] == 8760, f"{cert.name}: validity"
        assert {"key_encipherment", "digital_signature", "server_auth"} <= set(cert.inputs["allowedUses"]), cert.name
        assert cert.inputs["subject"]["commonName"].endswith(".internal"), f"{cert.name}: {cert.inputs['subject']}"
        assert edge.one(ALB).state["dnsName"] in cert.inputs["dnsNames"], f"{cert.name}: ALB DNS name not a SAN"
        imported = edge.one(ACM_CERT)
        assert imported.inputs.get("privateKey") and imported.inputs.get("certificateBody"), f"{imported.name}: not an import"
        assert "validationMethod" not in imported.inputs
        assert https.inputs["certificateArn"] == imported.state["arn"], f"{https.name}: not the imported certificate"
    else:
        assert configured, f"{edge.env}: needs a trusted certificate"
        assert https.inputs["certificateArn"] == configured, f"{https.name}: {https.inputs['certificateArn']}"
        assert not edge.all(TLS_KEY) and not edge.all(TLS_CERT), f"{edge.env}: self-signed certificate outside dev"
        assert not edge.all(ACM_CERT), f"{edge.env}: a certificate was created although one is configured"


def test_dns_validated_certificate_path(dns_validated: Edge) -> None:
    cert = dns_validated.one(ACM_CERT)
    assert cert.inputs["domainName"] == "pay.example.com" and cert.inputs["validationMethod"] == "DNS", cert.inputs
    assert not cert.inputs.get("privateKey"), f"{cert.name}: must be an Amazon-issued certificate"
    record = dns_validated.one(DNS_RECORD)
    assert record.inputs["zoneId"] == "Z123", f"{record.name}: wrong hosted zone"
    option = cert.state["domainValidationOptions"][0]
    assert record.inputs["type"] == option["resourceRecordType"] == "CNAME", f"{record.name}: {record.inputs}"
    assert record.inputs["name"] == option["resourceRecordName"], f"{record.name}: {record.inputs}"
    assert record.inputs["records"] == [option["resourceRecordValue"]], f"{record.name}: {record.inputs}"
    validation = dns_validated.one(ACM_VALIDATION)
    assert validation.inputs["certificateArn"] == cert.state["arn"], f"{validation.name}: validates another certificate"
    assert validation.inputs["validationRecordFqdns"] == [record.state["fqdn"]], f"{validation.name}: {validation.inputs}"
    https = dns_validated.listener(443)
    assert https.inputs["certificateArn"] == cert.state["arn"], f"{https.name}: not the DNS-validated certificate"
    assert validation.urn in https.depends_on, f"{https.name}: must wait for certificate validation"
    assert not dns_validated.all(TLS_KEY), "no self-signed material when a domain is configured"


# --- target groups and routing -------------------------------------------------------------------


def test_one_ip_target_group_per_service_with_health_checks(edge: Edge) -> None:
    services = edge.config.compute.services
    groups = {r.name: r for r in edge.all(TARGET_GROUP)}
    assert len(groups) == len(services) == 3, f"{edge.env}: target groups {sorted(groups)}"
    vpc_id = edge.outputs["vpcId"]
    for service in services:
        tg = groups[f"{service.name}-tg"]
        name = tg.inputs["name"]
        assert name == f"scalepay-{service.short_name}-tg-{edge.env}", name
        assert len(name) <= 32, f"{name}: target group names are limited to 32 characters"
        assert tg.inputs["targetType"] == "ip", f"{name}: Fargate tasks register by IP"
        assert tg.inputs["protocol"] == "HTTP" and tg.inputs["port"] == service.port, f"{name}: {tg.inputs}"
        assert tg.inputs["vpcId"] == vpc_id, f"{name}: wrong VPC"
        assert tg.inputs["deregistrationDelay"] in (30, "30"), f"{name}: deregistration delay"
        hc = tg.inputs["healthCheck"]
        assert hc.get("enabled", True) is True, f"{name}: health check disabled"
        assert hc["path"] == service.health_check_path, f"{name}: health check path {hc['path']}"
        assert hc["matcher"] == "200-399" and hc["interval"] == 30 and hc["timeout"] == 5, f"{name}: {hc}"
        assert hc["healthyThreshold"] == 2 and hc["unhealthyThreshold"] == 3, f"{name}: {hc}"
        assert hc["timeout"] < hc["interval"], f"{name}: timeout must be shorter than the interval"


def test_listener_rules_route_each_path_to_its_service(edge: Edge) -> None:
    https = edge.listener(443)
    tg_arn = {r.name.removesuffix("-tg"): r.state["arn"] for r in edge.all(TARGET_GROUP)}
    rules = edge.all(LISTENER_RULE)
    routes: dict[str, str] = {}
    priorities: dict[str, int] = {}
    for rule in rules:
        assert rule.inputs["listenerArn"] == https.state["arn"], f"{rule.name}: not on the HTTPS listener"
        (condition,) = rule.inputs["conditions"]
        (path,) = condition["pathPattern"]["values"]
        (action,) = rule.inputs["actions"]
        assert action["type"] == "forward", f"{rule.name}: {action}"
        routes[path] = action["targetGroupArn"]
        priorities[path] = rule.inputs["priority"]
    assert routes == {
        "/api/*": tg_arn["api"],
        "/payment/*": tg_arn["payment"],
        "/notification/*": tg_arn["notification"],
    }, f"{edge.env}: routes {routes}"
    # Priorities follow the service order, leaving gaps for rules added later.
    assert [priorities[s.path_pattern] for s in edge.config.compute.services] == [10, 20, 30], f"{edge.env}: {priorities}"
    assert edge.outputs["targetGroupArns"] == tg_arn, f"{edge.env}: exported target group ARNs"


# --- WAF --------------------------------------------------------------------------------------


def _waf_types() -> tuple[str, ...]:
    return (WEB_ACL, WAF_LOGGING, WAF_ASSOCIATION, LOG_RESOURCE_POLICY)


def test_waf_only_where_enabled(edge: Edge) -> None:
    present = {t: len(edge.all(t)) for t in _waf_types()}
    if edge.env == "dev":
        assert not any(present.values()), f"dev: WAF resources registered {present}"
        assert edge.outputs["wafWebAclArn"] == ""
        assert not [r for r in edge.all(LOG_GROUP) if r.inputs["name"].startswith("aws-waf-logs-")]
    else:
        assert all(count == 1 for count in present.values()), f"{edge.env}: WAF resources {present}"
        assert edge.outputs["wafWebAclArn"] == edge.one(WEB_ACL).state["arn"]


def _require_waf(edge: Edge) -> Registration:
    assert edge.config.edge.waf_enabled, f"{edge.env}: the preset must enable the WAF"
    return edge.one(WEB_ACL)


def test_waf_acl_is_regional_allow_by_default_with_managed_groups(waf_edge: Edge) -> None:
    edge = waf_edge
    acl = _require_waf(edge)
    name = acl.inputs["name"]
    assert name == f"scalepay-waf-{edge.env}", name
    assert acl.inputs["scope"] == "REGIONAL", f"{name}: an ALB needs a REGIONAL web ACL"
    assert "allow" in acl.inputs["defaultAction"], f"{name}: {acl.inputs['defaultAction']}"
    managed = {}
    for rule in acl.inputs["rules"]:
        statement = rule["statement"].get("managedRuleGroupStatement")
        if statement:
            managed[statement["name"]] = rule
            assert statement["vendorName"] == "AWS", f"{name}/{rule['name']}: vendor"
            assert "none" in rule["overrideAction"], f"{name}/{rule['name']}: override must be none (keep blocking)"
            assert "action" not in rule, f"{name}/{rule['name']}: managed groups take override_action"
    assert set(managed) == MANAGED_GROUPS, f"{name}: managed groups {sorted(managed)}"
    priorities = [r["priority"] for r in acl.inputs["rules"]]
    assert len(priorities) == len(set(priorities)), f"{name}: duplicate priorities {priorities}"


def test_waf_rate_rule_blocks_per_ip(waf_edge: Edge) -> None:
    edge = waf_edge
    acl = _require_waf(edge)
    rate_rules = [r for r in acl.inputs["rules"] if "rateBasedStatement" in r["statement"]]
    assert len(rate_rules) == 1, f"{acl.inputs['name']}: rate rules {rate_rules}"
    rule = rate_rules[0]
    statement = rule["statement"]["rateBasedStatement"]
    assert statement["limit"] >= 10, f"{acl.inputs['name']}: AWS needs a rate limit >= 10"
    assert statement["limit"] == edge.config.edge.waf_rate_limit
    assert statement["aggregateKeyType"] == "IP"
    assert "block" in rule["action"], f"{acl.inputs['name']}/{rule['name']}: must block, got {rule['action']}"


def test_waf_limits_request_bodies_per_path(waf_edge: Edge) -> None:
    """Each public path gets its own body limit; the common rule set's blanket 8 KB rule only counts."""
    acl = _require_waf(waf_edge)
    limits = {}
    for rule in acl.inputs["rules"]:
        statement = rule["statement"].get("andStatement")
        if not statement:
            continue
        first, size = statement["statements"]
        path = first["byteMatchStatement"]
        assert path["positionalConstraint"] == "STARTS_WITH" and "uriPath" in path["fieldToMatch"], rule["name"]
        constraint = size["sizeConstraintStatement"]
        assert constraint["comparisonOperator"] == "GT", rule["name"]
        # The ALB hands WAF at most 8 KB: a longer body must match (be blocked), not slip through uninspected.
        assert constraint["fieldToMatch"]["body"]["oversizeHandling"] == "MATCH", rule["name"]
        assert "block" in rule["action"], rule["name"]
        limits[path["searchString"]] = constraint["size"]
    assert limits == BODY_LIMITS
    common = next(r for r in acl.inputs["rules"] if r["name"] == "AWSManagedRulesCommonRuleSet")
    overrides = common["statement"]["managedRuleGroupStatement"]["ruleActionOverrides"]
    assert overrides == [{"name": "SizeRestrictions_BODY", "actionToUse": {"count": {}}}]
    # The services enforce the same limit themselves (defence in depth, and dev has no WAF).
    for service, limit in (("api", 8192), ("payment", 1024), ("notification", 1024)):
        td = next(
            t
            for t in waf_edge.evaluation.of_type("aws:ecs/taskDefinition:TaskDefinition")
            if t.name == f"{service}-task-definition"
        )
        env = {e["name"]: e["value"] for e in json.loads(td.inputs["containerDefinitions"])[0]["environment"]}
        assert env["MAX_REQUEST_BODY_BYTES"] == str(limit), service


def test_waf_visibility_config_on_every_rule_and_acl(waf_edge: Edge) -> None:
    edge = waf_edge
    acl = _require_waf(edge)
    configs = [("acl", acl.inputs["visibilityConfig"])] + [(r["name"], r["visibilityConfig"]) for r in acl.inputs["rules"]]
    metrics = []
    for label, config in configs:
        assert config["cloudwatchMetricsEnabled"] is True, f"{acl.inputs['name']}/{label}: metrics off"
        assert config["sampledRequestsEnabled"] is True, f"{acl.inputs['name']}/{label}: sampling off"
        assert config["metricName"], f"{acl.inputs['name']}/{label}: no metric name"
        metrics.append(config["metricName"])
    # The ACL, the rate rule, one body-size rule per service, one rule per managed group.
    assert len(metrics) == len(set(metrics)) == 1 + 1 + 3 + len(MANAGED_GROUPS), f"{acl.inputs['name']}: metric names {metrics}"


def test_waf_logs_to_encrypted_aws_waf_logs_group(waf_edge: Edge) -> None:
    edge = waf_edge
    acl = _require_waf(edge)
    groups = [r for r in edge.all(LOG_GROUP) if r.inputs["name"].startswith("aws-waf-logs-")]
    assert len(groups) == 1, f"{edge.env}: WAF log groups {[g.inputs['name'] for g in groups]}"
    group = groups[0]
    name = group.inputs["name"]
    assert name == f"aws-waf-logs-scalepay-{edge.env}", name
    assert group.inputs.get("kmsKeyId") == edge.outputs["kmsLogsKeyArn"], f"{name}: not encrypted with the logs CMK"
    assert group.inputs["retentionInDays"] == edge.config.observability.log_retention_days, f"{name}: retention"
    logging = edge.one(WAF_LOGGING)
    assert logging.inputs["resourceArn"] == acl.state["arn"], f"{logging.name}: logs another ACL"
    assert logging.inputs["logDestinationConfigs"] == [group.state["arn"]], f"{logging.name}: {logging.inputs}"
    redacted = {f["singleHeader"]["name"] for f in logging.inputs.get("redactedFields", []) if "singleHeader" in f}
    assert {"authorization", "cookie"} <= redacted, f"{logging.name}: credentials would be logged"
    delivery = edge.one(LOG_RESOURCE_POLICY)
    (statement,) = _policy(delivery, "policyDocument")["Statement"]
    assert statement["Resource"] == (f"arn:aws:logs:{edge.config.region}:{ACCOUNT_ID}:log-group:{name}:log-stream:*"), (
        f"{delivery.name}: {statement}"
    )
    assert delivery.urn in logging.depends_on, f"{logging.name}: must follow the delivery policy"


def test_waf_associated_with_the_alb(waf_edge: Edge) -> None:
    edge = waf_edge
    acl = _require_waf(edge)
    association = edge.one(WAF_ASSOCIATION)
    assert association.inputs["resourceArn"] == edge.one(ALB).state["arn"], f"{association.name}: not the ALB"
    assert association.inputs["webAclArn"] == acl.state["arn"], f"{association.name}: not the web ACL"


def test_waf_can_be_disabled_by_config_in_staging() -> None:
    edge = Edge.with_config("staging", {**default_config("staging"), "scalepayments:wafEnabled": "false"})
    present = {t: len(edge.all(t)) for t in _waf_types()}
    assert not any(present.values()), f"staging with wafEnabled=false: {present}"
    assert edge.outputs["wafWebAclArn"] == ""
    assert len(edge.all(ALB)) == 1, "the ALB itself stays"


def test_suffix_reaches_every_edge_name_within_limits() -> None:
    config = {**default_config("dev"), "scalepayments:environmentSuffix": "pr123", "scalepayments:wafEnabled": "true"}
    edge = Edge.with_config("dev", config)
    assert edge.one(ALB).inputs["name"] == "scalepay-alb-dev-pr123"
    for tg in edge.all(TARGET_GROUP):
        name = tg.inputs["name"]
        assert name.endswith("-dev-pr123") and len(name) <= 32, f"{name}: suffix missing or over 32 characters"
    assert edge.one(BUCKET).inputs["bucket"] == f"scalepay-alb-logs-dev-pr123-{ACCOUNT_ID}"
    assert edge.one(WEB_ACL).inputs["name"] == "scalepay-waf-dev-pr123"
    waf_groups = [r.inputs["name"] for r in edge.all(LOG_GROUP) if r.inputs["name"].startswith("aws-waf-logs-")]
    assert waf_groups == ["aws-waf-logs-scalepay-dev-pr123"], waf_groups


# --- component contract ----------------------------------------------------------------------------


def test_every_taggable_edge_resource_has_standard_tags(edge: Edge) -> None:
    custom = [r for r in edge.evaluation.custom() if r.component == EDGE]
    assert len(custom) >= 15, f"{edge.env}: only {len(custom)} edge resources"
    for r in custom:
        if r.type in TAGGABLE:
            tags = r.inputs.get("tags") or {}
            assert STANDARD_TAGS <= set(tags), f"{r.name} ({r.type}): missing {STANDARD_TAGS - set(tags)}"
            assert tags["Environment"] == edge.env and tags["Component"] == "edge", f"{r.name}: {tags}"
