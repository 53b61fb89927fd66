"""``python -m tools.release {targets,push,check} --stack <stack>``: fill the stack's ECR repositories.

    targets   print the ``--target`` arguments for a first ``pulumi up`` that creates only the repositories
    push      build every image (its target <name> of services/Dockerfile) and push it (docker, aws CLI; --dry-run prints)
    check     exit 1 naming every image a task definition references that its repository does not hold

The stack's configuration is read like ``pulumi up`` reads it (Pulumi.yaml, Pulumi.<stack>.yaml, --config).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import boto3

from lib.config import ConfigError
from tools import stack_config
from tools.evaluate import FakeAws, evaluate
from tools.release.images import bootstrap_targets, image_refs, missing_images, push, push_commands


def _evaluation(stack: str, overrides: Sequence[str]):  # type: ignore[no-untyped-def]
    config = stack_config.load(stack, stack_config.parse_overrides(list(overrides)))
    return evaluate(stack, config, mocks=FakeAws(region=config.get("aws:region", "us-east-1"))), config


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tools.release", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["targets", "push", "check"])
    parser.add_argument("--stack", required=True, help="dev, staging, prod (or a copy such as dev-pr1)")
    parser.add_argument("--config", action="append", default=[], metavar="KEY=VALUE", help="per-run config, like pulumi")
    parser.add_argument("--dry-run", action="store_true", help="push: print the commands instead of running them")
    args = parser.parse_args(argv)
    try:
        evaluation, config = _evaluation(args.stack, args.config)
    except (ConfigError, stack_config.StackConfigError) as exc:
        print(exc, file=sys.stderr)
        return 2
    region = config.get("aws:region", "us-east-1")
    if args.command == "targets":
        print(" ".join(f"--target '{urn}'" for urn in bootstrap_targets(evaluation)))
        return 0
    tag = next(iter(evaluation.outputs["serviceImages"].values())).rsplit(":", 1)[-1]
    if args.dry_run:
        images = image_refs(evaluation, "<account>", region, tag)
        print("\n".join(push_commands(images, region)))
        return 0
    account = boto3.client("sts", region_name=region).get_caller_identity()["Account"]
    images = image_refs(evaluation, account, region, tag)
    if args.command == "push":
        push(images, region)
        return 0
    missing = missing_images(boto3.client("ecr", region_name=region), images)
    for image in missing:
        print(f"missing: {image.reference} (build and push it: python -m tools.release push --stack {args.stack})")
    print("every image is in its repository" if not missing else f"{len(missing)} image(s) missing")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
