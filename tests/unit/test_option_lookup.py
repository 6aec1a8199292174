"""Backend options read from another store (``private_key: vault:secret/ci/app#pem``).

PYTEST_DONT_REWRITE: plain asserts, so a failing one prints its message and never a value.
"""

from __future__ import annotations

from jobsecrets import unshown
from jobsecrets.backends.base import BackendContext
from jobsecrets.lifecycle.ledger import Ledger
from jobsecrets.option_lookup import read_option_reference
from jobsecrets.spec import parse_spec
from jobsecrets.testing.memory import MemoryBackend, MemoryStore

KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEkey-of-the-app-3f9d\n-----END RSA PRIVATE KEY-----\n"
SPEC = "version: 1\nbackends:\n  vault: {type: vault}\nsecrets:\n  A: vault:secret/a#v\n"


def test_a_value_read_for_a_backend_option_is_never_printed() -> None:
    """It is no variable, so the resolver never remembered it: a store's later error text
    quoting the App's key was printed as it was."""
    store = MemoryStore(documents={"secret/ci/app": {"pem": KEY}})
    spec = parse_spec(SPEC)

    def build(name: str) -> MemoryBackend:
        return MemoryBackend(name, {}, BackendContext(env={}), store=store)

    unshown.forget_all()
    try:
        value = read_option_reference(spec, build, Ledger(), "vault:secret/ci/app#pem")
        assert value == KEY, "the option's value was not read"
        values, _ = unshown.remembered()
        assert KEY in values, "the option's value is not remembered"
        shown = unshown.scrub(f"refused key {KEY}")
        assert shown.startswith("refused key ") and "MIIEkey" not in shown, "not masked"
    finally:
        unshown.forget_all()
