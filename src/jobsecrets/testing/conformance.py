"""The conformance suite every backend passes, built-in or third-party.

Subclass :class:`BackendConformance` in a pytest module and provide three fixtures:

``backend``
    a signed-in backend instance (``login()`` already called);
``seed``
    a callable ``seed(path, {"field": "value", ...})`` that stores a document in the real store
    so that reading ``path`` returns those fields;
``missing_path``
    a path that does not exist in the store.

Optionally override ``whole_value_path`` behaviour by setting ``SUPPORTS_PREFIX = True`` when the
backend implements :meth:`~jobsecrets.backends.base.Backend.list_prefix`.

The tests use random canary values and assert with booleans, so a failure never prints a value.
"""

from __future__ import annotations

__all__ = ["BackendConformance"]

import secrets
from collections.abc import Callable
from typing import ClassVar

from ..backends.base import AccessCheck, Backend, Document, ReadRequest
from ..backends.registry import available_types, get_backend_class
from ..errors import JobSecretsError, SecretNotFound
from ..fields import extract

Seed = Callable[[str, dict[str, str]], None]


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

    def path(self, name: str | None = None) -> str:
        """A fresh path for this backend."""
        return self.PATH_TEMPLATE.format(name=name or _unique())

    # ---- registration and static description ---------------------------------------------

    def test_registered_through_entry_point(self, backend: Backend) -> None:
        """The class is found under its type name in the ``jobsecrets.backends`` group."""
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

    # ---- reads -------------------------------------------------------------------------------

    def test_read_fields(self, backend: Backend, seed: Seed) -> None:
        """A seeded document reads back field by field, exactly."""
        path = self.path()
        first, second = _canary(), _canary()
        seed(path, {"first": first, "second": second})
        document = backend.read(ReadRequest(path, variables=("A",), ref=f"x:{path}"))
        assert isinstance(document, Document)
        assert extract(document.data, "first") == first, "field 'first' did not round-trip"
        assert extract(document.data, "second") == second, "field 'second' did not round-trip"

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
            requests.append(ReadRequest(path, variables=(f"V{index}",), ref=f"x:{path}"))
        requests.insert(
            1, ReadRequest(missing_path, variables=("MISSING",), ref=f"x:{missing_path}")
        )
        results = backend.read_many(requests)
        assert len(results) == len(requests)
        assert isinstance(results[1], SecretNotFound)
        for request, result in zip(requests, results, strict=True):
            if request.path == missing_path:
                continue
            assert isinstance(result, Document)
            assert extract(result.data, "v") == values[request.path], "read_many mixed up documents"

    def test_missing_path_is_secret_not_found(self, backend: Backend, missing_path: str) -> None:
        """A missing path raises SecretNotFound naming the variable and the reference."""
        try:
            backend.read(
                ReadRequest(missing_path, variables=("SOME_VAR",), ref=f"x:{missing_path}")
            )
        except SecretNotFound as error:
            assert "SOME_VAR" in error.message
        else:
            raise AssertionError("reading a missing path did not raise SecretNotFound")

    def test_errors_hold_no_value(self, backend: Backend, seed: Seed) -> None:
        """Asking a seeded document for a field it lacks fails without echoing its values."""
        path = self.path()
        value = _canary()
        seed(path, {"present": value})
        document = backend.read(ReadRequest(path, variables=("A",), ref=f"x:{path}"))
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
        check = backend.check_access(ReadRequest(path, variables=("A",), ref=f"x:{path}"))
        assert isinstance(check, AccessCheck)
        assert check.allowed

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

    def test_revoke_unknown_lease_is_quiet(self, backend: Backend) -> None:
        """Revoking is idempotent: a lease that does not exist (any more) is not an error."""
        backend.revoke_lease(f"no/such/lease/{secrets.token_hex(4)}")

    def test_close_is_idempotent(self, backend: Backend) -> None:
        """``close`` may be called more than once."""
        backend.close()
        backend.close()
