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


if __name__ == "__main__":
    main()
