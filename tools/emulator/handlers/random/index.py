"""random:index -- random values, computed locally as the real provider does (they exist only in Pulumi's state)."""

from __future__ import annotations

import secrets
import string
from typing import Any

from tools.emulator.engine import Aws, Request, ResourceHandler
from tools.emulator.handlers.translate import delete_nothing, read_recorded, state

DEFAULT_SPECIAL = "!@#$%&*()-_=+[]{}<>:?"
LOCAL = "computed locally by the provider: it exists only in Pulumi's state"


def create_random_password(_aws: Aws, req: Request) -> tuple[str, dict[str, Any]]:
    """random:index/randomPassword:RandomPassword: a CSPRNG password honouring the character-class options."""
    length = int(req.get("length", 16))
    classes: list[tuple[str, int]] = []
    if req.get("upper", True):
        classes.append((string.ascii_uppercase, int(req.get("minUpper", 0))))
    if req.get("lower", True):
        classes.append((string.ascii_lowercase, int(req.get("minLower", 0))))
    if req.get("numeric", req.get("number", True)):
        classes.append((string.digits, int(req.get("minNumeric", 0))))
    if req.get("special", True):
        classes.append((req.get("overrideSpecial") or DEFAULT_SPECIAL, int(req.get("minSpecial", 0))))
    if not classes:
        raise RuntimeError("RandomPassword: every character class is disabled")
    chars = [secrets.choice(alphabet) for alphabet, minimum in classes for _ in range(minimum)]
    pool = "".join(alphabet for alphabet, _ in classes)
    chars += [secrets.choice(pool) for _ in range(max(0, length - len(chars)))]
    secrets.SystemRandom().shuffle(chars)
    result = "".join(chars)
    return "none", state(req, result=result, length=length)


RESOURCES = (
    ResourceHandler(
        "random:index/randomPassword:RandomPassword", create_random_password, read_recorded, delete_nothing, retained=LOCAL
    ),
)
