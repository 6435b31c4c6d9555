from django import template

from llmgateway.metering.money import money_text

register = template.Library()


@register.filter
def usd(value):
    """Dollars with cents, and up to four decimals below a dollar: 1,234.50, 0.0125."""
    if value is None or value == "":
        return ""
    return money_text(value)
