from django.contrib import admin

from twofactor.models import TwoFactorPolicy


@admin.register(TwoFactorPolicy)
class TwoFactorPolicyAdmin(admin.ModelAdmin):
    list_display = ["required", "updated_at"]

    def has_add_permission(self, request):
        return not TwoFactorPolicy.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False
