"""Payment path: how a card payment reaches the services and what the services find behind them."""

from __future__ import annotations

import re

from tests.integration.conftest import Deployed
from tests.integration.support import (
    PATHS,
    SERVICES,
    container_definition,
    describe_listener,
    ecs_services,
    sg_rules,
)


def test_payment_request_enters_through_https_listener(deployed: Deployed) -> None:
    """A card payment reaches the platform only over HTTPS with a TLS 1.2+ policy."""
    o, aws = deployed.outputs, deployed.aws
    listener = describe_listener(aws, o["httpsListenerArn"])
    assert listener["Port"] == 443 and listener["Protocol"] == "HTTPS"
    assert listener["SslPolicy"].startswith(("ELBSecurityPolicy-TLS13-1-2", "ELBSecurityPolicy-TLS-1-2"))
    assert listener["Certificates"] and listener["Certificates"][0]["CertificateArn"].startswith("arn:aws:acm:")


def test_plain_http_is_only_redirected(deployed: Deployed) -> None:
    """Cardholder data never travels over plain HTTP: port 80 only redirects to HTTPS."""
    o, aws = deployed.outputs, deployed.aws
    listener = describe_listener(aws, o["httpListenerArn"])
    assert listener["Port"] == 80
    actions = listener["DefaultActions"]
    assert [a["Type"] for a in actions] == ["redirect"]
    redirect = actions[0]["RedirectConfig"]
    assert redirect["Protocol"] == "HTTPS" and redirect["Port"] == "443" and redirect["StatusCode"] == "HTTP_301"


def test_payment_path_routes_to_payment_service(deployed: Deployed) -> None:
    """/payment/* reaches the payment service's target group, and each service has its own path."""
    o, aws = deployed.outputs, deployed.aws
    rules = aws("elbv2").describe_rules(ListenerArn=o["httpsListenerArn"])["Rules"]
    routed: dict[str, str] = {}
    for rule in rules:
        if rule.get("IsDefault"):
            continue
        paths = [
            v
            for c in rule["Conditions"]
            if c["Field"] == "path-pattern"
            for v in (c.get("Values") or c["PathPatternConfig"]["Values"])
        ]
        forward = [a for a in rule["Actions"] if a["Type"] == "forward"]
        for path in paths:
            routed[path] = forward[0]["TargetGroupArn"]
    for service in SERVICES:
        assert routed.get(PATHS[service]) == o["targetGroupArns"][service], service


def test_unknown_paths_get_404(deployed: Deployed) -> None:
    """Requests for paths no service owns are answered 404 at the edge, never forwarded."""
    o, aws = deployed.outputs, deployed.aws
    default = describe_listener(aws, o["httpsListenerArn"])["DefaultActions"][0]
    assert default["Type"] == "fixed-response"
    assert default["FixedResponseConfig"]["StatusCode"] == "404"


#: Where each service answers its health check (lib/config.py: ``health_check_path=f"/{name}/health"``): a target
#: group probing any other path would keep a broken task in rotation, or take a healthy one out.
HEALTH_CHECK_PATHS = {"api": "/api/health", "payment": "/payment/health", "notification": "/notification/health"}

#: The target groups' health checks as deployed. README ("Running the platform locally"): "30 s apart, two passes to
#: enter rotation"; the rest is the program's declaration (lib/components/load_balancer.py): any 2xx or 3xx is
#: healthy, a probe times out after 5 s, three failures take a target out.
HEALTH_CHECK = {
    "HealthCheckEnabled": True,
    "HealthCheckProtocol": "HTTP",
    "HealthCheckPort": "traffic-port",
    "Matcher": {"HttpCode": "200-399"},
    "HealthCheckIntervalSeconds": 30,
    "HealthCheckTimeoutSeconds": 5,
    "HealthyThresholdCount": 2,
    "UnhealthyThresholdCount": 3,
}


def test_target_groups_health_check_the_services(deployed: Deployed) -> None:
    """A failing payment task leaves rotation within the agreed window: each target group probes its service's own health path."""
    o, aws = deployed.outputs, deployed.aws
    groups = aws("elbv2").describe_target_groups(TargetGroupArns=list(o["targetGroupArns"].values()))["TargetGroups"]
    by_arn = {g["TargetGroupArn"]: g for g in groups}
    assert len(by_arn) == len(SERVICES)
    for service in SERVICES:
        group = by_arn[o["targetGroupArns"][service]]
        name = group["TargetGroupName"]
        assert (group["TargetType"], group["Protocol"], group["Port"], group["VpcId"]) == ("ip", "HTTP", 8080, o["vpcId"]), name
        assert group["HealthCheckPath"] == HEALTH_CHECK_PATHS[service], name
        assert {key: group.get(key) for key in HEALTH_CHECK} == HEALTH_CHECK, name


