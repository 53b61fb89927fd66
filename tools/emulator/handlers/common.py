"""Helpers shared by the handlers: tag and JSON conversions, state assembly."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tools.emulator.engine import Request


def tag_list(tags: Mapping[str, str] | None, key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    """``{"k": "v"}`` -> ``[{"Key": "k", "Value": "v"}]`` (most AWS APIs' tag shape)."""
    return [{key: k, value: str(v)} for k, v in (tags or {}).items()]


def tag_dict(tags: list[Mapping[str, str]] | None, key: str = "Key", value: str = "Value") -> dict[str, str]:
    """The inverse of :func:`tag_list`, for reading tags back."""
    return {t[key]: t[value] for t in tags or []}


def as_json(value: Any) -> str:
    """JSON inputs arrive as strings; nested dicts (if a component passed one) are dumped."""
    return value if isinstance(value, str) else json.dumps(value)


def state(request: Request, **computed: Any) -> dict[str, Any]:
    """The provider's state: the inputs, overlaid with what was read back from the emulator.

    Read-back values win over inputs; ``tagsAll`` mirrors ``tags`` as the provider does without default tags.
    """
    out: dict[str, Any] = dict(request.inputs)
    if "tags" in request.inputs:
        out["tagsAll"] = dict(request.inputs.get("tags") or {})
    out.update({k: v for k, v in computed.items() if v is not None})
    return out


def drop_none(params: Mapping[str, Any]) -> dict[str, Any]:
    """boto3 rejects None for optional parameters: leave them out."""
    return {k: v for k, v in params.items() if v is not None}
