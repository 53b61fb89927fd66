"""The service images: which repositories the stack creates, how to fill them, and whether they are filled.

Everything here reads the program's own resource graph (:func:`tools.evaluate.evaluate`), so the
repository names, the tag and the bootstrap targets cannot drift from ``lib/``.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.images import ImageSpec, read_dockerfile
from tools.evaluate import Evaluation, Registration

REPOSITORY = "aws:ecr/repository:Repository"
LIFECYCLE_POLICY = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
ROOT = Path(__file__).resolve().parents[2]
#: docker build context of every service image (services/Dockerfile copies from it).
BUILD_CONTEXT = "services"
#: The one Dockerfile of the service images (relative to the repository root): one build target per workload.
DOCKERFILE = "services/Dockerfile"

#: OCI media types of the manifest the emulator push writes (what ``docker push`` sends to ECR).
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


@dataclass(frozen=True)
class ImageRef:
    """One workload's image in its ECR repository."""

    workload: str
    repository: str  # repository name, e.g. scalepay-payment-prod
    registry: str  # <account>.dkr.ecr.<region>.amazonaws.com
    tag: str

    @property
    def reference(self) -> str:
        """``<registry>/<repository>:<tag>``, what the task definition names."""
        return f"{self.registry}/{self.repository}:{self.tag}"

    @property
    def target(self) -> str:
        """The build target (stage of :data:`DOCKERFILE`) the image is: the workload's own."""
        return self.workload


def repositories(evaluation: Evaluation) -> dict[str, Registration]:
    """``{workload: repository registration}``: the logical name is ``<workload>-repository``."""
    return {r.name.removesuffix("-repository"): r for r in evaluation.of_type(REPOSITORY)}


def bootstrap_targets(evaluation: Evaluation) -> list[str]:
    """URNs for ``pulumi up --target``: the repositories, their lifecycle policies and all they depend on.

    The closure follows every dependency Pulumi records (explicit ``depends_on`` and the resources whose
    outputs feed an input, e.g. the KMS data key) and the parent components, so the targeted update
    creates exactly what the repositories need and nothing that would start a service.
    """
    by_urn = {r.urn: r for r in evaluation.registrations}
    wanted = [r.urn for r in evaluation.registrations if r.type in (REPOSITORY, LIFECYCLE_POLICY)]
    closure: set[str] = set()
    pending = list(wanted)
    while pending:
        urn = pending.pop()
        if urn in closure or urn not in by_urn:
            continue
        closure.add(urn)
        registration = by_urn[urn]
        pending.extend(registration.depends_on)
        if registration.parent:
            pending.append(registration.parent)
    # Registration order is a valid creation order; keep it so the list reads like the program.
    return [r.urn for r in evaluation.registrations if r.urn in closure]


def image_refs(evaluation: Evaluation, account_id: str, region: str, tag: str) -> list[ImageRef]:
    """The image of every workload in this account and region."""
    registry = f"{account_id}.dkr.ecr.{region}.amazonaws.com"
    return [ImageRef(w, str(r.inputs["name"]), registry, tag) for w, r in sorted(repositories(evaluation).items())]


def push_commands(images: Sequence[ImageRef], region: str) -> list[str]:
    """The shell commands that log in to the registry, build every image and push it (what ``push`` runs)."""
    if not images:
        return []
    registries = sorted({i.registry for i in images})
    commands = [
        f"aws ecr get-login-password --region {shlex.quote(region)} | "
        f"docker login --username AWS --password-stdin {shlex.quote(registry)}"
        for registry in registries
    ]
    for image in images:
        commands.append(
            f"docker build --file {DOCKERFILE} --target {shlex.quote(image.target)} "
            f"--tag {shlex.quote(image.reference)} {BUILD_CONTEXT}"
        )
        commands.append(f"docker push {shlex.quote(image.reference)}")
    return commands


Runner = Callable[[str], int]


def run_shell(command: str) -> int:
    """Run one command through the shell from the repository root (the login step is a pipe)."""
    return subprocess.run(command, shell=True, cwd=ROOT, check=False).returncode  # our own commands: the login step is a pipe


def push(images: Sequence[ImageRef], region: str, runner: Runner = run_shell) -> None:
    """Build and push every image; stops at the first failing command with its text."""
    for command in push_commands(images, region):
        if runner(command) != 0:
            raise RuntimeError(f"failed: {command}")


def missing_images(ecr: Any, images: Iterable[ImageRef]) -> list[ImageRef]:
    """The images whose tag is not in its repository (ECR DescribeImages), i.e. tasks that could not start."""
    missing = []
    for image in images:
        try:
            ecr.describe_images(repositoryName=image.repository, imageIds=[{"imageTag": image.tag}])
        except ecr.exceptions.ImageNotFoundException:
            missing.append(image)
        except ecr.exceptions.RepositoryNotFoundException:
            missing.append(image)
    return missing


def image_config(spec: ImageSpec) -> dict[str, Any]:
    """The OCI image configuration a build of ``spec`` (one Dockerfile target) produces (user, command, environment, volumes)."""
    config: dict[str, Any] = {
        "User": spec.user or "",
        "WorkingDir": spec.workdir,
        "Env": [f"{k}={v}" for k, v in sorted(spec.env.items())],
        "Cmd": list(spec.cmd),
        "Volumes": {path: {} for path in spec.volumes},
        "ExposedPorts": {f"{port}/tcp" if "/" not in port else port: {} for port in spec.expose},
    }
    if spec.entrypoint:
        config["Entrypoint"] = list(spec.entrypoint)
    if spec.healthcheck is not None and spec.healthcheck.cmd is not None:
        config["Healthcheck"] = {"Test": ["CMD", *spec.healthcheck.cmd]}
    return {"architecture": "amd64", "os": "linux", "config": config, "rootfs": {"type": "layers", "diff_ids": []}}


def oci_manifest(config: Mapping[str, Any]) -> str:
    """An OCI image manifest for ``config`` (layers are not modelled: the emulator never runs the image)."""
    body = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": f"sha256:{hashlib.sha256(body).hexdigest()}", "size": len(body)},
            "layers": [],
        },
        sort_keys=True,
    )


def push_to_emulator(ecr: Any, image: ImageRef, root: Path = ROOT) -> str:
    """Stand-in for ``docker push`` against the emulator: put the image's manifest under its tag; returns the digest.

    The manifest's config digest is that of the configuration a build of the workload's Dockerfile target
    produces, so a changed Dockerfile is a new digest (immutable tags then refuse the push, as ECR does).
    The layers are not modelled: the emulator never runs an image.
    """
    manifest = oci_manifest(image_config(read_dockerfile(root / DOCKERFILE, image.target)))
    found = ecr.put_image(
        repositoryName=image.repository, imageManifest=manifest, imageManifestMediaType=OCI_MANIFEST, imageTag=image.tag
    )
    return str(found["image"]["imageId"]["imageDigest"])
