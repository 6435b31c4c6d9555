"""Upstream provider keys, encrypted at rest with Fernet.

The key is LLM_KEY_ENCRYPTION_KEY when set (a Fernet key), otherwise one
derived from SECRET_KEY. Both are tried on decryption, so setting the
dedicated key later keeps old tokens readable until they are saved again.
"""

import base64
import hashlib
from functools import cache, lru_cache

from django.conf import settings


@cache
def _fernet():
    from cryptography.fernet import Fernet, MultiFernet

    keys = []
    dedicated = getattr(settings, "LLM_KEY_ENCRYPTION_KEY", "")
    if dedicated:
        keys.append(Fernet(dedicated.encode()))
    derived = base64.urlsafe_b64encode(
        hashlib.sha256(b"llmgateway-provider-keys:" + settings.SECRET_KEY.encode()).digest()
    )
    keys.append(Fernet(derived))
    return MultiFernet(keys)


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


@lru_cache(maxsize=256)
def decrypt(token: str) -> str:
    """The plain key (remembered per token in this process); ValueError when it cannot be read (key changed)."""
    from cryptography.fernet import InvalidToken

    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("the stored provider key cannot be decrypted with the configured keys") from None
