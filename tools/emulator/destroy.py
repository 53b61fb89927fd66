"""Delete what a local deployment created: the local ``pulumi destroy``.

Resources are deleted in reverse dependency order (the reverse of the order they were created in, which
respects every dependency: a resource is only created after what it depends on). As ``pulumi destroy``
does, a stack with ``protect``-ed resources is refused as a whole unless the caller says otherwise, and a
``retainOnDelete`` resource is left in the account and only forgotten. The operator-side extras (the
imported certificate, the local pager queue) go too, so the emulator is left as it was before the deploy.
Deleting is idempotent: a resource that is already gone (an emulator restarted after a failed deploy)
counts as deleted.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TextIO

import botocore.exceptions

from tools.emulator.engine import Aws, ResourceHandler
from tools.emulator.state import ExtraRecord, ResourceRecord, StackRecord

log = logging.getLogger(__name__)


class ProtectedResourcesError(RuntimeError):
    """The stack holds protected resources and the caller did not ask to delete them."""

    def __init__(self, stack: str, protected: list[ResourceRecord]) -> None:
        names = ", ".join(f"{r.type} {r.name}" for r in protected[:5])
        more = f" and {len(protected) - 5} more" if len(protected) > 5 else ""
        super().__init__(
            f"{stack}: {len(protected)} resource(s) are protected ({names}{more}); nothing was deleted. "
            "As with `pulumi destroy`, unprotect them first: make destroy ... UNPROTECT=1 "
            "(retain-on-delete resources stay in the account even then)."
        )
        self.protected = protected


@dataclass
class DestroyReport:
    """What a destroy did."""

    deleted: list[ResourceRecord] = field(default_factory=list)
    retained: list[ResourceRecord] = field(default_factory=list)
    extras: list[ExtraRecord] = field(default_factory=list)

    def summary(self) -> str:
        """``152 resources deleted, 0 retained, 2 extras removed``."""
        return f"{len(self.deleted)} resources deleted, {len(self.retained)} retained, {len(self.extras)} extras removed"


def destroy(
    record: StackRecord,
    aws: Aws,
    handlers: Mapping[str, ResourceHandler],
    *,
    unprotect: bool = False,
    stream: TextIO | None = None,
) -> DestroyReport:
    """Delete every resource of ``record`` from the emulator (see the module docstring)."""
    stream = stream or sys.stdout
    protected = [r for r in record.resources if r.protect]
    if protected and not unprotect:
        raise ProtectedResourcesError(record.stack, protected)
    report = DestroyReport()
    for resource in reversed(record.resources):
        if resource.retain_on_delete:
            report.retained.append(resource)
            continue
        handler = handlers.get(resource.type)
        if handler is None:
            raise RuntimeError(f"{resource.type} {resource.name}: no emulator handler can delete it")
        handler.delete(aws, resource.id, resource.state)
        report.deleted.append(resource)
    for extra in reversed(record.extras):
        _EXTRA_DELETERS[extra.kind](aws, extra)
        report.extras.append(extra)
    print(f"[{record.stack}] {report.summary()}", file=stream, flush=True)
    for resource in report.retained:
        print(f"[{record.stack}]   retained (retainOnDelete): {resource.type} {resource.name} {resource.id}", file=stream)
    return report


def _ignore_missing(action: Callable[[], object]) -> None:
    try:
        action()
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if "NotFound" not in code and "NonExistent" not in code and code not in ("ResourceNotFoundException",):
            raise


def _delete_certificate(aws: Aws, extra: ExtraRecord) -> None:
    _ignore_missing(lambda: aws.client("acm").delete_certificate(CertificateArn=extra.id))


def _delete_queue(aws: Aws, extra: ExtraRecord) -> None:
    _ignore_missing(lambda: aws.client("sqs").delete_queue(QueueUrl=extra.id))


def _delete_image(aws: Aws, extra: ExtraRecord) -> None:
    repository, _, tag = extra.id.rpartition(":")
    # The repository itself is a stack resource (deleted with its images); an image pushed into a
    # repository that outlives the stack (retained) is removed here.
    _ignore_missing(lambda: aws.client("ecr").batch_delete_image(repositoryName=repository, imageIds=[{"imageTag": tag}]))


_EXTRA_DELETERS: dict[str, Callable[[Aws, ExtraRecord], None]] = {
    "acm-certificate": _delete_certificate,
    "sqs-queue": _delete_queue,
    "ecr-image": _delete_image,
}
