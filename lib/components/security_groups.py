"""Security groups: only the paths the platform needs (internet -> ALB -> services -> data).

Every group is created without inline rules (the AWS provider then revokes the allow-all egress
rule AWS adds to a new group) and every permitted path is one ``aws.vpc.SecurityGroupIngressRule``
or ``SecurityGroupEgressRule`` with a description. The database and cache groups have no egress
rule at all: security groups are stateful, so replies to allowed inbound connections still flow.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from lib.components.base import Component, Context, child_opts

COMPONENT = "security"
ANYWHERE = "0.0.0.0/0"
HTTPS = 443
HTTP = 80


@dataclass(frozen=True, kw_only=True)
class SecurityGroupsArgs:
    """Inputs of :class:`SecurityGroups`."""

    context: Context
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    service_ports: tuple[int, ...]
    database_port: int
    cache_port: int


@dataclass(frozen=True)
class Peer:
    """The other end of a rule: a CIDR block or another security group (exactly one)."""

    cidr: str | None = None
    security_group_id: pulumi.Input[str] | None = None


class SecurityGroups(Component):
    """ALB, services, database and cache security groups with one rule resource per path."""

    alb_sg_id: pulumi.Output[str]
    services_sg_id: pulumi.Output[str]
    database_sg_id: pulumi.Output[str]
    cache_sg_id: pulumi.Output[str]

    def __init__(self, name: str, args: SecurityGroupsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("scalepayments:security:SecurityGroups", name, None, opts)
        self._name = name
        self._ctx = args.context
        ports = tuple(sorted(set(args.service_ports)))
        if not ports:
            raise ValueError("SecurityGroupsArgs.service_ports is empty: the ALB would have nowhere to send traffic")

        alb = self._group(args, "alb", "Application Load Balancer: HTTPS (and HTTP, only to redirect) from the internet")
        services = self._group(args, "services", "ECS services: traffic from the ALB and from each other")
        database = self._group(args, "database", "Aurora PostgreSQL: connections from the ECS services only")
        cache = self._group(args, "cache", "ElastiCache Redis: connections from the ECS services only")

        internet = Peer(cidr=ANYWHERE)
        # --- ALB: the only group reachable from the internet ------------------------------------------
        self._ingress("alb-in-https", alb, HTTPS, internet, "HTTPS from the internet")
        self._ingress("alb-in-http", alb, HTTP, internet, "HTTP from the internet, only to redirect to HTTPS")
        for port in ports:
            self._egress(f"alb-out-svc-{port}", alb, port, Peer(security_group_id=services.id), f"to ECS services on {port}")

        # --- services -----------------------------------------------------------------------------------
        for port in ports:
            self._ingress(f"svc-in-alb-{port}", services, port, Peer(security_group_id=alb.id), f"from the ALB on {port}")
            # Service-to-service needs both halves: these groups have no default allow-all egress.
            self._ingress(
                f"svc-in-self-{port}", services, port, Peer(security_group_id=services.id), f"service-to-service on {port}"
            )
            self._egress(
                f"svc-out-self-{port}", services, port, Peer(security_group_id=services.id), f"service-to-service on {port}"
            )
        self._egress(
            f"svc-out-db-{args.database_port}",
            services,
            args.database_port,
            Peer(security_group_id=database.id),
            f"to Aurora PostgreSQL on {args.database_port}",
        )
        self._egress(
            f"svc-out-cache-{args.cache_port}",
            services,
            args.cache_port,
            Peer(security_group_id=cache.id),
            f"to Redis on {args.cache_port}",
        )
        # Tasks call AWS APIs (ECR, Secrets Manager, CloudWatch Logs, ...) over HTTPS. Without interface
        # endpoints (dev) these go through the NAT gateway to public AWS endpoints whose addresses are
        # not fixed, so the destination can only be 0.0.0.0/0; the port is still 443 only.
        self._egress("svc-out-https", services, HTTPS, internet, "HTTPS to AWS APIs and ECR (via NAT or VPC endpoints)")

        # --- data tier: inbound from the services only, no egress rule ----------------------------------
        self._ingress(
            f"db-in-svc-{args.database_port}",
            database,
            args.database_port,
            Peer(security_group_id=services.id),
            f"PostgreSQL from ECS services on {args.database_port}",
        )
        self._ingress(
            f"cache-in-svc-{args.cache_port}",
            cache,
            args.cache_port,
            Peer(security_group_id=services.id),
            f"Redis from ECS services on {args.cache_port}",
        )

        self.alb_sg_id = alb.id
        self.services_sg_id = services.id
        self.database_sg_id = database.id
        self.cache_sg_id = cache.id
        self.finish()

    def _group(self, args: SecurityGroupsArgs, role: str, description: str) -> aws.ec2.SecurityGroup:
        """A group with no inline rules: the provider removes AWS's default allow-all egress on create."""
        sg_name = self._ctx.name(f"{role}-sg")
        return aws.ec2.SecurityGroup(
            f"{self._name}-{role}",
            name=sg_name,
            description=description,
            vpc_id=args.vpc_id,
            tags=self._ctx.tags(COMPONENT, sg_name),
            opts=child_opts(self),
        )

    def _ingress(self, rule: str, group: aws.ec2.SecurityGroup, port: int, source: Peer, description: str) -> None:
        """One inbound TCP rule on ``port`` from ``source``."""
        self._rule(aws.vpc.SecurityGroupIngressRule, rule, group, port, source, description)

    def _egress(self, rule: str, group: aws.ec2.SecurityGroup, port: int, destination: Peer, description: str) -> None:
        """One outbound TCP rule on ``port`` to ``destination``."""
        self._rule(aws.vpc.SecurityGroupEgressRule, rule, group, port, destination, description)

    def _rule(
        self,
        resource: type[aws.vpc.SecurityGroupIngressRule] | type[aws.vpc.SecurityGroupEgressRule],
        rule: str,
        group: aws.ec2.SecurityGroup,
        port: int,
        peer: Peer,
        description: str,
    ) -> None:
        """One TCP rule resource (ingress and egress rules take the same arguments)."""
        resource(
            f"{self._name}-{rule}",
            security_group_id=group.id,
            description=description,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            cidr_ipv4=peer.cidr,
            referenced_security_group_id=peer.security_group_id,
            tags=self._ctx.tags(COMPONENT, self._ctx.name(rule)),
            opts=child_opts(self),
        )
