"""Encryption of the login tokens a state file holds, under ``$JOBSECRETS_STATE_KEY``."""

from __future__ import annotations

__all__ = ["STATE_KEY_ENV", "StateCipher"]

import base64
from collections.abc import Mapping

from ..errors import ConfigError

STATE_KEY_ENV = "JOBSECRETS_STATE_KEY"
# Fewer characters than this cannot hold the 128 bits of entropy a key needs.
_MIN_KEY_LENGTH = 32
_HKDF_INFO = b"jobsecrets state file token v1"


class StateCipher:
    """Encrypts the tokens of a state file under a key from ``$JOBSECRETS_STATE_KEY``.

    Any string of 32+ characters from a good random source is accepted (``openssl rand -hex 32``,
    Node's ``crypto.randomBytes(32).toString('base64')``): it is stretched to a Fernet key with
    HKDF-SHA256, so wrappers need no Fernet-specific encoding. ``cryptography`` is imported only
    here, only when a key is set: it is an optional dependency (``pip install cryptography``).
    """

    def __init__(self, secret: str) -> None:
        if len(secret) < _MIN_KEY_LENGTH:
            raise ConfigError(
                f"${STATE_KEY_ENV} is too short ({len(secret)} characters; at least "
                f"{_MIN_KEY_LENGTH} needed)",
                hint="use a random key, e.g. `openssl rand -hex 32`",
            )
        try:
            from cryptography.fernet import Fernet
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.kdf.hkdf import HKDF
        except ImportError:
            raise ConfigError(
                f"${STATE_KEY_ENV} is set but the 'cryptography' package is not installed",
                hint="pip install cryptography (next to jobsecrets), or unset the key",
            ) from None
        try:
            material = secret.encode("utf-8")
        except UnicodeEncodeError:
            # A byte that is no UTF-8 in the environment (a surrogate here): said without the key.
            raise ConfigError(
                f"${STATE_KEY_ENV} is not UTF-8 text",
                hint="use a random key of letters and digits, e.g. `openssl rand -hex 32`",
            ) from None
        # No salt: the key is already random; HKDF only turns it into Fernet's 32 bytes.
        raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
            material
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(raw))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StateCipher | None:
        """The cipher for ``$JOBSECRETS_STATE_KEY``, or ``None`` when it is not set."""
        secret = env.get(STATE_KEY_ENV, "")
        return cls(secret) if secret else None

    def seal(self, token: str) -> str:
        """Encrypt one token (authenticated; a new random IV each time)."""
        return self._fernet.encrypt(token.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str | None:
        """Decrypt one token; ``None`` when this key did not seal it (or it was tampered with)."""
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            return None
