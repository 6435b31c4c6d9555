"""Dollars as people read them, in pages, messages and mails."""

from decimal import Decimal


def money_text(value):
    """Dollars as people write them: 25.00, 0.0125, 1,234.50 (cents always; below a dollar up to four decimals)."""
    value = Decimal(value)
    if value >= 1 or value == 0:
        return f"{value:,.2f}"
    text = f"{value:.4f}".rstrip("0")
    return text if len(text.rsplit(".", 1)[-1]) >= 2 else f"{value:.2f}"


def micro_dollars_text(micro):
    """An amount kept in micro-dollars (budgets, spend), as money_text writes it."""
    return money_text(Decimal(int(micro)) / 1_000_000)
