"""Internet-facing ALB: HTTPS with TLS 1.2+, HTTP redirect, path routing, access logs, WAF."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_tls as tls

from lib.components.base import Component, Context, GuardedArgs, child_opts, encrypted_log_group
from lib.components.buckets import S3_MANAGED, expire_after, private_bucket
from lib.config import EdgeSettings, ServiceSettings
from lib.naming import PROJECT_PREFIX, NameKind
from lib.resource_policies import alb_access_logs_bucket_policy, alb_waf_log_delivery_policy

COMPONENT = "edge"

#: Key prefix of the ALB access logs inside the bucket (AWS appends ``/AWSLogs/<account>/...``).
ACCESS_LOGS_PREFIX = "alb"

#: AWS managed rule groups on the web ACL, in evaluation order after the rate and body-size rules:
#: known-bad IPs and anonymising networks (VPNs, Tor, hosting providers: where card-testing bots come
#: from) first, then the request-content rules. Each group maps to its rules whose action is turned into
#: "count": the stack's own per-path body-size rules decide instead (the common rule set blocks every
#: body over 8 KB on every path alike).
MANAGED_RULE_GROUPS: dict[str, tuple[str, ...]] = {
    "AWSManagedRulesAmazonIpReputationList": (),
    "AWSManagedRulesAnonymousIpList": (),
    "AWSManagedRulesCommonRuleSet": ("SizeRestrictions_BODY",),
    "AWSManagedRulesKnownBadInputsRuleSet": (),
    "AWSManagedRulesSQLiRuleSet": (),
}

#: Request headers WAF must not write to its logs: they carry session tokens and credentials (PCI DSS 3.3).
WAF_REDACTED_HEADERS: tuple[str, ...] = ("authorization", "cookie")

#: What the HTTPS listener answers when no path rule matches.
NOT_FOUND_BODY = json.dumps({"error": "not found"}, separators=(",", ":"))


@dataclass(frozen=True, kw_only=True)
class LoadBalancerArgs(GuardedArgs):
    """Inputs of :class:`LoadBalancer`."""

    settings: EdgeSettings
    services: tuple[ServiceSettings, ...]
    vpc_id: pulumi.Input[str]
    public_subnet_ids: list[pulumi.Output[str]]
    security_group_id: pulumi.Input[str]
    account_id: pulumi.Input[str]


@dataclass(frozen=True)
class TargetGroupRef:
    """A service's target group: ARN for the ECS service, ARN suffix for metrics and scaling."""

    arn: pulumi.Output[str]
    arn_suffix: pulumi.Output[str]


def _required(value: str | None, what: str) -> str:
    """``value``, or a clear error instead of a record with an empty field (ACM always fills these in)."""
    if not value:
        raise ValueError(f"ACM returned no {what} for the certificate's DNS validation")
    return value


def waf_log_group_name(ctx: Context) -> str:
    """``aws-waf-logs-scalepay-<env>[-<suffix>]``: WAF only logs to groups whose name starts ``aws-waf-logs-``."""
    parts = ["aws-waf-logs", PROJECT_PREFIX, ctx.environment]
    if ctx.namer.suffix:
        parts.append(ctx.namer.suffix)
    return "-".join(parts)


