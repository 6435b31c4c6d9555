from django import template

from audit.catalogue import action_label, object_type_label

register = template.Library()

register.filter("action_label", action_label)
register.filter("object_type_label", object_type_label)


@register.filter
def audit_value(value):
    """A before/after value as the page shows it: empty and missing values spelled out."""
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value
