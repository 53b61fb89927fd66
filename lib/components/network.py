"""Three-tier VPC: public (ALB), private (services, via NAT) and isolated database subnets."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from lib.cidr import plan_subnets
from lib.components.base import Component, LoggingArgs, child_opts, encrypted_log_group
from lib.config import NetworkSettings
from lib.iam_policies import policy_document, policy_statement, service_assume_role_policy
from lib.naming import NameKind

COMPONENT = "network"

#: The opt-in status of a region's regular availability zones (Local and Wavelength Zones are "opted-in").
REGULAR_ZONES_OPT_IN_STATUS = "opt-in-not-required"
ANYWHERE = "0.0.0.0/0"
HTTPS = 443

#: Interface endpoints that let Fargate tasks pull images, ship logs and read secrets without
#: crossing the NAT gateway (ECR layers come from S3, served by the gateway endpoint).
INTERFACE_ENDPOINT_SERVICES: tuple[str, ...] = ("ecr.api", "ecr.dkr", "logs", "secretsmanager")

#: The only CloudWatch Logs actions the flow-log service needs on its (pre-created) log group.
FLOW_LOG_ACTIONS: tuple[str, ...] = ("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams")


@dataclass(frozen=True, kw_only=True)
class NetworkArgs(LoggingArgs):
    """Inputs of :class:`Network`."""

    settings: NetworkSettings


def az_letter(index: int) -> str:
    """Letter used in names for the ``index``-th AZ of the plan (``a``, ``b``, ``c``)."""
    return chr(ord("a") + index)


def first_zones(names: list[str], count: int) -> list[str]:
    """The first ``count`` AZ names; fails with a clear message when the region has fewer."""
    if len(names) < count:
        raise ValueError(f"the region offers {len(names)} available AZs ({names}); azCount asks for {count}")
    return list(names[:count])


def flow_logs_trust_policy(account_id: str, region: str, partition: str) -> dict[str, Any]:
    """Trust policy: only the VPC Flow Logs service, acting for this account's flow logs, may assume the role."""
    # Confused-deputy protection, as the VPC Flow Logs documentation recommends.
    return service_assume_role_policy(
        "AllowVpcFlowLogs",
        "vpc-flow-logs.amazonaws.com",
        {
            "StringEquals": {"aws:SourceAccount": account_id},
            "ArnLike": {"aws:SourceArn": f"arn:{partition}:ec2:{region}:{account_id}:vpc-flow-log/*"},
        },
    )


def flow_logs_role_policy(log_group_arn: str) -> dict[str, Any]:
    """Inline policy: write flow-log records to one log group (the group ARN and its streams) and nothing else."""
    return policy_document(
        policy_statement("WriteFlowLogRecords", list(FLOW_LOG_ACTIONS), resource=[log_group_arn, f"{log_group_arn}:*"])
    )


def _trust_policy_json(region: str) -> Callable[[list[Any]], str]:
    """``[account_id, partition] -> JSON trust policy``, for ``Output.all(...).apply``."""

    def render(values: list[Any]) -> str:
        return json.dumps(flow_logs_trust_policy(str(values[0]), region, str(values[1])))

    return render