def body_size_rule(
    service: ServiceSettings, *, priority: int, visibility: aws.wafv2.WebAclRuleVisibilityConfigArgs
) -> aws.wafv2.WebAclRuleArgs:
    """Block requests on ``service``'s path whose body exceeds its ``max_request_body_bytes``.

    The ALB passes WAF at most the first 8 KB of a body; ``oversize_handling="MATCH"`` treats a longer
    body as matching, so nothing larger than the limit reaches the service uninspected.
    """
    return aws.wafv2.WebAclRuleArgs(
        name=f"body-size-{service.name}",
        priority=priority,
        action=aws.wafv2.WebAclRuleActionArgs(block=aws.wafv2.WebAclRuleActionBlockArgs()),
        statement=aws.wafv2.WebAclRuleStatementArgs(
            and_statement=aws.wafv2.WebAclRuleStatementAndStatementArgs(
                statements=[
                    aws.wafv2.WebAclRuleStatementArgs(
                        byte_match_statement=aws.wafv2.WebAclRuleStatementByteMatchStatementArgs(
                            positional_constraint="STARTS_WITH",
                            search_string=service.path_prefix,
                            field_to_match=aws.wafv2.WebAclRuleStatementByteMatchStatementFieldToMatchArgs(
                                uri_path=aws.wafv2.WebAclRuleStatementByteMatchStatementFieldToMatchUriPathArgs()
                            ),
                            text_transformations=[
                                aws.wafv2.WebAclRuleStatementByteMatchStatementTextTransformationArgs(priority=0, type="NONE")
                            ],
                        )
                    ),
                    aws.wafv2.WebAclRuleStatementArgs(
                        size_constraint_statement=aws.wafv2.WebAclRuleStatementSizeConstraintStatementArgs(
                            comparison_operator="GT",
                            size=service.max_request_body_bytes,
                            field_to_match=aws.wafv2.WebAclRuleStatementSizeConstraintStatementFieldToMatchArgs(
                                body=aws.wafv2.WebAclRuleStatementSizeConstraintStatementFieldToMatchBodyArgs(
                                    oversize_handling="MATCH"
                                )
                            ),
                            text_transformations=[
                                aws.wafv2.WebAclRuleStatementSizeConstraintStatementTextTransformationArgs(
                                    priority=0, type="NONE"
                                )
                            ],
                        )
                    ),
                ]
            )
        ),
        visibility_config=visibility,
    )


