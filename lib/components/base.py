"""What every component shares: naming and tagging context, child resource options, output registration."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from lib.config import ProtectionSettings
from lib.naming import NameKind, Namer
from lib.tags import standard_tags, with_name


@dataclass(frozen=True, kw_only=True)
class Context:
    """Naming and tagging for one stack; passed to every component."""

    namer: Namer
    environment: str
    cost_center: str
    compliance: str
    region: str

    def name(self, component: str, kind: NameKind = NameKind.GENERIC) -> str:
        """Physical name ``scalepay-<component>-<environment>[-<suffix>]``."""
        return self.namer.name(component, kind)

    @property
    def scope(self) -> str:
        """``<environment>[-<suffix>]``: what tells this stack apart from every other one in the same account."""
        return "-".join([self.environment, *([self.namer.suffix] if self.namer.suffix else [])])

    def tags(self, component: str, name: str | None = None) -> dict[str, str]:
        """Standard tags for ``component``; with ``name`` also the EC2-family Name tag."""
        tags = standard_tags(
            environment=self.environment,
            component=component,
            cost_center=self.cost_center,
            compliance=self.compliance,
        )
        return with_name(tags, name) if name else tags


@dataclass(frozen=True, kw_only=True)
class LoggingArgs:
    """Inputs of a component that keeps log groups of its own: naming context, the logs key, the retention."""

    context: Context
    logs_key_arn: pulumi.Input[str]
    log_retention_days: int


@dataclass(frozen=True, kw_only=True)
class GuardedArgs(LoggingArgs):
    """:class:`LoggingArgs` of a component that also keeps what must survive a mistaken delete (see :func:`guarded_opts`)."""

    protection: ProtectionSettings


@dataclass(frozen=True, kw_only=True)
class DataStoreArgs(GuardedArgs):
    """:class:`GuardedArgs` of a data store: its subnets, its security group and the key that encrypts its data."""

    subnet_ids: list[pulumi.Output[str]]
    security_group_id: pulumi.Input[str]
    data_key_arn: pulumi.Input[str]


class Component(pulumi.ComponentResource):
    """A ComponentResource whose outputs are its annotated attributes, registered once by :meth:`finish`.

    A subclass declares its outputs as class annotations (``vpc_id: pulumi.Output[str]``), assigns
    them in ``__init__`` and ends with ``self.finish()``: the outputs are written once, as
    attributes, and registered from the annotations (as tb_pulumi's ``finish()`` does), so a new
    output cannot be forgotten in ``register_outputs``.
    """

    def finish(self) -> None:
        """Register every annotated output attribute of this component (a missing one is a bug)."""
        names: list[str] = []
        for cls in reversed(type(self).__mro__):
            if cls in (Component, pulumi.ComponentResource, pulumi.Resource) or not issubclass(cls, Component):
                continue
            names += [n for n in vars(cls).get("__annotations__", {}) if not n.startswith("_") and n not in names]
        missing = [n for n in names if not hasattr(self, n)]
        if missing:
            raise AttributeError(f"{type(self).__name__} did not set its outputs {missing}")
        outputs: dict[str, Any] = {n: _registrable(getattr(self, n)) for n in names}
        self.register_outputs(outputs)


def _registrable(value: Any) -> Any:
    """``value`` in a form Pulumi can serialise: small dataclasses of Outputs become dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _registrable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _registrable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_registrable(v) for v in value]
    return value


def child_opts(parent: pulumi.Resource, opts: pulumi.ResourceOptions | None = None) -> pulumi.ResourceOptions:
    """Resource options for a component's child: parented to the component, merged with ``opts``."""
    return pulumi.ResourceOptions.merge(pulumi.ResourceOptions(parent=parent), opts)


def guarded_opts(
    parent: pulumi.Resource, protection: ProtectionSettings, *, depends_on: list[pulumi.Resource] | None = None
) -> pulumi.ResourceOptions:
    """Child options for data stores and keys: ``protect``/``retain_on_delete`` as the environment asks."""
    return pulumi.ResourceOptions(
        parent=parent,
        protect=protection.protect,
        retain_on_delete=protection.retain_on_delete,
        depends_on=depends_on,
    )


def encrypted_log_group(
    logical: str, name: pulumi.Input[str], args: LoggingArgs, tags: dict[str, str], opts: pulumi.ResourceOptions
) -> aws.cloudwatch.LogGroup:
    """A log group encrypted with the logs key and kept ``log_retention_days``.

    Every log group is created by the stack before whatever writes to it: otherwise AWS creates it on the
    first write, unencrypted and kept forever, and Pulumi could not manage it.
    """
    return aws.cloudwatch.LogGroup(
        logical,
        name=name,
        retention_in_days=args.log_retention_days,
        kms_key_id=args.logs_key_arn,
        tags=tags,
        opts=opts,
    )
