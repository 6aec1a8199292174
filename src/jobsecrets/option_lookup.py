"""Reading the references that backend options name (a GitHub App's private key in Vault or AWS).

A backend that needs a secret to sign in (``private_key: vault:secret/ci/github-app#pem``) gets it
through ``BackendContext.lookup``, which the session points here. The value is read with the session's
own backend of that name, the one in the ledger, so its login token and any lease are revoked with the
job's; it is returned to the asking backend only: never a variable, never written, never logged.
"""

from __future__ import annotations

__all__ = ["read_option_reference"]

import threading
from collections.abc import Callable

from . import unshown
from .backends.base import Backend, ReadRequest
from .errors import ConfigError, SecretNotFound, ValueNotExportable
from .fields import FieldMissing, extract, to_text
from .jsonsafe import NestedTooDeeply
from .lifecycle.ledger import Ledger
from .refs import parse_reference
from .spec.model import Spec

_build_lock = threading.Lock()


def read_option_reference(
    spec: Spec, build_backend: Callable[[str], Backend], ledger: Ledger, text: str
) -> str | bytes:
    """The value at reference ``text`` (``NAME:PATH#FIELD``), read through the session's backend.

    ``build_backend(name)`` is the session's: the ledger's backend of that name (the resolver's),
    or a new one recorded in the ledger before it signs in.
    """
    try:
        ref = parse_reference(text)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if ref.backend is None or ref.backend not in spec.backends:
        raise ConfigError(
            f"{text!r}: a backend option must name a declared backend (NAME:PATH#FIELD)"
        )
    with _build_lock:
        backend = build_backend(ref.backend)
    # login() is idempotent: when the resolver's pipeline signs this backend in at the same time,
    # one of them does it and the other waits for it.
    backend.login()
    ledger.signed_in(backend)  # recorded in export's state file at once, like the resolver's
    document = backend.read(ReadRequest(ref.path, variables=("(backend option)",), ref=text))
    if document.lease is not None:
        ledger.add_lease(document.lease)
    try:
        value = to_text(extract(document.data, ref.field))
    except FieldMissing as error:
        raise SecretNotFound(f"{text}: {error}") from None
    except NestedTooDeeply as error:  # too deep to write as JSON (nothing else: no value quoted)
        raise ValueNotExportable(f"{text}: {error}") from None
    # A backend's credential (an App's private key, a secret_id): a store's later error text may
    # quote it, and it is no variable, so the resolver never remembers it.
    unshown.remember(value)
    return value