class Network(Component):
    """VPC, subnets per tier and AZ, IGW, NAT gateways, route tables, flow logs, VPC endpoints."""

    vpc_id: pulumi.Output[str]
    vpc_cidr: str
    availability_zones: pulumi.Output[list[str]]
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]
    database_subnet_ids: list[pulumi.Output[str]]
    nat_gateway_ids: list[pulumi.Output[str]]
    flow_log_group_name: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("scalepayments:network:Network", name, None, opts)
        self._name = name
        self._ctx = args.context
        settings = args.settings
        az_count = settings.az_count
        plan = plan_subnets(settings.vpc_cidr, az_count)
        invoke_opts = pulumi.InvokeOutputOptions(parent=self)

        # Only the region's regular zones: opted-in Local and Wavelength Zones are "available" too, sort
        # before them (us-east-1-bos-1a < us-east-1a) and offer neither every instance type nor NAT gateways.
        zones = aws.get_availability_zones_output(
            state="available",
            filters=[aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=[REGULAR_ZONES_OPT_IN_STATUS])],
            opts=invoke_opts,
        )
        self.availability_zones = zones.names.apply(lambda names: first_zones(names, az_count))
        self.vpc_cidr = settings.vpc_cidr

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=settings.vpc_cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,  # interface endpoints' private DNS needs both DNS flags
            tags=self._tags("vpc"),
            opts=child_opts(self),
        )
        self.vpc_id = vpc.id

        # Adopt the VPC's default security group and strip its rules: nothing may fall back to it.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=vpc.id,
            tags=self._tags("default-sg"),
            opts=child_opts(self),
        )

        # --- subnets: the CIDRs come from the pure plan, AZ i gets index i of every tier ---------------
        public = self._subnets(vpc, "public", plan.public)
        private = self._subnets(vpc, "private", plan.private)
        database = self._subnets(vpc, "database", plan.database)

        # --- internet gateway and NAT ------------------------------------------------------------------
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=self._tags("igw"), opts=child_opts(self))
        nat_count = 1 if settings.single_nat_gateway else az_count
        nats: list[aws.ec2.NatGateway] = []
        for i in range(nat_count):
            letter = az_letter(i)
            eip = aws.ec2.Eip(
                f"{name}-nat-eip-{letter}", domain="vpc", tags=self._tags(f"nat-eip-{letter}"), opts=child_opts(self)
            )
            nats.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{letter}",
                    allocation_id=eip.id,
                    subnet_id=public[i].id,
                    connectivity_type="public",
                    tags=self._tags(f"nat-{letter}"),
                    # A public NAT gateway needs the IGW attached first; no input references it.
                    opts=child_opts(self, pulumi.ResourceOptions(depends_on=[igw])),
                )
            )
        self.nat_gateway_ids = [nat.id for nat in nats]

        # --- route tables: public -> IGW, private (per AZ) -> its NAT, database -> local only ------------
        public_rt = self._route_table(vpc, "public-rt", "public")
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_rt.id,
            destination_cidr_block=ANYWHERE,
            gateway_id=igw.id,
            opts=child_opts(self),
        )
        self._associate(public_rt, public, "public")

        private_rts: list[aws.ec2.RouteTable] = []
        for i, subnet in enumerate(private):
            letter = az_letter(i)
            rt = self._route_table(vpc, f"private-rt-{letter}", "private")
            # Per-AZ NAT keeps an AZ outage from cutting the other AZs' egress; dev shares one for cost.
            nat = nats[0] if settings.single_nat_gateway else nats[i]
            aws.ec2.Route(
                f"{name}-private-default-{letter}",
                route_table_id=rt.id,
                destination_cidr_block=ANYWHERE,
                nat_gateway_id=nat.id,
                opts=child_opts(self),
            )
            self._associate(rt, [subnet], f"private-{letter}")
            private_rts.append(rt)

        # Isolated tier: the implicit local route only, so the databases can never reach the internet.
        database_rt = self._route_table(vpc, "database-rt", "database")
        self._associate(database_rt, database, "database")

        # --- VPC endpoints -------------------------------------------------------------------------------
        # S3 gateway endpoint: free, keeps ECR layer pulls and S3 traffic off the NAT gateway.
        aws.ec2.VpcEndpoint(
            f"{name}-vpce-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{self._ctx.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in private_rts] + [database_rt.id],
            tags=self._tags("vpce-s3"),
            opts=child_opts(self),
        )
        if settings.interface_endpoints:
            self._interface_endpoints(vpc, settings.vpc_cidr, private)

        # --- flow logs -------------------------------------------------------------------------------------
        self.flow_log_group_name = self._flow_logs(vpc, args)

        self.public_subnet_ids = [s.id for s in public]
        self.private_subnet_ids = [s.id for s in private]
        self.database_subnet_ids = [s.id for s in database]
        self.finish()

    # --- helpers ---------------------------------------------------------------------------------------

    def _tags(self, component: str, tier: str | None = None) -> dict[str, str]:
        """Standard tags + Name ``scalepay-<component>-<env>`` (+ ``Tier`` for subnets and route tables)."""
        tags = self._ctx.tags(COMPONENT, self._ctx.name(component))
        if tier:
            tags["Tier"] = tier
        return tags

    def _subnets(self, vpc: aws.ec2.Vpc, tier: str, cidrs: tuple[str, ...]) -> list[aws.ec2.Subnet]:
        """One subnet of ``tier`` per AZ; none assigns public IPs (the ALB and NAT do not need it)."""
        subnets: list[aws.ec2.Subnet] = []
        for i, cidr in enumerate(cidrs):
            letter = az_letter(i)
            subnets.append(
                aws.ec2.Subnet(
                    f"{self._name}-{tier}-{letter}",
                    vpc_id=vpc.id,
                    cidr_block=cidr,
                    availability_zone=self.availability_zones.apply(operator.itemgetter(i)),
                    map_public_ip_on_launch=False,
                    tags=self._tags(f"{tier}-{letter}", tier),
                    opts=child_opts(self),
                )
            )
        return subnets

    def _route_table(self, vpc: aws.ec2.Vpc, component: str, tier: str) -> aws.ec2.RouteTable:
        """A route table with no inline routes (routes are separate aws.ec2.Route resources)."""
        return aws.ec2.RouteTable(
            f"{self._name}-{component}", vpc_id=vpc.id, tags=self._tags(component, tier), opts=child_opts(self)
        )

    def _associate(self, route_table: aws.ec2.RouteTable, subnets: list[aws.ec2.Subnet], label: str) -> None:
        """Associate each subnet with ``route_table``."""
        for i, subnet in enumerate(subnets):
            aws.ec2.RouteTableAssociation(
                f"{self._name}-{label}-rta-{az_letter(i)}",
                route_table_id=route_table.id,
                subnet_id=subnet.id,
                opts=child_opts(self),
            )

    def _interface_endpoints(self, vpc: aws.ec2.Vpc, vpc_cidr: str, private: list[aws.ec2.Subnet]) -> None:
        """ECR, Logs and Secrets Manager endpoints in the private subnets, reachable on 443 from the VPC only."""
        sg_name = self._ctx.name("vpce-sg")
        sg = aws.ec2.SecurityGroup(
            f"{self._name}-vpce-sg",
            name=sg_name,
            description="Interface VPC endpoints: HTTPS from inside the VPC only",
            vpc_id=vpc.id,
            tags=self._tags("vpce-sg"),
            opts=child_opts(self),
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-vpce-in-https",
            security_group_id=sg.id,
            description="HTTPS to AWS API endpoints from inside the VPC",
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            cidr_ipv4=vpc_cidr,
            tags=self._tags("vpce-in-https"),
            opts=child_opts(self),
        )
        for service in INTERFACE_ENDPOINT_SERVICES:
            slug = service.replace(".", "-")
            aws.ec2.VpcEndpoint(
                f"{self._name}-vpce-{slug}",
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{self._ctx.region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[s.id for s in private],
                security_group_ids=[sg.id],
                tags=self._tags(f"vpce-{slug}"),
                opts=child_opts(self),
            )

    def _flow_logs(self, vpc: aws.ec2.Vpc, args: NetworkArgs) -> pulumi.Output[str]:
        """All VPC traffic to a KMS-encrypted log group, through a role that can write only there."""
        ctx = self._ctx
        invoke_opts = pulumi.InvokeOutputOptions(parent=self)
        account_id = aws.get_caller_identity_output(opts=invoke_opts).account_id
        partition = aws.get_partition_output(opts=invoke_opts).partition

        log_group = encrypted_log_group(
            f"{self._name}-flow-logs", f"/aws/vpc/{ctx.name('flow-logs')}", args, ctx.tags(COMPONENT), child_opts(self)
        )
        role = aws.iam.Role(
            f"{self._name}-flow-logs-role",
            name=ctx.name("flow-logs", NameKind.IAM_ROLE),
            description="Lets VPC Flow Logs write to its own log group",
            assume_role_policy=pulumi.Output.all(account_id, partition).apply(_trust_policy_json(ctx.region)),
            tags=ctx.tags(COMPONENT),
            opts=child_opts(self),
        )
        role_policy = aws.iam.RolePolicy(
            f"{self._name}-flow-logs-policy",
            name=ctx.name("flow-logs-write"),
            role=role.id,
            policy=log_group.arn.apply(lambda arn: json.dumps(flow_logs_role_policy(arn))),
            opts=child_opts(self),
        )
        aws.ec2.FlowLog(
            f"{self._name}-flow-log",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,  # 1-minute records: faster incident investigation
            tags=self._tags("flow-log"),
            # The service checks the role's permissions at creation; the policy is a separate resource.
            opts=child_opts(self, pulumi.ResourceOptions(depends_on=[role_policy])),
        )
        return log_group.name