def test_services_run_behind_their_target_groups(deployed: Deployed) -> None:
    """Each ECS service is registered with the target group the ALB forwards its path to."""
    o, aws = deployed.outputs, deployed.aws
    services = ecs_services(aws, o)
    assert len(services) == 3
    by_name = {s["serviceName"]: s for s in services}
    for name in SERVICES:
        service = by_name[o["serviceNames"][name]]
        assert service["launchType"] == "FARGATE" or service.get("capacityProviderStrategy"), name
        assert [lb["targetGroupArn"] for lb in service["loadBalancers"]] == [o["targetGroupArns"][name]], name


def test_services_reach_aurora_and_nothing_else_does(deployed: Deployed) -> None:
    """The ledger database accepts PostgreSQL connections from the services only."""
    o, aws = deployed.outputs, deployed.aws
    ingress = [r for r in sg_rules(aws, o["databaseSecurityGroupId"]) if not r["IsEgress"]]
    assert ingress
    for rule in ingress:
        assert (rule["FromPort"], rule["ToPort"], rule["IpProtocol"]) == (5432, 5432, "tcp")
        assert rule.get("ReferencedGroupInfo", {}).get("GroupId") == o["servicesSecurityGroupId"]
        assert "CidrIpv4" not in rule


def test_services_reach_redis_and_nothing_else_does(deployed: Deployed) -> None:
    """The session and idempotency cache accepts Redis connections from the services only."""
    o, aws = deployed.outputs, deployed.aws
    ingress = [r for r in sg_rules(aws, o["cacheSecurityGroupId"]) if not r["IsEgress"]]
    assert ingress
    for rule in ingress:
        assert (rule["FromPort"], rule["ToPort"]) == (6379, 6379)
        assert rule.get("ReferencedGroupInfo", {}).get("GroupId") == o["servicesSecurityGroupId"]


def test_services_accept_traffic_only_from_alb_and_peers(deployed: Deployed) -> None:
    """Payment containers cannot be reached from the internet, only through the load balancer."""
    o, aws = deployed.outputs, deployed.aws
    allowed = {o["albSecurityGroupId"], o["servicesSecurityGroupId"]}
    ingress = [r for r in sg_rules(aws, o["servicesSecurityGroupId"]) if not r["IsEgress"]]
    assert ingress
    for rule in ingress:
        assert rule.get("ReferencedGroupInfo", {}).get("GroupId") in allowed, rule
        assert "CidrIpv4" not in rule and "CidrIpv6" not in rule


def test_services_authenticate_as_their_own_users_and_hold_no_secret(deployed: Deployed) -> None:
    """No task of a service holds a password or token: PostgreSQL and Redis authenticate the task role (IAM)."""
    o, aws = deployed.outputs, deployed.aws
    for service, db_user in (("api", None), ("payment", "scalepay_payment"), ("notification", "scalepay_notification")):
        container = container_definition(aws, o, service)
        assert container.get("secrets", []) == [], service
        env = {v["name"]: v["value"] for v in container.get("environment", [])}
        for name in env:
            assert not re.search(r"PASSWORD|TOKEN|SECRET", name, re.I), f"{service}: {name}"
        assert env.get("DB_USER") == db_user and (db_user is None or env["DB_AUTH"] == "iam"), service
    payment = {v["name"]: v["value"] for v in container_definition(aws, o, "payment")["environment"]}
    assert (payment["REDIS_USER"], payment["REDIS_AUTH"]) == (o["redisUserIds"]["payment"], "iam")


def test_only_the_migrate_task_receives_the_master_secret(deployed: Deployed) -> None:
    """The Aurora master credentials reach one one-off task only, from Secrets Manager, never a service."""
    o, aws = deployed.outputs, deployed.aws
    task = aws("ecs").describe_task_definition(taskDefinition=o["migrateTaskDefinitionArn"])["taskDefinition"]
    (container,) = task["containerDefinitions"]
    assert {s["name"]: s["valueFrom"] for s in container["secrets"]} == {
        "DB_MASTER_USERNAME": f"{o['auroraSecretArn']}:username::",
        "DB_MASTER_PASSWORD": f"{o['auroraSecretArn']}:password::",
    }
    assert task["executionRoleArn"] != o["taskExecutionRoleArn"]


def test_every_image_a_task_runs_is_in_the_stack_registry(deployed: Deployed) -> None:
    """Tasks pull from the stack's own ECR repositories, where the release step pushed each image."""
    o, aws = deployed.outputs, deployed.aws
    for workload, image in o["serviceImages"].items():
        assert image.startswith(f"{o['accountId']}.dkr.ecr."), image
        repository, tag = image.split("/", 1)[1].rsplit(":", 1)
        found = aws("ecr").describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])["imageDetails"]
        assert found, f"{workload}: {image} is not in ECR"
    for service in SERVICES:
        assert container_definition(aws, o, service)["image"] == o["serviceImages"][service], service


def test_services_know_where_the_data_lives(deployed: Deployed) -> None:
    """The payment service is configured with the deployed Aurora and Redis endpoints."""
    o, aws = deployed.outputs, deployed.aws
    values = {v["value"] for v in container_definition(aws, o, "payment").get("environment", [])}
    assert o["auroraWriterEndpoint"] in values
    assert o["redisPrimaryEndpoint"] in values
