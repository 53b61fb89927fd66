"""The pinned price table (``prices.json``): us-east-1, on-demand, USD, each price with its source and date.

The cost estimate never asks AWS for prices: it reads this file, so that an estimate is reproducible and
reviewable (a price change is a diff of ``prices.json``). :class:`PriceTable` also accepts prices built in
memory, which is how the unit tests check the arithmetic on round numbers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRICES_FILE = Path(__file__).with_name("prices.json")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class UnpricedError(LookupError):
    """A price the estimate needs is not in the table (a new instance class, node type or feature)."""


@dataclass(frozen=True)
class Price:
    """One unit price: ``usd`` per ``unit``, read from ``source`` on ``as_of``."""

    key: str
    usd: float
    unit: str
    source: str
    as_of: str
    note: str = ""

    def problems(self) -> list[str]:
        """What is wrong with this entry (empty when it is complete): every price must be sourced and dated."""
        found = []
        if not isinstance(self.usd, int | float) or self.usd < 0:
            found.append(f"{self.key}: usd must be a number >= 0")
        if not self.unit:
            found.append(f"{self.key}: no unit")
        if not self.source.startswith("https://aws.amazon.com/"):
            found.append(f"{self.key}: source must be an AWS public pricing page (https://aws.amazon.com/...)")
        if not _DATE.match(self.as_of):
            found.append(f"{self.key}: as_of must be a date (YYYY-MM-DD)")
        return found


class PriceTable:
    """Prices by key (``rds.aurora_postgresql.db.r6g.large.hour``); a missing key raises :class:`UnpricedError`."""

    def __init__(self, prices: Mapping[str, Price], region: str = "us-east-1", currency: str = "USD", term: str = "on-demand"):
        self.prices = dict(prices)
        self.region = region
        self.currency = currency
        self.term = term

    @classmethod
    def load(cls, path: Path = PRICES_FILE) -> PriceTable:
        """The pinned table."""
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        prices = {
            key: Price(key, entry["usd"], entry["unit"], entry["source"], entry["as_of"], entry.get("note", ""))
            for key, entry in data["prices"].items()
        }
        return cls(prices, data["region"], data["currency"], data["term"])

    @classmethod
    def of(cls, usd: Mapping[str, float]) -> PriceTable:
        """A table of bare prices (tests): every entry gets a placeholder unit, source and date."""
        return cls({k: Price(k, v, "unit", "https://aws.amazon.com/pricing/", "2000-01-01") for k, v in usd.items()})

    def __contains__(self, key: object) -> bool:
        return key in self.prices

    def __getitem__(self, key: str) -> Price:
        try:
            return self.prices[key]
        except KeyError:
            raise UnpricedError(
                f"no pinned price {key!r}: add it to tools/insight/prices.json with its source page and date"
            ) from None

    def dates(self) -> list[str]:
        """The distinct dates the prices were read on."""
        return sorted({p.as_of for p in self.prices.values()})
