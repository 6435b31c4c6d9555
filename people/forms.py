from django import forms
from django.contrib.auth.password_validation import validate_password

from corporate.models import User


class UserSearchForm(forms.Form):
    q = forms.CharField(max_length=254, required=False, label="Search")
    status = forms.ChoiceField(
        choices=[("", "Everyone"), ("active", "Active"), ("inactive", "Deactivated"), ("staff", "Staff")],
        required=False,
    )

    def filter(self, queryset):
        data = self.cleaned_data
        if data.get("q"):
            words = data["q"].strip()
            queryset = queryset.filter(email__icontains=words) | queryset.filter(full_name__icontains=words)
        status = data.get("status")
        if status == "active":
            queryset = queryset.filter(is_active=True)
        elif status == "inactive":
            queryset = queryset.filter(is_active=False)
        elif status == "staff":
            queryset = queryset.filter(is_staff=True)
        return queryset


class UserCreateForm(forms.Form):
    email = forms.EmailField(max_length=254)
    full_name = forms.CharField(max_length=150, required=False, label="Full name")
    how = forms.ChoiceField(
        label="Password",
        choices=[("mail", "Mail a link to choose a password"), ("password", "Set an initial password now")],
        initial="mail",
        widget=forms.RadioSelect,
    )
    password1 = forms.CharField(label="Initial password", required=False, widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label="Initial password again", required=False, widget=forms.PasswordInput, strip=False)

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("A user with that email already exists.")
        return email

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("how") != "password":
            cleaned["password1"] = cleaned["password2"] = ""
            return cleaned
        password1, password2 = cleaned.get("password1"), cleaned.get("password2")
        if not password1:
            self.add_error("password1", "Enter the initial password, or choose to mail a link instead.")
        elif password1 != password2:
            self.add_error("password2", "The two passwords differ.")
        else:
            candidate = User(email=cleaned.get("email") or "", full_name=cleaned.get("full_name") or "")
            try:
                validate_password(password1, candidate)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned
