"""Card-number (PAN) detection: the services accept payment tokens only, never card numbers.

A *PAN-like* value is 13-19 digits that pass the Luhn check, written as one run or grouped like a printed card (groups of
at most 6 digits joined by single spaces or dashes), and not glued to letters on either side (so hex identifiers such as
UUIDs or hex idempotency keys are never mistaken for card numbers). The same definition drives request rejection (422)
and log masking, so whatever could be rejected is also what gets masked.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

__all__ = ["MASK", "contains_pan", "find_pan_field", "luhn_valid", "mask_pans", "pan_spans"]

MASK = "[REDACTED-PAN]"

# Digit groups joined by single spaces or dashes ("4111 1111 1111 1111", "4111-111111-11111", "4111111111111111").
_RUN = re.compile(r"[0-9]+(?:[ \-][0-9]+)*")
_GROUP = re.compile(r"[0-9]+")
# Printed card numbers group 4-4-4-4, 4-6-5 or 4-4-4-4-3: in a multi-group candidate no group is longer than this.
# It keeps UUIDs (8-4-4-4-12 hex, sometimes all decimal) from ever looking like a card number.
_MAX_GROUP = 6


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn (mod 10) check."""
    if not digits.isdigit() or not digits.isascii():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def pan_spans(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of every PAN-like run in ``text`` (non-overlapping, left to right).

    Every contiguous chain of digit groups inside a run is a candidate: one group of 13-19 digits, or several groups of
    at most 6 digits each totalling 13-19 digits; it is PAN-like when it passes Luhn and no letter touches either end (the
    longest such chain is reported). Chains are tried from every group, so a card number next to other digit groups
    ("ref 12345678-4111-1111-1111-1111") is still found.
    """
    for run in _RUN.finditer(text):
        groups = [(g.start(), g.end()) for g in _GROUP.finditer(text, run.start(), run.end())]
        index = 0
        while index < len(groups):
            found = _chain_from(text, groups, index)
            if found is None:
                index += 1
                continue
            last = found
            yield groups[index][0], groups[last][1]
            index = last + 1


def _chain_from(text: str, groups: list[tuple[int, int]], first: int) -> int | None:
    """Index of the last group of the longest PAN-like chain starting at group ``first``, or None."""
    digits = ""
    found = None
    for index in range(first, len(groups)):
        start, end = groups[index]
        if index > first and (end - start > _MAX_GROUP or groups[first][1] - groups[first][0] > _MAX_GROUP):
            break
        digits += text[start:end]
        if len(digits) > 19:
            break
        if len(digits) >= 13 and luhn_valid(digits) and _word_bounded(text, groups[first][0], end):
            found = index
    return found


def _word_bounded(text: str, start: int, end: int) -> bool:
    # A card number stands on its own, not glued to letters: digits inside a hex word ("...e4-8544-7877-8257-5c7d...", a
    # UUID; "9f1234567890123456ab", a hex key) are not card numbers, while "tok_4111...", "pan:4111..." or "(4111...)"
    # are (the usual DLP word-boundary rule, except that "_" counts as a boundary).
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return not (before.isascii() and before.isalpha()) and not (after.isascii() and after.isalpha())


def contains_pan(text: str) -> bool:
    """True when ``text`` contains a PAN-like run (also in full-width or other Unicode digits)."""
    if next(pan_spans(text), None) is not None:
        return True
    normalised = unicodedata.normalize("NFKC", text)
    return normalised != text and next(pan_spans(normalised), None) is not None


def mask_pans(text: str) -> str:
    """``text`` with every PAN-like run replaced by :data:`MASK`."""
    if not any("0" <= char <= "9" for char in text):  # the common case, and much cheaper than the regex
        return text
    out: list[str] = []
    last = 0
    for start, end in pan_spans(text):
        out.append(text[last:start])
        out.append(MASK)
        last = end
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def _scalar_text(value: object) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # 4111111111111111.0 or 4.111111111111111e15 is still a card number.
        return str(int(value)) if value.is_integer() and abs(value) < 1e20 else None
    if isinstance(value, str):
        return value
    return None


def find_pan_field(value: object, path: str = "$") -> str | None:
    """JSON path of the first field (key or value, at any depth) holding a PAN-like run, or None.

    Works on what :func:`json.loads` returns. Keys that are themselves PAN-like are reported masked, so the path can be
    shown to the client without echoing card data.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            key_text = str(key)
            if contains_pan(key_text):
                return f"{path}.{mask_pans(key_text)}"
            found = find_pan_field(item, f"{path}.{key_text}")
            if found is not None:
                return found
        return None
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = find_pan_field(item, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    text = _scalar_text(value)
    if text is not None and contains_pan(text):
        return path
    return None
