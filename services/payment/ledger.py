"""The double-entry ledger model (pure): which balanced entries each payment state change writes.

Accounts (``name`` or ``name:<merchant_id>``):

* ``authorizations_receivable`` - funds the issuers have authorized (held) but not yet captured;
* ``merchant_pending:<merchant>`` - what we will owe the merchant once those funds are captured;
* ``settlement_receivable`` - captured funds the card scheme owes us at settlement;
* ``merchant_payable:<merchant>`` - what we owe the merchant (paid out after settlement).

Authorization: debit ``authorizations_receivable`` / credit ``merchant_pending``.
Capture: debit ``settlement_receivable`` / credit ``authorizations_receivable`` (the hold becomes a receivable), and
debit ``merchant_pending`` / credit ``merchant_payable`` (the pending amount becomes owed).
Every transaction balances per currency; the database enforces the same rule at commit (deferred constraint trigger).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Direction", "Entry", "UnbalancedTransactionError", "authorization_entries", "capture_entries", "check_balanced"]


class Direction(StrEnum):
    """Side of an entry."""

    DEBIT = "debit"
    CREDIT = "credit"


@dataclass(frozen=True)
class Entry:
    """One ledger line: ``amount_minor`` (> 0) in ``currency`` on one side of ``account``."""

    account: str
    direction: Direction
    amount_minor: int
    currency: str


class UnbalancedTransactionError(ValueError):
    """A set of entries that must not be written: fewer than two, a non-positive amount, or debits != credits."""


def check_balanced(entries: Iterable[Entry]) -> None:
    """Raise :class:`UnbalancedTransactionError` unless ``entries`` form a valid double-entry transaction."""
    items = list(entries)
    if len(items) < 2:
        raise UnbalancedTransactionError(f"a ledger transaction needs at least 2 entries, got {len(items)}")
    totals: dict[str, dict[Direction, int]] = defaultdict(lambda: {Direction.DEBIT: 0, Direction.CREDIT: 0})
    for entry in items:
        if entry.amount_minor <= 0:
            raise UnbalancedTransactionError(f"entry amounts must be positive, got {entry.amount_minor} on {entry.account}")
        totals[entry.currency][entry.direction] += entry.amount_minor
    for currency, sides in totals.items():
        if sides[Direction.DEBIT] != sides[Direction.CREDIT]:
            raise UnbalancedTransactionError(
                f"unbalanced in {currency}: debits {sides[Direction.DEBIT]}, credits {sides[Direction.CREDIT]}"
            )


def authorization_entries(merchant_id: str, amount_minor: int, currency: str) -> tuple[Entry, ...]:
    """Entries for authorizing ``amount_minor`` for ``merchant_id``."""
    entries = (
        Entry("authorizations_receivable", Direction.DEBIT, amount_minor, currency),
        Entry(f"merchant_pending:{merchant_id}", Direction.CREDIT, amount_minor, currency),
    )
    check_balanced(entries)
    return entries


def capture_entries(merchant_id: str, amount_minor: int, currency: str) -> tuple[Entry, ...]:
    """Entries for capturing a previously authorized ``amount_minor`` (full capture)."""
    entries = (
        Entry("settlement_receivable", Direction.DEBIT, amount_minor, currency),
        Entry("authorizations_receivable", Direction.CREDIT, amount_minor, currency),
        Entry(f"merchant_pending:{merchant_id}", Direction.DEBIT, amount_minor, currency),
        Entry(f"merchant_payable:{merchant_id}", Direction.CREDIT, amount_minor, currency),
    )
    check_balanced(entries)
    return entries
