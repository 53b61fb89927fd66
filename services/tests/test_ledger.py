"""The double-entry model (pure): every state change is a balanced set of entries."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.payment.ledger import (
    Direction,
    Entry,
    UnbalancedTransactionError,
    authorization_entries,
    capture_entries,
    check_balanced,
)


def balances(entries: list[Entry]) -> Counter[str]:
    """Net balance per account (debit positive)."""
    totals: Counter[str] = Counter()
    for e in entries:
        totals[e.account] += e.amount_minor if e.direction is Direction.DEBIT else -e.amount_minor
    return totals


def test_authorization_entries() -> None:
    """Authorization: debit authorizations_receivable, credit the merchant's pending account, same amount."""
    assert authorization_entries("m_1", 1234, "EUR") == (
        Entry("authorizations_receivable", Direction.DEBIT, 1234, "EUR"),
        Entry("merchant_pending:m_1", Direction.CREDIT, 1234, "EUR"),
    )


def test_capture_entries() -> None:
    """Capture: the hold becomes a settlement receivable, the pending amount becomes payable to the merchant."""
    assert capture_entries("m_1", 500, "USD") == (
        Entry("settlement_receivable", Direction.DEBIT, 500, "USD"),
        Entry("authorizations_receivable", Direction.CREDIT, 500, "USD"),
        Entry("merchant_pending:m_1", Direction.DEBIT, 500, "USD"),
        Entry("merchant_payable:m_1", Direction.CREDIT, 500, "USD"),
    )


@given(amount=st.integers(min_value=1, max_value=99_999_999_999), merchant=st.from_regex(r"[A-Za-z0-9_\-]{1,64}", fullmatch=True))
def test_authorize_then_capture_leaves_only_receivable_and_payable(amount: int, merchant: str) -> None:
    """After a full payment cycle the intermediate accounts are back to zero."""
    entries = [*authorization_entries(merchant, amount, "EUR"), *capture_entries(merchant, amount, "EUR")]
    net = {account: value for account, value in balances(entries).items() if value}
    assert net == {"settlement_receivable": amount, f"merchant_payable:{merchant}": -amount}


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([Entry("a", Direction.DEBIT, 100, "EUR")], "at least 2 entries"),
        (
            [Entry("a", Direction.DEBIT, 100, "EUR"), Entry("b", Direction.CREDIT, 99, "EUR")],
            "unbalanced in EUR: debits 100, credits 99",
        ),
        ([Entry("a", Direction.DEBIT, 100, "EUR"), Entry("b", Direction.CREDIT, 100, "USD")], "unbalanced in EUR"),
        ([Entry("a", Direction.DEBIT, 0, "EUR"), Entry("b", Direction.CREDIT, 0, "EUR")], "must be positive"),
        ([Entry("a", Direction.DEBIT, -5, "EUR"), Entry("b", Direction.DEBIT, 5, "EUR")], "must be positive"),
    ],
)
def test_unbalanced_sets_are_refused(entries: list[Entry], message: str) -> None:
    """Fewer than two entries, non-positive amounts, or debits != credits in any currency."""
    with pytest.raises(UnbalancedTransactionError, match=message):
        check_balanced(entries)
