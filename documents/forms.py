from django import forms

from documents.models import Kind, Status


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field that takes several files (Django's documented pattern)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"multiple": True, "data-upload-input": ""}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)] if data else []


class UploadForm(forms.Form):
    files = MultipleFileField(
        label="Files",
        required=False,
        help_text="PDF, Word (.docx), text, Markdown, HTML or CSV. Several at once; each up to the size limit.",
    )


class FilterForm(forms.Form):
    q = forms.CharField(label="Title", required=False, max_length=200)
    status = forms.ChoiceField(label="Status", required=False, choices=[("", "Any status"), *Status.choices])
    kind = forms.ChoiceField(label="Type", required=False, choices=[("", "Any type"), *Kind.choices])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["q"].widget.input_type = "search"
        self.fields["q"].widget.attrs.update(placeholder="Filter by title or file name")
        # The filter row shows no labels: each control carries its own name.
        for name in ("q", "status", "kind"):
            self.fields[name].widget.attrs["aria-label"] = f"Filter by {self.fields[name].label.lower()}"

    def apply(self, queryset):
        from django.db.models import Q

        if not self.is_valid():
            return queryset
        data = self.cleaned_data
        if data["q"]:
            queryset = queryset.filter(Q(title__icontains=data["q"]) | Q(original_name__icontains=data["q"]))
        if data["status"]:
            queryset = queryset.filter(status=data["status"])
        if data["kind"]:
            queryset = queryset.filter(kind=data["kind"])
        return queryset


class SearchForm(forms.Form):
    q = forms.CharField(label="Words to find", required=False, max_length=500)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["q"].widget.input_type = "search"
        self.fields["q"].widget.attrs.update(placeholder='Words to find, "an exact phrase", -exclude', autofocus=True)
