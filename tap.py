"""Pulumi entry point: load the configuration, build the platform, export its outputs.

No resources are declared here; see lib/tap_stack.py for the composition.
"""

from __future__ import annotations

from typing import Any

import pulumi

from lib import config
from lib.tap_stack import TapStack, TapStackArgs


def main() -> dict[str, Any]:
    """Build the stack for the current Pulumi stack and export every output."""
    cfg = config.load()  # validates everything before the first resource is registered
    stack = TapStack(f"scalepay-{cfg.env}", TapStackArgs(config=cfg))
    for key, value in stack.outputs.items():
        pulumi.export(key, value)
    return stack.outputs


def run() -> dict[str, Any]:
    """What ``pulumi up`` runs: :func:`main`, with a configuration error reported as one line.

    ``pulumi.RunError`` ends the program without the traceback and source excerpt Pulumi prints for any
    other exception, so the operator sees only the message naming the key, the value and what is allowed.
    """
    try:
        return main()
    except config.ConfigError as exc:
        raise pulumi.RunError(str(exc)) from None


if __name__ == "__main__":
    run()
