from django.conf import settings

from corporate.models import ColorScheme


def site(request):
    return {
        "SITE_NAME": settings.SITE_NAME,
        "SIGNUP_ENABLED": settings.SIGNUP_ENABLED,
        "COLOR_SCHEMES": ColorScheme.choices,
    }
