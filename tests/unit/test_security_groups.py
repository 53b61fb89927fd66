"""Security groups: every rule's port, protocol and peer, and the stack-wide 0.0.0.0/0 guard."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from lib.config import EnvironmentConfig
from tools.evaluate import Evaluation, Registration

ENVIRONMENTS = ("dev", "staging", "prod")
SECURITY = "scalepayments:security:SecurityGroups"
ROLES = ("alb", "services", "database", "cache")
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
ANYWHERE = "0.0.0.0/0"
POSTGRES, REDIS = 5432, 6379

#: (group, direction, port, peer) with peer "cidr:<block>" or "sg:<group>"
Rule = tuple[str, str, int, str]


@dataclass(frozen=True)
class Stack:
    """One evaluated environment, with its security groups indexed by role."""

    env: str
    evaluation: Evaluation
    config: EnvironmentConfig
    groups: dict[str, Registration]

    def role_of(self, sg_id: str) -> str:
        """Role (alb, services, ...) of the group with id ``sg_id``; any other group by its logical name."""
        for role, sg in self.groups.items():
            if sg.state["id"] == sg_id:
                return role
        return next(r.name for r in self.evaluation.custom() if r.state.get("id") == sg_id)

    def rules(self, type_: str) -> list[Registration]:
        """Rule resources of ``type_`` created by the SecurityGroups component."""
        return [r for r in self.evaluation.of_type(type_) if r.component == SECURITY]


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def stack(
    request: pytest.FixtureRequest, evaluated: Callable[[str], Evaluation], resolved: Callable[[str], EnvironmentConfig]
) -> Stack:
    env = str(request.param)
    evaluation = evaluated(env)
    groups = {}
    for sg in evaluation.of_type("aws:ec2/securityGroup:SecurityGroup"):
        if sg.component == SECURITY:
            groups[sg.inputs["name"].removeprefix("scalepay-").removesuffix(f"-sg-{env}")] = sg
    return Stack(env, evaluation, resolved(env), groups)


def _as_rule(stack: Stack, rule: Registration, direction: str) -> Rule:
    peer = rule.inputs.get("referencedSecurityGroupId")
    peer_text = f"sg:{stack.role_of(peer)}" if peer else f"cidr:{rule.inputs.get('cidrIpv4') or rule.inputs.get('cidrIpv6')}"
    assert rule.inputs["ipProtocol"] == "tcp", f"{rule.name}: protocol {rule.inputs['ipProtocol']}, only tcp is allowed"
    assert rule.inputs["fromPort"] == rule.inputs["toPort"], (
        f"{rule.name}: port range {rule.inputs['fromPort']}-{rule.inputs['toPort']}"
    )
    return (stack.role_of(rule.inputs["securityGroupId"]), direction, int(rule.inputs["fromPort"]), peer_text)


def _actual_rules(stack: Stack) -> list[Rule]:
    ingress = [_as_rule(stack, r, "ingress") for r in stack.rules(INGRESS)]
    return ingress + [_as_rule(stack, r, "egress") for r in stack.rules(EGRESS)]


def _expected_rules(stack: Stack) -> set[Rule]:
    ports = sorted({s.port for s in stack.config.compute.services})
    return {
        ("alb", "ingress", 443, f"cidr:{ANYWHERE}"),
        ("alb", "ingress", 80, f"cidr:{ANYWHERE}"),
        *{("alb", "egress", p, "sg:services") for p in ports},
        *{("services", "ingress", p, "sg:alb") for p in ports},
        *{("services", "ingress", p, "sg:services") for p in ports},
        *{("services", "egress", p, "sg:services") for p in ports},
        ("services", "egress", POSTGRES, "sg:database"),
        ("services", "egress", REDIS, "sg:cache"),
        ("services", "egress", 443, f"cidr:{ANYWHERE}"),
        ("database", "ingress", POSTGRES, "sg:services"),
        ("cache", "ingress", REDIS, "sg:services"),
    }


def test_four_named_groups_without_inline_rules(stack: Stack) -> None:
    assert set(stack.groups) == set(ROLES), f"{stack.env}: security groups {sorted(stack.groups)}"
    vpc = stack.evaluation.one("aws:ec2/vpc:Vpc")
    for role, sg in stack.groups.items():
        assert sg.inputs["vpcId"] == vpc.state["id"], f"{sg.name} is not in the platform VPC"
        assert sg.inputs.get("description"), f"{sg.name} has no description"
        assert not sg.inputs.get("ingress"), f"{sg.name}: inline ingress mixes with the rule resources"
        # No inline egress: the provider revokes AWS's default allow-all egress rule on create.
        assert not sg.inputs.get("egress"), f"{sg.name}: inline egress"
        assert sg.inputs["tags"]["Name"] == f"scalepay-{role}-sg-{stack.env}", sg.name


def test_rules_are_exactly_the_platform_paths(stack: Stack) -> None:
    actual = _actual_rules(stack)
    assert len(actual) == len(set(actual)), f"{stack.env}: duplicate rules {sorted(actual)}"
    expected = _expected_rules(stack)
    assert set(actual) == expected, (
        f"{stack.env}: unexpected {sorted(set(actual) - expected)}, missing {sorted(expected - set(actual))}"
    )


def test_services_ports_come_from_the_service_definitions(stack: Stack) -> None:
    ports = {s.port for s in stack.config.compute.services}
    from_alb = {r for r in _actual_rules(stack) if r[0] == "services" and r[3] == "sg:alb"}
    assert {r[2] for r in from_alb} == ports, f"{stack.env}: ALB reaches services on {sorted(r[2] for r in from_alb)}"


def test_data_tier_accepts_only_the_services_and_has_no_egress(stack: Stack) -> None:
    rules = _actual_rules(stack)
    assert [r for r in rules if r[0] == "database"] == [("database", "ingress", POSTGRES, "sg:services")]
    assert [r for r in rules if r[0] == "cache"] == [("cache", "ingress", REDIS, "sg:services")]
    assert stack.config.database.port == POSTGRES and stack.config.cache.port == REDIS


def test_every_rule_has_a_description_and_a_name_tag(stack: Stack) -> None:
    for rule in stack.rules(INGRESS) + stack.rules(EGRESS):
        assert rule.inputs.get("description"), f"{rule.name} has no description"
        assert rule.inputs.get("tags", {}).get("Name"), f"{rule.name} has no Name tag"


def test_http_is_documented_as_redirect_only(stack: Stack) -> None:
    (http,) = [r for r in stack.rules(INGRESS) if r.inputs["fromPort"] == 80]
    assert "redirect" in http.inputs["description"].lower(), f"{http.name}: {http.inputs['description']}"


def test_stack_exports_the_group_ids(stack: Stack) -> None:
    outputs = stack.evaluation.outputs
    for role, output in (
        ("alb", "albSecurityGroupId"),
        ("services", "servicesSecurityGroupId"),
        ("database", "databaseSecurityGroupId"),
        ("cache", "cacheSecurityGroupId"),
    ):
        assert outputs[output] == stack.groups[role].state["id"], f"{stack.env}: {output}"


# --- stack-wide guards: every security group rule of every component --------------------------------------


def _open_rules(stack: Stack) -> list[tuple[str, str, str, int, int]]:
    """(resource, group role, direction, from, to) of every rule open to the whole internet, in any form."""
    open_rules: list[tuple[str, str, str, int, int]] = []
    for type_, direction in ((INGRESS, "ingress"), (EGRESS, "egress")):
        for r in stack.evaluation.of_type(type_):
            if r.inputs.get("cidrIpv4") == ANYWHERE or r.inputs.get("cidrIpv6") == "::/0":
                role = stack.role_of(r.inputs["securityGroupId"])
                open_rules.append((r.name, role, direction, int(r.inputs.get("fromPort", -1)), int(r.inputs.get("toPort", -1))))
    for r in stack.evaluation.of_type("aws:ec2/securityGroupRule:SecurityGroupRule"):
        if ANYWHERE in (r.inputs.get("cidrBlocks") or []) or "::/0" in (r.inputs.get("ipv6CidrBlocks") or []):
            role = stack.role_of(r.inputs["securityGroupId"])
            open_rules.append((r.name, role, r.inputs["type"], int(r.inputs["fromPort"]), int(r.inputs["toPort"])))
    for sg in stack.evaluation.of_type("aws:ec2/securityGroup:SecurityGroup"):
        for direction in ("ingress", "egress"):
            for inline in sg.inputs.get(direction) or []:
                if ANYWHERE in (inline.get("cidrBlocks") or []) or "::/0" in (inline.get("ipv6CidrBlocks") or []):
                    role = stack.role_of(sg.state["id"])
                    open_rules.append((sg.name, role, direction, int(inline["fromPort"]), int(inline["toPort"])))
    return open_rules


def test_only_the_alb_accepts_the_internet_and_only_on_80_and_443(stack: Stack) -> None:
    inbound = [r for r in _open_rules(stack) if r[2] == "ingress"]
    for name, role, _, from_port, to_port in inbound:
        assert role == "alb", f"{name} ({stack.env}) opens group {role} to the internet"
        assert (from_port, to_port) in ((80, 80), (443, 443)), f"{name} opens ports {from_port}-{to_port} to the internet"
    assert sorted((r[3], r[4]) for r in inbound) == [(80, 80), (443, 443)], f"{stack.env}: internet ingress {inbound}"


def test_only_the_services_reach_the_internet_and_only_on_443(stack: Stack) -> None:
    outbound = [r for r in _open_rules(stack) if r[2] == "egress"]
    assert [(r[1], r[3], r[4]) for r in outbound] == [("services", 443, 443)], f"{stack.env}: internet egress {outbound}"
