from datetime import UTC, datetime, time

from django import forms
from django.utils import timezone

from llmgateway.metering import reports
from llmgateway.models import DEFAULT_SCOPES, Scope
from workspaces.models import Workspace


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What uses this key, e.g. “CI pipeline” or “Support bot”.",
        error_messages={"required": "Give the key a name."},
    )
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        initial=DEFAULT_SCOPES,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one scope."},
    )
    expires_on = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Optional. The key stops working at the start of this day (UTC).",
    )

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the key a name.")
        return name

    def clean_expires_on(self):
        day = self.cleaned_data.get("expires_on")
        if day and day <= timezone.now().date():
            raise forms.ValidationError("Choose a date in the future.")
        return day

    def expires_at(self):
        day = self.cleaned_data.get("expires_on")
        return datetime.combine(day, time.min, tzinfo=UTC) if day else None


class CachePolicyForm(forms.ModelForm):
    class Meta:
        model = Workspace
        fields = ["cache_policy"]
        labels = {"cache_policy": "What to cache"}
        widgets = {"cache_policy": forms.RadioSelect}
        help_texts = {
            "cache_policy": "Requests with tool calls follow the same rule. Changes apply to the next request."
        }


class UsageFilterForm(forms.Form):
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    bucket = forms.ChoiceField(required=False, label="Per", choices=[("day", "day"), ("hour", "hour")])

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        # The API's check of the dates, with a missing one at its default: a lone since is checked too.
        error = reports.range_error(since, until)
        if error:
            self.add_error(*error)
        elif data.get("bucket") == "hour":
            # The page's hourly chart shows fewer days than the API's hourly buckets cover.
            end = until or timezone.localdate()
            if since and (end - since).days > 31:
                self.add_error("bucket", "Per hour shows at most 31 days; choose fewer days.")
        return data
