"""Card-number detection (Luhn) used to reject requests and to mask logs."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.pan import MASK, contains_pan, find_pan_field, luhn_valid, mask_pans

# Well-known test card numbers (they pass Luhn); 13 to 19 digits.
VISA = "4111111111111111"
AMEX = "378282246310005"
VISA_13 = "4222222222222"


def with_check_digit(body: str) -> str:
    """``body`` plus the Luhn check digit that makes it valid."""
    for digit in "0123456789":
        if luhn_valid(body + digit):
            return body + digit
    raise AssertionError("unreachable")


MAESTRO_19 = with_check_digit("675964982643845300")  # 19 digits


def test_luhn() -> None:
    """The mod-10 check on known valid and invalid numbers."""
    for number in (VISA, AMEX, VISA_13, "5555555555554444", "6011111111111117", "79927398713"):
        assert luhn_valid(number)
    for number in ("4111111111111112", "1234567812345678", "", "41111111x1111111"):
        assert not luhn_valid(number)


@pytest.mark.parametrize(
    "text",
    [
        VISA,
        AMEX,
        VISA_13,
        MAESTRO_19,
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "3782-822463-10005",
        "card: 4111111111111111, exp 12/29",
        "tok_4111111111111111",
        "ref 12345678-4111-1111-1111-1111",
        "4111 1111 1111 1111 22",
        "\uff14\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11",  # full-width digits
    ],
)
def test_pan_like_values_are_detected(text: str) -> None:
    """13-19 Luhn-valid digits, plain or grouped with spaces/dashes, also inside other text."""
    assert contains_pan(text)


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111112",  # fails Luhn
        "411111111111",  # 12 digits
        "41111111111111111111",  # 20 digits
        "4111  1111  1111  1111",  # double spaces: not a card layout
        "9f4111111111111111ab",  # digits inside a hex word
        "8b0372e4-8544-7877-8257-5c7d735001f8",  # a UUID whose middle groups plus one digit pass Luhn
        "amount 1234 EUR on 2026-11-30",
        "12345678-1234-1234-1234-123456789012",  # an all-decimal UUID
        "tok_abcdefgh12",
        "",
    ],
)
def test_non_pans_are_not_flagged(text: str) -> None:
    """Short or long digit runs, failing checksums and UUIDs are not card numbers."""
    assert not contains_pan(text)


@settings(max_examples=500, deadline=None)
@given(st.uuids())
def test_uuids_are_never_pan_like(value: uuid.UUID) -> None:
    """Payment and event ids (UUIDs) can never be rejected or masked as card data, whatever their digits."""
    assert not contains_pan(str(value))
    assert not contains_pan(value.hex)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789abcdef", min_size=1, max_size=64).filter(lambda s: not s.isdigit()))
def test_hex_identifiers_are_never_pan_like(value: str) -> None:
    """A hex key (with at least one letter) is an identifier, not a card number, whatever digit runs it contains."""
    assert not contains_pan(value)


def test_all_decimal_uuid_groups_are_not_chained() -> None:
    """Even when a UUID's 8-4-4 groups are all digits and Luhn-valid together, it is not a card number."""
    first16 = with_check_digit("1234567812341234"[:15])
    uuid_text = f"{first16[:8]}-{first16[8:12]}-{first16[12:16]}-1234-123456789012"
    assert luhn_valid(first16)
    assert not contains_pan(uuid_text)


@settings(max_examples=200, deadline=None)
@given(body=st.text(alphabet="0123456789", min_size=12, max_size=18), sep=st.sampled_from(["", " ", "-"]))
def test_any_luhn_valid_card_number_is_detected_and_masked(body: str, sep: str) -> None:
    """Any 13-19 digit Luhn-valid number, grouped by four, is found and fully masked."""
    pan = with_check_digit(body)
    grouped = sep.join(pan[i : i + 4] for i in range(0, len(pan), 4))
    text = f"customer wrote {grouped} in the note"
    assert contains_pan(text)
    masked = mask_pans(text)
    assert masked == f"customer wrote {MASK} in the note"
    assert pan not in masked.replace(" ", "").replace("-", "")


def test_mask_keeps_everything_else() -> None:
    """Only the card number goes; surrounding text and other numbers stay."""
    assert mask_pans(f"paid 1234 with {VISA} at 12:00") == f"paid 1234 with {MASK} at 12:00"
    assert mask_pans("no digits here") == "no digits here"
    assert mask_pans(f"{VISA} and {AMEX}") == f"{MASK} and {MASK}"


def test_find_pan_field_reports_the_path_without_the_value() -> None:
    """Any field, key or value, at any depth, as string or number; keys are reported masked."""
    assert find_pan_field({"amount_minor": 100, "description": f"card {VISA}"}) == "$.description"
    assert find_pan_field({"metadata": {"items": [{"note": "ok"}, {"note": AMEX}]}}) == "$.metadata.items[1].note"
    assert find_pan_field({"card_number": int(VISA)}) == "$.card_number"
    assert find_pan_field(json.loads(f'{{"n": {VISA}.0}}')) == "$.n"
    assert find_pan_field({VISA: "x"}) == f"$.{MASK}"
    assert find_pan_field({"capture": True, "amount_minor": 4111, "currency": "EUR", "x": None}) is None
