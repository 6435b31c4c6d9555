"""Shared REST API pieces: one error shape for every endpoint."""

from django.conf import settings
from django.db import models
from django.urls import reverse
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import APIException, ErrorDetail, PermissionDenied, Throttled
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from corporate.auth import cooloff_words
from corporate.errors import BODY_LIMIT_ERRORS, body_limit

# The largest id a row can have (a signed 64-bit integer): SQLite refuses to bind a bigger number at all.
MAX_ID = 2**63 - 1
# An id in an address (the routers' `lookup_value_regex`): ASCII digits only, as Django's <int:...> takes.
ID_PATTERN = "[0-9]+"


def parse_id(value):
    """The row id that `value` (from an address, a query string or a form) spells, or None.

    Only ASCII digits: str.isdigit() is also true of "²" (which int() refuses) and of other scripts'
    digits such as "١" (which int() reads as 1), so neither is taken for an id.
    """
    text = str(value) if value is not None else ""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    number = int(text)
    return number if number <= MAX_ID else None


class _OnlyStrings:
    """Only a JSON string: a number or a list is refused, not turned into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("Not a valid string.", code="invalid")
        return super().to_internal_value(data)


class StrictCharField(_OnlyStrings, serializers.CharField):
    pass


class StrictSlugField(_OnlyStrings, serializers.SlugField):
    pass


class StrictEmailField(_OnlyStrings, serializers.EmailField):
    pass


class StrictManyRelatedField(serializers.ManyRelatedField):
    """Only a JSON array of ids: DRF's takes any iterable, so an object {} would be read as its keys."""

    def to_internal_value(self, data):
        if not isinstance(data, list):
            self.fail("not_a_list", input_type=type(data).__name__)
        return super().to_internal_value(data)


class StrictModelSerializer(serializers.ModelSerializer):
    """A model serializer whose text fields take only JSON strings (DRF's own turn 1e40 into "1e+40")."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
        models.SlugField: StrictSlugField,
        models.EmailField: StrictEmailField,
    }


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
    response.data = _encodable(response.data)
    request = context.get("request")
    if request is not None:
        request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
    return response


def _encodable(data):
    """Error data that encodes as UTF-8: a message quoting a lone surrogate from the body (JSON allows "\\ud800") gets it escaped."""
    if isinstance(data, str):
        try:
            data.encode()
        except UnicodeEncodeError:
            return ErrorDetail(data.encode("utf-8", "backslashreplace").decode(), getattr(data, "code", None))
        return data
    if isinstance(data, dict):
        return {key: _encodable(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_encodable(item) for item in data]
    return data


class TokenSerializer(AuthTokenSerializer):
    """DRF's, with `username` no longer than an email address can be: a longer one is never looked up."""

    username = serializers.CharField(label="Username", max_length=254, write_only=True)


class ObtainTokenView(ObtainAuthToken):
    """POST email (as `username`) and password for an API token; a locked-out account gets 429 with the reason."""

    # The API's parsers (a body nested too deeply is a 400), not DRF's defaults that ObtainAuthToken names.
    parser_classes = api_settings.DEFAULT_PARSER_CLASSES
    serializer_class = TokenSerializer

    def post(self, request, *args, **kwargs):
        try:
            serializer = self.get_serializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            user = serializer.validated_data["user"]
            _check_second_factor(request, user)
            token, _ = Token.objects.get_or_create(user=user)
            return Response({"token": token.key})
        except serializers.ValidationError:
            if getattr(request, "axes_locked_out", False):
                refusal = Throttled(detail=f"Too many failed sign-ins; try again in {cooloff_words()}.")
                refusal.wait = int(settings.AXES_COOLOFF_TIME.total_seconds())  # Retry-After, not in the text
                raise refusal from None
            raise


def _check_second_factor(request, user):
    """An account with two-factor sign-in also sends `otp_code`; a wrong one counts as a failed sign-in.

    An account that must use it and has not set it up gets no token (403): on
    the site it reaches nothing before enrolling, and a token would skip that.
    """
    from django.contrib.auth.signals import user_login_failed

    from twofactor import policy

    if not policy.is_enrolled(user):
        if policy.is_required(user):
            raise PermissionDenied(
                "This account must use two-factor sign-in: sign in on the site and set it up first "
                f"({reverse('twofactor:overview')}), then ask for a token with otp_code."
            )
        return
    code = request.data.get("otp_code")
    if code and policy.verify(user, code):
        return
    user_login_failed.send(sender=__name__, credentials={"username": user.email}, request=request)
    message = "This account uses two-factor sign-in: send otp_code, the code from the authenticator app."
    if code:
        message = "That otp_code is not right."
    raise serializers.ValidationError({"otp_code": [message]})
