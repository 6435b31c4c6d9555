from django import forms

from assistants.models import MAX_QUESTION_CHARS, MAX_STARTERS, Assistant, validate_starter_questions
from corporate.api import MAX_ID


class DocumentsField(forms.ModelMultipleChoiceField):
    """Django's, refusing an id no row can have as no valid choice before the database sees it."""

    def _check_values(self, value):
        for pk in value:
            try:
                too_big = abs(int(pk)) > MAX_ID
            except (TypeError, ValueError):
                continue  # Django's own check names it
            if too_big:
                raise forms.ValidationError(
                    self.error_messages["invalid_choice"], code="invalid_choice", params={"value": pk}
                )
        return super()._check_values(value)


class StarterQuestionsField(forms.CharField):
    """Suggested questions as lines of a text box; stored as a list."""

    widget = forms.Textarea(
        attrs={"rows": 4, "placeholder": "How many vacation days do I get?\nHow do I connect to the VPN?"}
    )

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(value)
        return value

    def to_python(self, value):
        if isinstance(value, list):
            return value
        return [line.strip() for line in (value or "").splitlines() if line.strip()]

    def validate(self, value):
        if self.required and not value:
            raise forms.ValidationError(self.error_messages["required"], code="required")

    def run_validators(self, value):
        validate_starter_questions(value)


def model_choices():
    from django.conf import settings

    from llmgateway.models import ModelConfig

    names = list(
        ModelConfig.objects.filter(enabled=True)
        .exclude(kind="embedding")
        .order_by("name")
        .values_list("name", flat=True)
    )
    choices = [("", f"Default model ({settings.LLM_DEFAULT_MODEL})")]
    choices += [(name, name) for name in names]
    if "offline" not in names and not ModelConfig.objects.filter(name="offline").exists():
        choices.append(("offline", "offline"))
    return choices


class AssistantForm(forms.ModelForm):
    model_name = forms.ChoiceField(label="Model", required=False)
    starter_questions = StarterQuestionsField(
        label="Suggested questions",
        required=False,
        help_text=f"Offered on an empty chat; one per line, up to {MAX_STARTERS}.",
    )

    class Meta:
        model = Assistant
        fields = [
            "name",
            "description",
            "instructions",
            "starter_questions",
            "model_name",
            "temperature",
            "max_tokens",
            "passages",
            "answer_without_sources",
            "all_documents",
            "documents",
        ]
        field_classes = {"documents": DocumentsField}
        widgets = {
            "instructions": forms.Textarea(attrs={"rows": 6}),
            "documents": forms.CheckboxSelectMultiple,
            "temperature": forms.NumberInput(attrs={"step": "0.1", "min": "0", "max": "2"}),
        }

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.workspace = workspace
        self.fields["model_name"].choices = model_choices()
        # Only this workspace's documents can be chosen; another's id is "not a valid choice".
        from documents.models import Document

        self.fields["documents"].queryset = Document.objects.in_workspace(workspace).order_by("title")
        self.fields["documents"].required = False
        current = self.instance.model_name if self.instance.pk else ""
        if current and current not in dict(self.fields["model_name"].choices):
            self.fields["model_name"].choices.append((current, f"{current} (no longer available)"))

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the assistant a name.")
        return name

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("all_documents") is False and not cleaned.get("documents"):
            self.add_error("documents", "Choose at least one document, or let the assistant use all of them.")
        return cleaned

    def save(self, commit=True):
        # An edit of what answers depend on makes a new version, so no cached answer of the old one is served.
        changed = self.instance.pk and bool({*Assistant.ANSWER_FIELDS, "documents"} & set(self.changed_data))
        assistant = super().save(commit=commit)
        if commit and changed:
            assistant.bump_version()
        return assistant


class QuestionForm(forms.Form):
    question = forms.CharField(max_length=MAX_QUESTION_CHARS, strip=True)


class FeedbackForm(forms.Form):
    feedback = forms.ChoiceField(choices=[("up", "up"), ("down", "down"), ("", "clear")], required=False)
    comment = forms.CharField(max_length=1000, required=False)
