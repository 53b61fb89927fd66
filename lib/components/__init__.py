"""One ComponentResource per concern; each takes a typed Args dataclass and exposes typed outputs."""
