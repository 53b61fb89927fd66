"""Images before the first `pulumi up` (issue #8.2): bootstrap targets, push commands, the emulator push and check."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from services.images import read_dockerfile
from tools import stack_config
from tools.emulator import server
from tools.evaluate import Evaluation
from tools.release.images import (
    DOCKERFILE,
    ImageRef,
    bootstrap_targets,
    image_config,
    image_refs,
    missing_images,
    push,
    push_commands,
    push_to_emulator,
)

WORKLOADS = ["api", "migrate", "notification", "payment"]


def test_bootstrap_targets_create_the_repositories_and_only_what_they_need(evaluated: Callable[[str], Evaluation]) -> None:
    evaluation = evaluated("staging")
    targets = bootstrap_targets(evaluation)
    by_urn = {r.urn: r for r in evaluation.registrations}
    chosen = [by_urn[u] for u in targets]
    assert sorted(r.name for r in chosen if r.type == "aws:ecr/repository:Repository") == [f"{w}-repository" for w in WORKLOADS]
    assert len([r for r in chosen if r.type == "aws:ecr/lifecyclePolicy:LifecyclePolicy"]) == 4
    # The repositories are encrypted with the data key: it must be created first, in the same targeted update.
    assert [r.name for r in chosen if r.type == "aws:kms/key:Key"] == ["keys-data"]
    # Nothing that runs a task (it would fail to pull) and nothing unrelated.
    assert not [r.name for r in chosen if r.type.startswith(("aws:ecs/", "aws:rds/", "aws:elasticache/", "aws:lb/"))]
    # Closed under dependencies and parents, so `pulumi up --target` has everything it needs.
    for registration in chosen:
        assert set(registration.depends_on) <= set(targets), registration.name
        # The program's root stack resource always exists; every other parent is targeted too.
        assert registration.parent in targets or "::pulumi:pulumi:Stack::" in registration.parent, registration.name


def test_push_commands_log_in_once_then_build_and_push_each_image(evaluated: Callable[[str], Evaluation]) -> None:
    images = image_refs(evaluated("prod"), "210987654321", "eu-west-1", "1.0.0")
    assert [i.reference for i in images] == [
        f"210987654321.dkr.ecr.eu-west-1.amazonaws.com/scalepay-{w}-prod:1.0.0" for w in WORKLOADS
    ]
    commands = push_commands(images, "eu-west-1")
    assert commands[0] == (
        "aws ecr get-login-password --region eu-west-1 | "
        "docker login --username AWS --password-stdin 210987654321.dkr.ecr.eu-west-1.amazonaws.com"
    )
    assert commands[1:3] == [
        "docker build --file services/Dockerfile --target api --tag "
        "210987654321.dkr.ecr.eu-west-1.amazonaws.com/scalepay-api-prod:1.0.0 services",
        "docker push 210987654321.dkr.ecr.eu-west-1.amazonaws.com/scalepay-api-prod:1.0.0",
    ]
    assert len(commands) == 1 + 2 * len(WORKLOADS)
    ran: list[str] = []
    push(images, "eu-west-1", runner=lambda command: ran.append(command) or 0)
    assert ran == commands
    # A failed push stops the sequence (no image is reported pushed that was not).
    with pytest.raises(RuntimeError, match="failed: docker push"):
        push(images, "eu-west-1", runner=lambda command: 1 if "docker push" in command else 0)


def test_the_image_config_is_what_the_dockerfile_target_declares() -> None:
    config = image_config(read_dockerfile(DOCKERFILE, "payment"))["config"]
    assert config["User"] == "10001:10001"
    assert config["Cmd"] == ["python", "-m", "services.payment"]
    assert "/tmp" in config["Volumes"]
    assert config["Healthcheck"]["Test"] == ["CMD", "python", "-m", "services.common.healthcheck"]


@pytest.fixture(scope="module")
def ecr() -> Iterator[object]:
    emulator = server.start(in_process=True)
    try:
        yield boto3.client(
            "ecr", endpoint_url=emulator.endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
        )
    finally:
        emulator.stop()


def test_check_reports_missing_images_until_they_are_pushed(ecr: object) -> None:
    client = ecr
    client.create_repository(repositoryName="scalepay-api-dev", imageTagMutability="IMMUTABLE")  # type: ignore[attr-defined]
    image = ImageRef("api", "scalepay-api-dev", "123456789012.dkr.ecr.us-east-1.amazonaws.com", "1.0.0")
    absent = ImageRef("payment", "scalepay-payment-dev", image.registry, "1.0.0")  # no repository at all
    assert missing_images(client, [image, absent]) == [image, absent]
    digest = push_to_emulator(client, image)
    assert digest.startswith("sha256:")
    assert missing_images(client, [image, absent]) == [absent]
    # Immutable tags: the same tag cannot be pushed twice with another manifest (ECR refuses, so does the emulator).
    stored = client.batch_get_image(repositoryName="scalepay-api-dev", imageIds=[{"imageTag": "1.0.0"}])  # type: ignore[attr-defined]
    manifest = json.loads(stored["images"][0]["imageManifest"])
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"


# --- the stack configuration, read like `pulumi up` reads it (issue #9.1) ------------------------------


def test_stack_config_layers_defaults_stack_file_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text(
        "name: scalepayments\nconfig:\n  scalepayments:costCenter:\n    type: string\n    default: platform\n"
        "  scalepayments:minTasks:\n    type: integer\n"
    )
    (tmp_path / "Pulumi.staging.yaml").write_text(
        "config:\n  aws:region: eu-west-1\n  scalepayments:minTasks: 3\n  scalepayments:wafEnabled: true\n  tags: [a, b]\n"
    )
    config = stack_config.load("staging", stack_config.parse_overrides("minTasks=4 aws:region=us-east-2"), tmp_path)
    assert config == {
        "scalepayments:costCenter": "platform",
        "scalepayments:minTasks": "4",
        "scalepayments:wafEnabled": "true",
        "scalepayments:tags": '["a", "b"]',
        "aws:region": "us-east-2",
    }
    assert stack_config.load("qa", None, tmp_path) == {"scalepayments:costCenter": "platform"}


def test_stack_config_refuses_secrets_and_malformed_pairs(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: scalepayments\n")
    (tmp_path / "Pulumi.prod.yaml").write_text("config:\n  scalepayments:alarmHttpsEndpoint:\n    secure: AAABAJ==\n")
    with pytest.raises(stack_config.StackConfigError, match="alarmHttpsEndpoint is a secret"):
        stack_config.load("prod", None, tmp_path)
    with pytest.raises(stack_config.StackConfigError, match="expected key=value"):
        stack_config.parse_overrides("minTasks")
