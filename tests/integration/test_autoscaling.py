"""Scaling: the Black Friday surge bounds and what drives scaling."""

from __future__ import annotations

from tests.expectations import EXPECTED
from tests.integration.conftest import Deployed
from tests.integration.support import (
    SERVICES,
    ecs_services,
)


def test_black_friday_surge_bounds(deployed: Deployed) -> None:
    """On a Black Friday surge every service can scale to its ceiling and never below its floor."""
    o, aws = deployed.outputs, deployed.aws
    ids = [f"service/{o['ecsClusterName']}/{o['serviceNames'][s]}" for s in SERVICES]
    targets = aws("application-autoscaling").describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=ids)["ScalableTargets"]
    assert len(targets) == 3
    for target in targets:
        expected = EXPECTED[deployed.env]
        assert (target["MinCapacity"], target["MaxCapacity"]) == (expected.min_tasks, expected.max_tasks), target["ResourceId"]
        assert target["ScalableDimension"] == "ecs:service:DesiredCount"


def test_scaling_follows_cpu_memory_and_requests(deployed: Deployed) -> None:
    """Services scale on CPU, memory and requests per task at the table's targets, with cooldowns that stop flapping."""
    o, aws, expected = deployed.outputs, deployed.aws, EXPECTED[deployed.env]
    for service in SERVICES:
        resource = f"service/{o['ecsClusterName']}/{o['serviceNames'][service]}"
        policies = aws("application-autoscaling").describe_scaling_policies(ServiceNamespace="ecs", ResourceId=resource)[
            "ScalingPolicies"
        ]
        targets = {}
        for policy in policies:
            config = policy["TargetTrackingScalingPolicyConfiguration"]
            targets[config["PredefinedMetricSpecification"]["PredefinedMetricType"]] = config["TargetValue"]
            # Exact cooldowns from the table: a shorter scale-in cooldown makes the service flap under a surge.
            assert (config["ScaleOutCooldown"], config["ScaleInCooldown"]) == (
                expected.scale_out_cooldown_seconds,
                expected.scale_in_cooldown_seconds,
            ), policy["PolicyName"]
        # The exact target per metric: a target raised from 60% to 90% scales out only once tasks are saturated.
        assert targets == {
            "ECSServiceAverageCPUUtilization": expected.cpu_target_percent,
            "ECSServiceAverageMemoryUtilization": expected.memory_target_percent,
            "ALBRequestCountPerTarget": expected.requests_per_target,
        }, service


def test_services_start_at_their_floor(deployed: Deployed) -> None:
    """A fresh deployment runs exactly the minimum task count per service: no under-capacity, no over-provisioned bill."""
    o, aws = deployed.outputs, deployed.aws
    services = ecs_services(aws, o)
    assert len(services) == len(SERVICES)
    for service in services:
        # Exactly the floor: the stack sets desiredCount to minTasks and leaves it to autoscaling afterwards
        # (ignore_changes), so a deployment that starts above or below it was configured with another floor.
        assert service["desiredCount"] == EXPECTED[deployed.env].min_tasks, service["serviceName"]


def test_services_run_the_declared_release(deployed: Deployed) -> None:
    """Each service runs exactly the task definition revision the stack declared, nothing stale."""
    o, aws = deployed.outputs, deployed.aws
    by_name = {s["serviceName"]: s for s in ecs_services(aws, o)}
    for service in SERVICES:
        assert by_name[o["serviceNames"][service]]["taskDefinition"] == o["taskDefinitionArns"][service], service
