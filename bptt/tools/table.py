"""The cells of the benchmark tables (``bptt bench`` and ``bptt bench --inference``)."""


def format_ms(row: dict, name: str) -> str:
    """One table cell: the median ms of implementation ``name`` in ``row`` with its range
    (``row["ms"]``, ``row["ms_min"]``, ``row["ms_max"]`` by name), or a dash."""
    if name not in row["ms"]:
        return f"{'-':>18}"
    spread = f"({row['ms_min'][name]:.3g}-{row['ms_max'][name]:.3g})"
    return f"{row['ms'][name]:>7.3g} {spread:>10}"
