from django import forms

from workspaces.models import SLUG_VALIDATOR, Workspace
from workspaces.roles import Role


class WorkspaceForm(forms.ModelForm):
    class Meta:
        model = Workspace
        fields = ["name", "slug", "description"]
        help_texts = {
            "slug": "Used in addresses, e.g. /workspaces/<b>research</b>/. Lowercase letters, digits and hyphens.",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
        # The form's own slug check would say "letters, numbers, underscores"; say what the model accepts.
        error_messages = {"slug": {"invalid": SLUG_VALIDATOR.message}}

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the workspace a name.")
        return name


class WorkspaceSettingsForm(WorkspaceForm):
    class Meta(WorkspaceForm.Meta):
        fields = ["name", "description"]


class InvitationForm(forms.Form):
    email = forms.EmailField(max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class DeleteWorkspaceForm(forms.Form):
    confirm = forms.CharField(label="Type the workspace's slug to confirm", max_length=50)
