"""The conformance suite every backend passes, built-in or third-party: the whole backend contract.

Subclass :class:`BackendConformance` in a pytest module and provide these fixtures:

``make_backend``
    a callable returning a *new* backend of the configuration under test, not signed in yet;
``backend``
    a signed-in backend (``login()`` already called); the default is ``make_backend()`` + login;
``seed``
    ``seed(path, {"field": "value", ...})`` stores a document in the real store so that reading
    ``path`` returns those fields;
``missing_path``
    a path that does not exist in the store;
``break_login``
    ``break_login(backend)`` makes the next logins of that (not yet signed-in) backend fail, and
    returns a callable that repairs it: the suite then checks that a failed sign-in can be retried;
``leased_request`` (only with ``LEASES = True``)
    a :class:`~jobsecrets.backends.base.ReadRequest` whose read obtains a lease;
``state_factory`` (only for a backend not registered as an entry point)
    what :func:`~jobsecrets.lifecycle.state.load_state` rebuilds the backend with.

and set the capability flags below. A backend that mints a credential per read (``github``: an
installation token) sets ``MINTS_CREDENTIALS``: ``seed(path, fields)`` then only makes ``path``
mintable, and the read tests check the minting contract instead of the fields (a whole value with a
lease, one per distinct read, that revokes, twice); ``READ_OPTIONS`` are the per-secret options every
read carries (``{"permissions": {"contents": "read"}}``). What is covered: registration and static description; sign-in,
and a retry after a failed sign-in; reads (fields, ``read_many`` order and isolation, missing paths,
errors without values, the typed facts of a document); ``check_access`` without reading; prefix
listing (or a clear refusal); ``metadata`` without a value; leases (renewal, revocation, idempotence);
our own token (revocation, idempotence); and resuming from a state file in a later process, which
revokes everything.

The tests use random canary values and assert with booleans, so a failure never prints a value.
"""

from __future__ import annotations

__all__ = ["BackendConformance"]

import secrets
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ..backends.base import AccessCheck, Backend, Document, ReadRequest
from ..backends.registry import available_types, get_backend_class
from ..errors import JobSecretsError, SecretNotFound
from ..fields import extract
from ..lifecycle.ledger import Ledger
from ..lifecycle.state import load_state, write_state

Seed = Callable[[str, dict[str, str]], None]
MakeBackend = Callable[[], Backend]
BreakLogin = Callable[[Backend], Callable[[], None]]
StateFactory = Callable[[str, str, dict[str, Any]], Backend]


def _canary() -> str:
    return "canary-" + secrets.token_hex(12)


def _unique(prefix: str = "conformance") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


