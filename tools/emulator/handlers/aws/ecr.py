"""aws:ecr -- container image repositories and their lifecycle policies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Aws, Request, ResourceHandler
from tools.emulator.handlers.translate import as_json, delete_call, described, drop_none, read_by, tag_list

_NO_REPOSITORY = "RepositoryNotFoundException"
_NO_POLICY = ("LifecyclePolicyNotFoundException", _NO_REPOSITORY)

# --- aws:ecr/repository:Repository -----------------------------------------------------------------------


def _repository(aws: Aws, name: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """DescribeRepositories."""
    found = aws.client("ecr").describe_repositories(repositoryNames=[name])["repositories"][0]
    found_encryption = found.get("encryptionConfiguration") or {}
    return {
        "name": name,
        "arn": found["repositoryArn"],
        "registryId": found["registryId"],
        "repositoryUrl": found["repositoryUri"],
        "imageTagMutability": found.get("imageTagMutability"),
        "imageScanningConfiguration": {"scanOnPush": found.get("imageScanningConfiguration", {}).get("scanOnPush", False)},
        "encryptionConfigurations": [
            {"encryptionType": found_encryption.get("encryptionType"), "kmsKey": found_encryption.get("kmsKey", "")}
        ]
        if found_encryption
        else None,
    }


def create_repository(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ecr/repository:Repository -> CreateRepository, read back with DescribeRepositories."""
    name = req.physical_name("name", 256).lower()
    scanning = req.get("imageScanningConfiguration") or {}
    encryption = (req.get("encryptionConfigurations") or [{}])[0]
    aws.client("ecr").create_repository(
        **drop_none(
            {
                "repositoryName": name,
                "imageTagMutability": req.get("imageTagMutability"),
                "imageScanningConfiguration": {"scanOnPush": bool(scanning.get("scanOnPush"))} if scanning else None,
                "encryptionConfiguration": drop_none(
                    {"encryptionType": encryption.get("encryptionType"), "kmsKey": encryption.get("kmsKey") or None}
                )
                if encryption
                else None,
                "tags": tag_list(req.get("tags")) or None,
            }
        )
    )
    return described(aws, req, name, _repository)


read_repository = read_by(_repository, _NO_REPOSITORY)
# With force: images pushed into the emulator go with it (deleting is the decision).
delete_repository = delete_call("ecr", "delete_repository", "repositoryName", _NO_REPOSITORY, force=True)


# --- aws:ecr/lifecyclePolicy:LifecyclePolicy -------------------------------------------------------------


def _lifecycle_policy(aws: Aws, repository: str, _inputs: Mapping[str, Any]) -> dict[str, Any]:
    """GetLifecyclePolicy (the id is the repository name)."""
    found = aws.client("ecr").get_lifecycle_policy(repositoryName=repository)
    return {"registryId": found["registryId"], "policy": found["lifecyclePolicyText"]}


def create_lifecycle_policy(aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """aws:ecr/lifecyclePolicy:LifecyclePolicy -> PutLifecyclePolicy, read back with GetLifecyclePolicy."""
    name = req.get("repository")
    aws.client("ecr").put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=as_json(req.get("policy")))
    return described(aws, req, name, _lifecycle_policy)


read_lifecycle_policy = read_by(_lifecycle_policy, *_NO_POLICY)
delete_lifecycle_policy = delete_call("ecr", "delete_lifecycle_policy", "repositoryName", *_NO_POLICY)


RESOURCES = (
    ResourceHandler("aws:ecr/repository:Repository", create_repository, read_repository, delete_repository),
    ResourceHandler(
        "aws:ecr/lifecyclePolicy:LifecyclePolicy", create_lifecycle_policy, read_lifecycle_policy, delete_lifecycle_policy
    ),
)