class LoadBalancer(Component):
    """ALB, listeners, target groups, listener rules, access-log bucket, certificate and WAF.

    Traffic only reaches the services over HTTPS (TLS 1.2+): port 80 does nothing but redirect to 443,
    and the HTTPS listener forwards by path to one target group per service, answering 404 otherwise.
    With ``settings.waf_enabled`` a WAFv2 web ACL (managed rule groups + per-IP rate limit) sits in
    front of the ALB and logs, with credentials redacted, to a KMS-encrypted log group.
    """

    alb_arn: pulumi.Output[str]
    alb_arn_suffix: pulumi.Output[str]
    alb_dns_name: pulumi.Output[str]
    https_listener_arn: pulumi.Output[str]
    http_listener_arn: pulumi.Output[str]
    target_groups: dict[str, TargetGroupRef]
    access_logs_bucket: pulumi.Output[str]
    waf_acl_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("scalepayments:edge:LoadBalancer", name, None, opts)
        self._args = args
        ctx = args.context
        settings = args.settings
        account_id = pulumi.Output.from_input(args.account_id)
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).partition

        bucket, bucket_policy = self._access_logs_bucket(account_id, partition)

        alb_name = ctx.name("alb", NameKind.ALB)
        alb = aws.lb.LoadBalancer(
            "alb",
            name=alb_name,
            load_balancer_type="application",
            internal=False,
            subnets=args.public_subnet_ids,
            security_groups=[args.security_group_id],
            # Headers that are not valid HTTP are a request-smuggling vector; never pass them to the services.
            drop_invalid_header_fields=True,
            enable_deletion_protection=settings.alb_deletion_protection,
            enable_http2=True,
            idle_timeout=60,
            access_logs=aws.lb.LoadBalancerAccessLogsArgs(bucket=bucket.bucket, prefix=ACCESS_LOGS_PREFIX, enabled=True),
            tags=ctx.tags(COMPONENT, alb_name),
            # ELB checks that it may write to the bucket when access logs are enabled: the policy must exist first.
            opts=child_opts(self, pulumi.ResourceOptions(depends_on=[bucket_policy])),
        )

        certificate_arn = self._certificate(alb)

        https = aws.lb.Listener(
            "https",
            load_balancer_arn=alb.arn,
            port=443,
            protocol="HTTPS",
            ssl_policy=settings.tls_policy,
            certificate_arn=certificate_arn,
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(
                    type="fixed-response",
                    fixed_response=aws.lb.ListenerDefaultActionFixedResponseArgs(
                        content_type="application/json", message_body=NOT_FOUND_BODY, status_code="404"
                    ),
                )
            ],
            tags=ctx.tags(COMPONENT, ctx.name("https")),
            opts=child_opts(self),
        )
        http = aws.lb.Listener(
            "http",
            load_balancer_arn=alb.arn,
            port=80,
            protocol="HTTP",
            # Plain HTTP is never served: the only action is a permanent redirect to HTTPS.
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(
                    type="redirect",
                    redirect=aws.lb.ListenerDefaultActionRedirectArgs(protocol="HTTPS", port="443", status_code="HTTP_301"),
                )
            ],
            tags=ctx.tags(COMPONENT, ctx.name("http")),
            opts=child_opts(self),
        )

        self.target_groups = {}
        #: service -> its listener rule: ECS refuses a service whose target group no rule uses yet.
        self.listener_rules: dict[str, aws.lb.ListenerRule] = {}
        for index, service in enumerate(args.services):
            target_group = self._target_group(service)
            self.listener_rules[service.name] = aws.lb.ListenerRule(
                f"{service.name}-rule",
                listener_arn=https.arn,
                priority=(index + 1) * 10,
                conditions=[
                    aws.lb.ListenerRuleConditionArgs(
                        path_pattern=aws.lb.ListenerRuleConditionPathPatternArgs(values=[service.path_pattern])
                    )
                ],
                actions=[aws.lb.ListenerRuleActionArgs(type="forward", target_group_arn=target_group.arn)],
                tags=ctx.tags(COMPONENT, ctx.name(f"{service.short_name}-rule")),
                opts=child_opts(self),
            )
            self.target_groups[service.name] = TargetGroupRef(target_group.arn, target_group.arn_suffix)

        self.waf_acl_arn = self._waf(alb, account_id, partition) if settings.waf_enabled else None

        self.alb_arn = alb.arn
        self.alb_arn_suffix = alb.arn_suffix
        self.alb_dns_name = alb.dns_name
        self.https_listener_arn = https.arn
        self.http_listener_arn = http.arn
        self.access_logs_bucket = bucket.bucket
        self.finish()

    # --- access logs -------------------------------------------------------------------------------

    def _access_logs_bucket(
        self, account_id: pulumi.Output[str], partition: pulumi.Output[str]
    ) -> tuple[aws.s3.Bucket, aws.s3.BucketPolicy]:
        """S3 bucket for ALB access logs: SSE-S3, private, versioned, expiring, TLS-only, ELB may write."""
        ctx = self._args.context
        settings = self._args.settings
        # Only the name string is computed in apply (the account id makes it globally unique).
        # ALB log delivery cannot write to SSE-KMS buckets: SSE-S3 (AES256) is the strongest it supports.
        logs = private_bucket(
            self,
            "alb-logs",
            bucket_name=account_id.apply(lambda account: ctx.namer.bucket("alb-logs", account)),
            tags=ctx.tags(COMPONENT),
            encryption=S3_MANAGED,
            # An unprotected environment (dev, an ephemeral copy) must tear down with its logs in the bucket.
            force_destroy=not self._args.protection.protect,
            bucket_opts=child_opts(self),
        )
        bucket = logs.bucket
        expire_after(
            self,
            "alb-logs",
            bucket,
            days=settings.access_log_expiration_days,
            archive_after_days=None,
            depends_on=[logs.versioning],
        )
        elb_account_arn = aws.elb.get_service_account_output(opts=pulumi.InvokeOutputOptions(parent=self)).arn
        policy = pulumi.Output.all(bucket.bucket, account_id, elb_account_arn, partition).apply(
            lambda v: json.dumps(alb_access_logs_bucket_policy(v[0], v[1], v[2], ACCESS_LOGS_PREFIX, v[3]))
        )
        bucket_policy = aws.s3.BucketPolicy(
            "alb-logs-policy",
            bucket=bucket.id,
            policy=policy,
            # Concurrent bucket-configuration calls fail with OperationAborted; apply the policy last.
            opts=child_opts(self, pulumi.ResourceOptions(depends_on=logs.settings)),
        )
        return bucket, bucket_policy

    # --- certificate -----------------------------------------------------------------------------

    def _certificate(self, alb: aws.lb.LoadBalancer) -> pulumi.Output[str]:
        """ARN of the HTTPS listener's certificate: configured, DNS-validated, or (dev only) self-signed."""
        settings = self._args.settings
        if settings.certificate_arn:
            return pulumi.Output.from_input(settings.certificate_arn)
        if settings.domain_name and settings.hosted_zone_id:
            return self._dns_validated_certificate(settings.domain_name, settings.hosted_zone_id)
        return self._self_signed_certificate(alb)

    def _dns_validated_certificate(self, domain_name: str, hosted_zone_id: str) -> pulumi.Output[str]:
        """ACM certificate for ``domain_name`` validated through a CNAME in ``hosted_zone_id``."""
        ctx = self._args.context
        certificate = aws.acm.Certificate(
            "certificate",
            domain_name=domain_name,
            validation_method="DNS",
            tags=ctx.tags(COMPONENT, domain_name),
            opts=child_opts(self),
        )
        # .apply only picks values out of the computed validation options; the record itself is top-level.
        option = certificate.domain_validation_options.apply(lambda options: options[0])
        record = aws.route53.Record(
            "certificate-validation",
            zone_id=hosted_zone_id,
            name=option.apply(lambda o: _required(o.resource_record_name, "validation record name")),
            type=option.apply(lambda o: _required(o.resource_record_type, "validation record type")),
            records=[option.apply(lambda o: _required(o.resource_record_value, "validation record value"))],
            ttl=60,
            # The CNAME is deterministic per domain and account: take it over if it already exists.
            allow_overwrite=True,
            opts=child_opts(self),
        )
        validation = aws.acm.CertificateValidation(
            "certificate-validation",
            certificate_arn=certificate.arn,
            validation_record_fqdns=[record.fqdn],
            opts=child_opts(self),
        )
        # The validation's ARN makes the HTTPS listener wait until the certificate is issued.
        return validation.certificate_arn

    def _self_signed_certificate(self, alb: aws.lb.LoadBalancer) -> pulumi.Output[str]:
        """Self-signed certificate imported into ACM: for dev only, so HTTPS works without a domain.

        Browsers and clients will warn (nobody trusts the issuer), which is acceptable for a developer
        environment and nowhere else: configuration validation refuses ``selfSignedCertificateFallback``
        outside dev, where a real ACM certificate (``certificateArn`` or ``domainName`` +
        ``hostedZoneId``) is mandatory. The ALB's DNS name is a SAN so that only the trust warning remains.
        """
        ctx = self._args.context
        key = tls.PrivateKey("self-signed-key", algorithm="RSA", rsa_bits=2048, opts=child_opts(self))
        common_name = "-".join([PROJECT_PREFIX, ctx.environment, *([ctx.namer.suffix] if ctx.namer.suffix else [])])
        cert = tls.SelfSignedCert(
            "self-signed-cert",
            private_key_pem=key.private_key_pem,
            subject=tls.SelfSignedCertSubjectArgs(common_name=f"{common_name}.internal", organization="ScalePayments"),
            dns_names=[alb.dns_name],
            validity_period_hours=8760,
            # Renewed by the next `pulumi up` in the last 30 days instead of expiring under the ALB.
            early_renewal_hours=720,
            allowed_uses=["key_encipherment", "digital_signature", "server_auth"],
            opts=child_opts(self),
        )
        imported = aws.acm.Certificate(
            "certificate",
            private_key=key.private_key_pem,
            certificate_body=cert.cert_pem,
            tags=ctx.tags(COMPONENT, f"{common_name}.internal"),
            opts=child_opts(self),
        )
        return imported.arn

    # --- target groups -----------------------------------------------------------------------------

    def _target_group(self, service: ServiceSettings) -> aws.lb.TargetGroup:
        """Target group of Fargate task IPs for one service, health-checked on its health path."""
        ctx = self._args.context
        name = ctx.name(f"{service.short_name}-tg", NameKind.TARGET_GROUP)
        return aws.lb.TargetGroup(
            f"{service.name}-tg",
            name=name,
            target_type="ip",  # awsvpc tasks register by IP
            protocol="HTTP",
            port=service.port,
            vpc_id=self._args.vpc_id,
            # Short drain: requests are short-lived API calls, and deployments should not wait 5 minutes.
            deregistration_delay=30,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                enabled=True,
                path=service.health_check_path,
                protocol="HTTP",
                port="traffic-port",
                matcher="200-399",
                interval=30,
                timeout=5,
                healthy_threshold=2,
                unhealthy_threshold=3,
            ),
            tags=ctx.tags(COMPONENT, name),
            opts=child_opts(self),
        )

    # --- WAF -------------------------------------------------------------------------------------

    def _waf(self, alb: aws.lb.LoadBalancer, account_id: pulumi.Output[str], partition: pulumi.Output[str]) -> pulumi.Output[str]:
        """WAFv2 web ACL on the ALB with managed rule groups, a per-IP rate limit and encrypted logging."""
        ctx = self._args.context
        settings = self._args.settings
        acl_name = ctx.name("waf")

        def visibility(metric: str) -> aws.wafv2.WebAclRuleVisibilityConfigArgs:
            return aws.wafv2.WebAclRuleVisibilityConfigArgs(
                cloudwatch_metrics_enabled=True, sampled_requests_enabled=True, metric_name=f"{acl_name}-{metric}"
            )

        rules = [
            # Cheapest and broadest first: a flooding client is blocked before the managed rules run.
            aws.wafv2.WebAclRuleArgs(
                name="rate-limit-per-ip",
                priority=0,
                action=aws.wafv2.WebAclRuleActionArgs(block=aws.wafv2.WebAclRuleActionBlockArgs()),
                statement=aws.wafv2.WebAclRuleStatementArgs(
                    rate_based_statement=aws.wafv2.WebAclRuleStatementRateBasedStatementArgs(
                        limit=settings.waf_rate_limit, aggregate_key_type="IP", evaluation_window_sec=300
                    )
                ),
                visibility_config=visibility("rate-limit-per-ip"),
            )
        ]
        for index, service in enumerate(self._args.services, start=1):
            rules.append(body_size_rule(service, priority=index, visibility=visibility(f"body-size-{service.name}")))
        first_managed = len(rules)
        for index, (group, counted_rules) in enumerate(MANAGED_RULE_GROUPS.items()):
            overrides = [
                aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideArgs(
                    name=rule,
                    action_to_use=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideActionToUseArgs(
                        count=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideActionToUseCountArgs()
                    ),
                )
                for rule in counted_rules
            ]
            rules.append(
                aws.wafv2.WebAclRuleArgs(
                    name=group,
                    priority=(first_managed + index) * 10,
                    # "none" keeps the actions the rule group defines (block); "count" would only observe.
                    override_action=aws.wafv2.WebAclRuleOverrideActionArgs(none=aws.wafv2.WebAclRuleOverrideActionNoneArgs()),
                    statement=aws.wafv2.WebAclRuleStatementArgs(
                        managed_rule_group_statement=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementArgs(
                            name=group, vendor_name="AWS", rule_action_overrides=overrides or None
                        )
                    ),
                    visibility_config=visibility(group),
                )
            )
        acl = aws.wafv2.WebAcl(
            "waf",
            name=acl_name,
            description="ScalePayments ALB: AWS managed rules and per-IP rate limiting",
            scope="REGIONAL",  # CLOUDFRONT is only for distributions; an ALB needs a regional ACL
            default_action=aws.wafv2.WebAclDefaultActionArgs(allow=aws.wafv2.WebAclDefaultActionAllowArgs()),
            rules=rules,
            visibility_config=aws.wafv2.WebAclVisibilityConfigArgs(
                cloudwatch_metrics_enabled=True, sampled_requests_enabled=True, metric_name=acl_name
            ),
            tags=ctx.tags(COMPONENT, acl_name),
            opts=child_opts(self),
        )

        log_group_name = waf_log_group_name(ctx)
        log_group = encrypted_log_group(
            "waf-logs", log_group_name, self._args, ctx.tags(COMPONENT, log_group_name), child_opts(self)
        )
        delivery_policy = aws.cloudwatch.LogResourcePolicy(
            "waf-logs-delivery",
            policy_name=ctx.name("waf-log-delivery"),
            policy_document=pulumi.Output.all(account_id, partition).apply(
                lambda v: json.dumps(alb_waf_log_delivery_policy(log_group_name, v[0], ctx.region, v[1]))
            ),
            opts=child_opts(self),
        )
        aws.wafv2.WebAclLoggingConfiguration(
            "waf-logging",
            resource_arn=acl.arn,
            log_destination_configs=[log_group.arn],
            redacted_fields=[
                aws.wafv2.WebAclLoggingConfigurationRedactedFieldArgs(
                    single_header=aws.wafv2.WebAclLoggingConfigurationRedactedFieldSingleHeaderArgs(name=header)
                )
                for header in WAF_REDACTED_HEADERS
            ],
            opts=child_opts(self, pulumi.ResourceOptions(depends_on=[delivery_policy])),
        )
        aws.wafv2.WebAclAssociation(
            "waf-association",
            resource_arn=alb.arn,
            web_acl_arn=acl.arn,
            opts=child_opts(self),
        )
        return acl.arn
