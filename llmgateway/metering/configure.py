"""Setting limits: one function behind the Usage page, the REST API, the admin and `manage.py set_limits`."""

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction

from llmgateway.metering.money import money_text
from llmgateway.models import Limit, LimitKind


class LimitForm(forms.ModelForm):
    """The five limits; an empty field is no limit. Shared by the page and the commands."""

    class Meta:
        model = Limit
        fields = list(Limit.FIELDS)
        widgets = {name: forms.NumberInput(attrs={"min": 0, "placeholder": "no limit"}) for name in Limit.FIELDS}
        help_texts = dict.fromkeys(Limit.FIELDS, "")  # the page says it once: an empty field is no limit

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("daily_budget", "monthly_budget"):
            value = self.initial.get(name)
            if value is not None:
                self.initial[name] = money_text(value).replace(",", "")


def member_or_error(workspace, user):
    from workspaces.models import Membership

    if user is not None and not Membership.objects.filter(workspace=workspace, user=user).exists():
        raise ValidationError({"user": "This person is not a member of the workspace."})


def limit_for(kind, workspace=None, user=None, api_key=None):
    """The Limit row of a scope (unsaved and empty when there is none)."""
    rows = Limit.objects.filter(kind=kind)
    if kind == LimitKind.KEY:
        found = rows.filter(api_key=api_key).first()
    else:
        found = rows.filter(workspace=workspace, user=user, api_key__isnull=True).first()
    return found or Limit(kind=kind, workspace=workspace, user=user, api_key=api_key)


def save_limits(kind, values, workspace=None, user=None, api_key=None):
    """Store a scope's limits (values: {name: value or None}); a scope left with no limit loses its row."""
    if kind == LimitKind.KEY:
        workspace = api_key.workspace
    elif kind == LimitKind.USER and workspace is not None:
        member_or_error(workspace, user)
    with transaction.atomic():
        limit = limit_for(kind, workspace, user, api_key)
        for name in Limit.FIELDS:
            if name in values:
                setattr(limit, name, values[name])
        limit.full_clean(validate_unique=False, validate_constraints=False)
        if limit.is_empty:
            if limit.pk:
                limit.delete()
            return None
        limit.save()
    return limit
