from datetime import UTC, datetime, time

from django import forms
from django.utils import timezone

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