class BackendConformance:
    """Mix into a pytest test class; see the module docstring for the fixtures it needs."""

    #: A path template for seeded documents: ``{name}`` is replaced by a unique name.
    PATH_TEMPLATE: ClassVar[str] = "{name}"
    #: True when the backend implements prefix listing.
    SUPPORTS_PREFIX: ClassVar[bool] = False
    #: True when ``metadata`` dates a seeded document (when it was set) without reading it.
    DATES_METADATA: ClassVar[bool] = False
    #: True when the store leases (``leased_request`` fixture); then renewal is tested too.
    LEASES: ClassVar[bool] = False
    #: True when signing in obtains a token of jobsecrets' own, which it must revoke.
    OWN_TOKEN: ClassVar[bool] = False
    #: True when the class must be found through the ``jobsecrets.backends`` entry points.
    REGISTERED: ClassVar[bool] = True
    #: True when each read mints a credential (a whole value with a lease) instead of reading fields.
    MINTS_CREDENTIALS: ClassVar[bool] = False
    #: Per-secret options every read of the suite carries.
    READ_OPTIONS: ClassVar[Mapping[str, Any]] = {}

    # ---- default fixtures ------------------------------------------------------------------

    @pytest.fixture
    def backend(self, make_backend: MakeBackend) -> Iterator[Backend]:
        """A signed-in backend of the configuration under test."""
        instance = make_backend()
        instance.login()
        yield instance
        instance.close()

    @pytest.fixture
    def leased_request(self) -> ReadRequest | None:
        """A read that obtains a lease (override when ``LEASES = True``)."""
        return None

    @pytest.fixture
    def state_factory(self) -> StateFactory | None:
        """How ``load_state`` rebuilds the backend (``None``: through the registry)."""
        return None

    def path(self, name: str | None = None) -> str:
        """A fresh path for this backend."""
        return self.PATH_TEMPLATE.format(name=name or _unique())

    def request(self, path: str, variable: str = "A") -> ReadRequest:
        """A read of ``path`` for one variable, with :attr:`READ_OPTIONS`."""
        return ReadRequest(
            path, options=dict(self.READ_OPTIONS), variables=(variable,), ref=f"x:{path}"
        )

    def check_read(self, backend: Backend, document: Document, fields: Mapping[str, str]) -> None:
        """The read returned ``fields``; for a minting backend, a credential with a lease that
        revokes (twice: idempotent)."""
        if not self.MINTS_CREDENTIALS:
            for key, value in fields.items():
                assert extract(document.data, key) == value, f"field {key!r} did not round-trip"
            return
        assert isinstance(document.data, (str, bytes)) and document.data, "no credential minted"
        lease = document.lease
        assert lease is not None and document.is_dynamic, "a minted credential has no lease"
        assert lease.backend == backend.name and lease.ttl > 0
        backend.revoke_lease(lease.lease_id)
        backend.revoke_lease(lease.lease_id)

    # ---- registration and static description ---------------------------------------------

    def test_registered_through_entry_point(self, backend: Backend) -> None:
        """The class is found under its type name in the ``jobsecrets.backends`` group."""
        if not self.REGISTERED:
            assert backend.type_name not in available_types() or get_backend_class(
                backend.type_name
            ) is not type(backend)
            return
        assert backend.type_name in available_types()
        assert get_backend_class(backend.type_name) is type(backend)

    def test_options_are_described(self, backend: Backend) -> None:
        """Every option and secret option has a one-line description."""
        for table in (backend.OPTIONS, backend.SECRET_OPTIONS):
            for key, description in table.items():
                assert isinstance(key, str) and key
                assert isinstance(description, str) and description and "\n" not in description

    def test_validate_options_returns_problems(self, backend: Backend) -> None:
        """Validation reports problems as a list of strings, never raises for bad types."""
        problems = type(backend).validate_options({key: object() for key in backend.OPTIONS})
        assert isinstance(problems, list)
        assert all(isinstance(p, str) for p in problems)

    def test_describe_auth_is_text(self, backend: Backend) -> None:
        """``plan`` can show how the backend signs in."""
        assert isinstance(type(backend).describe_auth(backend.options), str)
        assert isinstance(type(backend).exports_credentials(backend.options), bool)

    # ---- sign-in -----------------------------------------------------------------------------

    def test_sign_in_then_read(self, make_backend: MakeBackend, seed: Seed) -> None:
        """A new backend signs in once and reads; its token (if any) is described, not shown."""
        path = self.path()
        value = _canary()
        seed(path, {"v": value})
        backend = make_backend()
        try:
            backend.login()
            self.check_read(backend, backend.read(self.request(path)), {"v": value})
            record = backend.token_record()
            assert (record is not None) == self.OWN_TOKEN
            if record is not None:
                shown = record.token in repr(record)
                assert not shown, "a token record's repr shows the token"
        finally:
            backend.close()

    def test_a_failed_sign_in_can_be_retried(
        self, make_backend: MakeBackend, break_login: BreakLogin, seed: Seed
    ) -> None:
        """A sign-in that fails raises a JobSecretsError, obtains nothing, and a later login()
        really signs in (it must not return early on what the failed attempt left behind)."""
        path = self.path()
        value = _canary()
        seed(path, {"v": value})
        backend = make_backend()
        try:
            repair = break_login(backend)
            for _attempt in range(2):
                try:
                    backend.login()
                except JobSecretsError:
                    pass
                else:
                    raise AssertionError("a broken sign-in succeeded")
                assert backend.token_record() is None
            repair()
            backend.login()
            self.check_read(backend, backend.read(self.request(path)), {"v": value})
        finally:
            backend.close()

    # ---- reads -------------------------------------------------------------------------------

    def test_read_fields(self, backend: Backend, seed: Seed) -> None:
        """A seeded document reads back field by field, exactly."""
        path = self.path()
        first, second = _canary(), _canary()
        seed(path, {"first": first, "second": second})
        document = backend.read(self.request(path))
        assert isinstance(document, Document)
        self.check_read(backend, document, {"first": first, "second": second})

    def test_document_facts_are_typed(self, backend: Backend, seed: Seed) -> None:
        """A static read is not dynamic and has no lease; ``dated`` keeps the data and says when
        it was set, if it says anything, with where that date comes from."""
        path = self.path()
        seed(path, {"v": _canary()})
        request = self.request(path)
        document = backend.read(request)
        if self.MINTS_CREDENTIALS:
            assert document.lease is not None and document.is_dynamic is True
        else:
            assert document.lease is None and document.is_dynamic is False
        dated = backend.dated(request, document)
        assert isinstance(dated, Document) and dated.data == document.data
        if dated.updated is not None:
            assert dated.age_source, "a date without its source"

    def test_read_many_keeps_order_and_isolates_errors(
        self, backend: Backend, seed: Seed, missing_path: str
    ) -> None:
        """``read_many`` answers each request in order, one failure not spoiling the others."""
        values = {}
        requests = []
        for index in range(3):
            path = self.path()
            values[path] = _canary()
            seed(path, {"v": values[path]})
            requests.append(self.request(path, f"V{index}"))
        requests.insert(1, self.request(missing_path, "MISSING"))
        results = backend.read_many(requests)
        assert len(results) == len(requests)
        assert isinstance(results[1], SecretNotFound)
        leases = set()
        for request, result in zip(requests, results, strict=True):
            if request.path == missing_path:
                continue
            assert isinstance(result, Document)
            if self.MINTS_CREDENTIALS:
                # Distinct reads mint distinct credentials, each with its own lease.
                assert result.lease is not None and result.lease.lease_id not in leases
                leases.add(result.lease.lease_id)
            self.check_read(backend, result, {"v": values[request.path]})

    def test_missing_path_is_secret_not_found(self, backend: Backend, missing_path: str) -> None:
        """A missing path raises SecretNotFound naming the variable and the reference."""
        try:
            backend.read(self.request(missing_path, "SOME_VAR"))
        except SecretNotFound as error:
            assert "SOME_VAR" in error.message
        else:
            raise AssertionError("reading a missing path did not raise SecretNotFound")

    def test_errors_hold_no_value(self, backend: Backend, seed: Seed) -> None:
        """Asking a seeded document for a field it lacks fails without echoing its values."""
        path = self.path()
        value = _canary()
        seed(path, {"present": value})
        document = backend.read(self.request(path))
        try:
            extract(document.data, "absent")
        except LookupError as error:
            leaked = value in str(error)
            assert not leaked, "an error message held a secret value"
        else:
            raise AssertionError("a missing field did not fail")

    def test_check_access_reads_no_value(self, backend: Backend, seed: Seed) -> None:
        """``check_access`` answers an AccessCheck for a readable path."""
        path = self.path()
        seed(path, {"v": _canary()})
        check = backend.check_access(self.request(path))
        assert isinstance(check, AccessCheck)
        assert check.allowed

    def test_metadata_reads_no_value(self, backend: Backend, seed: Seed) -> None:
        """``metadata`` answers without the value: empty data, typed facts; with
        ``DATES_METADATA`` it says when the secret was set and from what."""
        path = self.path()
        value = _canary()
        seed(path, {"v": value})
        meta = backend.metadata(self.request(path))
        if meta is None:
            assert not self.DATES_METADATA, "metadata() said nothing"
            return
        assert isinstance(meta, Document)
        leaked = value in repr(meta.data) or bool(meta.data)
        assert not leaked, "metadata() returned data"
        assert meta.is_dynamic is self.MINTS_CREDENTIALS
        if self.DATES_METADATA:
            assert meta.updated is not None and meta.age_source

    def test_prefix_listing(self, backend: Backend, seed: Seed) -> None:
        """With prefix support, every seeded path under a prefix is listed, nothing else;
        without it, asking is a clear error (not an empty list that hides the missing support)."""
        if not self.SUPPORTS_PREFIX:
            try:
                backend.list_prefix(self.path(""))
            except JobSecretsError:
                return
            raise AssertionError("list_prefix neither listed (SUPPORTS_PREFIX) nor refused")
        group = _unique("prefix")
        paths = {self.path(f"{group}/item-{i}") for i in range(3)}
        for path in paths:
            seed(path, {"v": _canary()})
        prefix = self.path(f"{group}/")
        assert set(backend.list_prefix(prefix)) == paths

    # ---- leases and tokens -----------------------------------------------------------------

    def test_leases_renew_and_revoke(
        self, backend: Backend, leased_request: ReadRequest | None
    ) -> None:
        """A leased read names its lease (backend, id, TTL); renewing keeps the id and gives a
        TTL; revoking it twice is fine. A store without leases never hands one out."""
        if not self.LEASES:
            return
        assert leased_request is not None, "LEASES = True needs the leased_request fixture"
        document = backend.read(leased_request)
        lease = document.lease
        assert lease is not None and document.is_dynamic
        assert lease.backend == backend.name and lease.lease_id and lease.ttl > 0
        if lease.renewable:
            renewed = backend.renew_lease(lease, backend.renew_increment() or lease.ttl)
            assert renewed.lease_id == lease.lease_id and renewed.ttl > 0
        backend.revoke_lease(lease.lease_id)
        backend.revoke_lease(lease.lease_id)

    def test_revoke_unknown_lease_is_quiet(self, backend: Backend) -> None:
        """Revoking is idempotent: a lease that does not exist (any more) is not an error."""
        backend.revoke_lease(f"no/such/lease/{secrets.token_hex(4)}")

    def test_own_token_is_revoked_once_and_quietly_again(self, make_backend: MakeBackend) -> None:
        """The token a sign-in obtained is ours to revoke, and revoking it again is no error."""
        backend = make_backend()
        try:
            backend.login()
            record = backend.token_record()
            if not self.OWN_TOKEN:
                assert record is None, "a token the user supplied must not be listed as ours"
                return
            assert record is not None
            backend.revoke_token(record)
            backend.revoke_token(record)
        finally:
            backend.close()

    def test_resume_from_a_state_file_revokes_everything(
        self,
        make_backend: MakeBackend,
        leased_request: ReadRequest | None,
        state_factory: StateFactory | None,
    ) -> None:
        """``export`` hands leases and tokens over in a state file; a later process (``revoke``)
        rebuilds the backend from it, reconnects, and revokes all of it; a second revoke finds
        nothing left."""
        backend = make_backend()
        backend.login()
        ledger = Ledger()
        ledger.add_backend(backend)
        if self.LEASES:
            assert leased_request is not None, "LEASES = True needs the leased_request fixture"
            lease = backend.read(leased_request).lease
            assert lease is not None
            ledger.add_lease(lease)
        with tempfile.TemporaryDirectory() as directory:
            path = str(Path(directory) / "state.json")
            write_state(ledger, path)
            backend.close()
            later = load_state(path, dict(backend.context.env), factory=state_factory)
            assert later is not None
            report = later.revoke_all()
            later.close()
            assert report.ok, "revoking from the state file failed"
            # A minting backend keeps its credentials as its token record (sealed like a token).
            minted = self.MINTS_CREDENTIALS and self.LEASES
            assert report.tokens_revoked == (1 if self.OWN_TOKEN or minted else 0)
            assert report.leases_revoked + report.leases_with_token == (1 if self.LEASES else 0)
            assert later.is_empty()

    def test_close_is_idempotent(self, backend: Backend) -> None:
        """``close`` may be called more than once."""
        backend.close()
        backend.close()
