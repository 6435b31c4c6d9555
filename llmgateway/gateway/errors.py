"""The gateway's error: what the client gets, in OpenAI's shape, with the right status."""

from corporate.errors import OPENAI_ERROR_TYPES
from llmgateway.providers.base import ProviderError

# The same table answers errors raised outside the gateway under /v1/ (corporate/errors.py).
ERROR_TYPES = OPENAI_ERROR_TYPES


class GatewayError(Exception):
    """An error for the client, in OpenAI's shape."""

    def __init__(
        self,
        status,
        message,
        *,
        code=None,
        param=None,
        type=None,  # noqa: A002
        retry_after=None,
        headers=None,
        limit=None,
    ):
        super().__init__(message)
        self.headers = headers or {}
        self.limit = limit  # the metering Refusal behind a 429 from a limit
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type or ERROR_TYPES.get(status, "api_error")
        self.retry_after = retry_after
        self.request_id = None  # the usage record's id when the refusal or failure was recorded

    def body(self):
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def as_dict(self):
        return {
            "status": self.status,
            "message": self.message,
            "code": self.code,
            "param": self.param,
            "type": self.type,
            "retry_after": self.retry_after,
        }

    @classmethod
    def from_dict(cls, data):
        return cls(
            data["status"],
            data["message"],
            code=data.get("code"),
            param=data.get("param"),
            type=data.get("type"),
            retry_after=data.get("retry_after"),
        )

    @classmethod
    def from_provider(cls, exc: ProviderError):
        retry_after = int(exc.retry_after + 0.999) if exc.retry_after is not None else None
        return cls(exc.status, exc.message, code=exc.code, param=getattr(exc, "param", None), retry_after=retry_after)


def bad_request(message, param=None, code=None):
    return GatewayError(400, message, param=param, code=code)
