import datetime

from django import forms
from django.utils import timezone

from audit.catalogue import OBJECT_TYPES


class DateInput(forms.DateInput):
    input_type = "date"


class AuditFilterForm(forms.Form):
    """The audit pages' filters; every one optional, all of them combined."""

    actor = forms.CharField(
        max_length=254, required=False, label="Who", widget=forms.TextInput(attrs={"placeholder": "email address"})
    )
    action = forms.CharField(
        max_length=64, required=False, widget=forms.TextInput(attrs={"list": "audit-actions", "placeholder": "any"})
    )
    object_type = forms.ChoiceField(choices=[("", "Any"), *OBJECT_TYPES.items()], required=False, label="Object")
    since = forms.DateField(required=False, label="From", widget=DateInput)
    until = forms.DateField(required=False, label="To", widget=DateInput)
    workspace = forms.CharField(max_length=50, required=False, widget=forms.TextInput(attrs={"placeholder": "slug"}))

    def __init__(self, *args, site_wide=False, **kwargs):
        super().__init__(*args, **kwargs)
        if not site_wide:
            del self.fields["workspace"]

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and until < since:
            self.add_error("until", "The end date is before the start date.")
        return cleaned

    def filter(self, queryset):
        """The events that match the (valid) filters."""
        data = self.cleaned_data
        if data.get("actor"):
            queryset = queryset.filter(actor_email=data["actor"].strip().lower())
        if data.get("action"):
            queryset = queryset.filter(action=data["action"].strip())
        if data.get("object_type"):
            queryset = queryset.filter(object_type=data["object_type"])
        if data.get("workspace"):
            queryset = queryset.filter(workspace_slug=data["workspace"].strip().lower())
        if data.get("since"):
            queryset = queryset.filter(created_at__gte=_start_of(data["since"]))
        if data.get("until") and data["until"] < datetime.date.max:  # the last day a date can be: no end
            queryset = queryset.filter(created_at__lt=_start_of(data["until"] + datetime.timedelta(days=1)))
        return queryset


def _start_of(day):
    """Midnight at the start of `day`, in the site's time zone (from 0001-01-02: every zone can hold it)."""
    day = max(day, datetime.date.min + datetime.timedelta(days=1))
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))
