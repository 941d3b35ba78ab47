"""Plain-text tables for the terminal: a header, a rule, rows, columns aligned."""
from __future__ import annotations

from collections.abc import Sequence


def aligned(head: Sequence[str], body: Sequence[Sequence[object]]) -> list[str]:
    """``head`` and ``body`` as lines, each column as wide as its widest cell."""
    rows = [tuple(str(x) for x in row) for row in (head, *body)]
    widths = [max(len(x) for x in col) for col in zip(*rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*row).rstrip() for row in (rows[0], tuple("-" * w for w in widths),
                                                  *rows[1:])]
