"""Shared REST API pieces: one error shape for every endpoint."""

from django.conf import settings
from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import Throttled
from rest_framework.views import exception_handler as drf_exception_handler

from corporate.auth import cooloff_words


class StrictCharField(serializers.CharField):
    """Only a JSON string: a number or a list is refused, not turned into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """Only JSON true or false: the string "true", 1 or "on" is refused, never taken for a yes."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        self.fail("invalid", input=data)


def exception_handler(exc, context):
    """DRF's handler, with a top-level `detail` on every error body.

    Field errors stay keyed by field name so a client can show them next to
    the input; non-field problems come under `detail`.
    """
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, list):
        response.data = {"detail": " ".join(str(item) for item in response.data)}
    return response


class ObtainTokenView(ObtainAuthToken):
    """POST email (as `username`) and password for an API token; a locked-out account gets 429 with the reason."""

    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except serializers.ValidationError:
            if getattr(request, "axes_locked_out", False):
                refusal = Throttled(detail=f"Too many failed sign-ins; try again in {cooloff_words()}.")
                refusal.wait = int(settings.AXES_COOLOFF_TIME.total_seconds())  # Retry-After, not in the text
                raise refusal from None
            raise
