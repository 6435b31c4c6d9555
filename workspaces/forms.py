from django import forms

from workspaces.models import SLUG_VALIDATOR, Workspace
from workspaces.roles import Role


class WorkspaceForm(forms.ModelForm):
    class Meta:
        model = Workspace
        fields = ["name", "slug", "description"]
        # People read "short name"; the API and the code call it the slug.
        labels = {"slug": "Short name"}
        help_texts = {
            "slug": "Used in the workspace's web address, e.g. /workspaces/<b>research</b>/. "
            "Lowercase letters, digits and hyphens; filled in from the name until you change it.",
        }
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            # static/js/app.js fills it in from the name until it is edited.
            "slug": forms.TextInput(
                attrs={"data-slug-from": "id_name", "autocapitalize": "none", "spellcheck": "false"}
            ),
        }
        # The form's own slug check would say "letters, numbers, underscores"; say what the model accepts.
        error_messages = {
            "slug": {
                "invalid": SLUG_VALIDATOR.message,
                "unique": "A workspace with this short name already exists. Choose another.",
            }
        }

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
    confirm = forms.CharField(label="Type the workspace's short name to confirm", max_length=50)

    def __init__(self, *args, workspace=None, **kwargs):
        super().__init__(*args, **kwargs)
        if workspace is not None:
            self.fields["confirm"].label = f"Type its short name, {workspace.slug}, to confirm"
