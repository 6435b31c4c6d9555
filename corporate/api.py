"""Shared REST API pieces: one error shape for every endpoint."""

from django.conf import settings
from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import APIException, Throttled
from rest_framework.renderers import JSONRenderer
from rest_framework.views import exception_handler as drf_exception_handler

from corporate.auth import cooloff_words
from corporate.errors import BODY_LIMIT_ERRORS, body_limit


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
    """DRF's handler, always answering JSON.

    Field errors stay keyed by field name so a client can show them next to
    the input; non-field problems come under a top-level `detail`. Django's body limits,
    raised while a parser reads the body, name the limit instead of falling
    through to the 400 page. Errors are JSON whatever the view renders on
    success (the schema view answers YAML, the browsable API HTML).
    """
    if isinstance(exc, BODY_LIMIT_ERRORS):
        status, message, code = body_limit(exc)
        exc = APIException(message, code)
        exc.status_code = status
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(response.data, list):
        response.data = {"detail": " ".join(str(item) for item in response.data)}
    request = context.get("request")
    if request is not None:
        request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
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
