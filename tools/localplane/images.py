"""Which local build an image in the stack's ECR stands for, and what that image holds.

The local task runner runs no containers. It runs an image's command (``ENTRYPOINT`` + ``CMD``) as a process
from this checkout, so it must know that the image a task definition names *is* a build of one of the
targets of our Dockerfile: the manifest pushed to the emulator's ECR (``tools/release``) carries the digest of the
image configuration a build of a target of ``services/Dockerfile`` produces, and :func:`resolve_image` finds the
target with that digest. An image that is not in ECR fails as ECS fails a task (``CannotPullContainerError``); one that
no Dockerfile target of this checkout produces (pushed from another revision) is refused.

What the image puts in its filesystem is mapped to the checkout: the code the Dockerfile copies into ``/app``
is this repository's ``services/`` package, and a file fetched with ``ADD <url>`` is stood in for by a local
file the caller provides (the RDS CA bundle by the local CA's certificate).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.images import ImageSpec, parse_stages
from tools.emulator.engine import Aws
from tools.localplane.deployed import NotRunnableError
from tools.release.images import image_config, oci_manifest

ROOT = Path(__file__).resolve().parents[2]
#: The services' Dockerfile: one build target (stage) per image.
DOCKERFILE = ROOT / "services" / "Dockerfile"
#: Where the images put their code (``WORKDIR /app``, ``COPY common/ /app/services/common/``).
IMAGE_CODE_ROOT = "/app"
#: The RDS certificate bundle the database clients' images ``ADD`` from AWS.
RDS_TRUST_STORE = "https://truststore.pki.rds.amazonaws.com/"


@dataclass(frozen=True)
class LocalImage:
    """An image in ECR and the Dockerfile target of this checkout it was built from."""

    reference: str
    dockerfile: Path
    target: str
    spec: ImageSpec
    downloads: Mapping[str, str]  # path in the image -> the URL ``ADD`` fetched it from

    @property
    def argv(self) -> tuple[str, ...]:
        """The image's command."""
        return self.spec.argv

    @property
    def run_as(self) -> tuple[int, int] | None:
        """Numeric ``USER uid:gid`` of the image (None when it names no numeric user)."""
        user = (self.spec.user or "").split(":")
        if not user[0].isdigit():
            return None
        gid = user[1] if len(user) > 1 and user[1].isdigit() else user[0]
        return int(user[0]), int(gid)


def _config_digest(spec: ImageSpec) -> str:
    return str(json.loads(oci_manifest(image_config(spec)))["config"]["digest"])


def _downloads(spec: ImageSpec) -> dict[str, str]:
    found = {}
    for instruction in spec.stage_instructions("ADD"):
        words = shlex.split(instruction.args)
        if len(words) == 2 and words[0].startswith(("https://", "http://")):
            found[words[1]] = words[0]
    return found


def split_reference(reference: str) -> tuple[str, str, str]:
    """``<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>`` -> (registry, repository, tag)."""
    registry, _, rest = reference.partition("/")
    repository, _, tag = rest.rpartition(":")
    if ".dkr.ecr." not in registry or not repository or not tag:
        raise NotRunnableError(
            f"image {reference!r} is not in a private ECR repository: the local runner runs only images pushed to the stack's ECR"
        )
    return registry, repository, tag


def resolve_image(aws: Aws, reference: str, dockerfile: Path = DOCKERFILE) -> LocalImage:
    """The target of ``dockerfile`` whose build ``reference`` (in the account's ECR) is; :class:`NotRunnableError` otherwise."""
    registry, repository, tag = split_reference(reference)
    if not registry.startswith(f"{aws.account_id}."):
        raise NotRunnableError(f"image {reference}: another account's registry (this stack runs in {aws.account_id})")
    ecr = aws.client("ecr")
    images = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageTag": tag}]).get("images") or []
    if not images:
        raise NotRunnableError(f"CannotPullContainerError: {reference} not found in ECR (push it: README, 'Deploying to AWS')")
    digest = json.loads(images[0]["imageManifest"])["config"]["digest"]
    for target, spec in parse_stages(dockerfile.read_text(encoding="utf-8")).items():
        if _config_digest(spec) == digest:
            return LocalImage(reference, dockerfile, target, spec, _downloads(spec))
    raise NotRunnableError(f"image {reference}: built from no Dockerfile target of this checkout (config digest {digest})")
