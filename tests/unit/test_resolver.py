"""The resolver against the fake backend: one read per path, all or nothing, leases recorded."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from jobsecrets.backends.base import BackendContext
from jobsecrets.commands.plan import build_report
from jobsecrets.errors import AccessDenied, BackendError, ConfigError, SecretNotFound
from jobsecrets.lifecycle.ledger import Ledger
from jobsecrets.resolver import resolve
from jobsecrets.session import Session
from jobsecrets.testing.specs import SpecBuilder, read_journal


def setup(tmp_path: Path, documents: dict[str, object], secrets: str, **options: object) -> tuple:
    builder = SpecBuilder().fake(tmp_path, documents, **options).merge("secrets:\n" + secrets)
    spec = builder.parse(str(builder.write(tmp_path)))
    return spec, BackendContext(env={}, spec_dir=str(tmp_path))


def journal(tmp_path: Path) -> list[dict]:
    return read_journal(tmp_path)


def test_one_read_per_path_whatever_the_number_of_fields(tmp_path: Path) -> None:
    spec, context = setup(
        tmp_path,
        {"db/creds": {"username": "u-1", "password": "p-1"}, "app": {"a": "x"}},
        "  USER: fake:db/creds#username\n  PASS: fake:db/creds#password\n  A: fake:app#a\n",
        lease_ttl=60,
    )
    ledger = Ledger()
    result = resolve(spec, context, ledger)
    assert result.env() == {"USER": "u-1", "PASS": "p-1", "A": "x"}
    reads = [e["path"] for e in journal(tmp_path) if e["event"] == "read"]
    assert sorted(reads) == ["app", "db/creds"]
    assert len(ledger.leases) == 2


def test_optional_missing_is_left_out(tmp_path: Path) -> None:
    spec, context = setup(
        tmp_path,
        {"app": {"a": "x"}},
        "  A: fake:app#a\n  B:\n    ref: fake:nope#b\n    optional: true\n  C:\n    ref: fake:app#nofield\n    optional: true\n",
    )
    result = resolve(spec, context, Ledger())
    assert result.env() == {"A": "x"} and result.skipped == ["B", "C"]


def test_failure_returns_nothing_but_records_leases(tmp_path: Path) -> None:
    spec, context = setup(
        tmp_path,
        {"first": {"v": "value-1"}},
        "  A: fake:first#v\n  B: fake:missing#v\n",
        lease_ttl=60,
    )
    ledger = Ledger()
    with pytest.raises(SecretNotFound) as info:
        resolve(spec, context, ledger)
    assert "B" in info.value.message and "fake:missing#v" in info.value.message
    assert len(ledger.leases) == 1, "the lease obtained before the failure must be in the ledger"
    report = ledger.revoke_all()
    assert report.ok and report.leases_revoked == 1
    assert [e["event"] for e in journal(tmp_path)].count("revoke") == 1


def test_several_failures_are_all_named(tmp_path: Path) -> None:
    spec, context = setup(
        tmp_path,
        {"ok": {"v": "1"}},
        "  A: fake:gone#v\n  B: fake:ok#missing\n  C: fake:denied#v\n",
        deny=["denied"],
    )
    with pytest.raises(SecretNotFound) as info:
        resolve(spec, context, Ledger())
    assert "3 variables failed" in info.value.message
    for name in ("A", "B", "C"):
        assert f"{name} (" in info.value.message


def test_denied_and_backend_errors_keep_their_exit_codes(tmp_path: Path) -> None:
    spec, context = setup(tmp_path, {}, "  A: fake:x#v\n", deny=["x"])
    with pytest.raises(AccessDenied) as denied:
        resolve(spec, context, Ledger())
    assert denied.value.exit_code == 5
    spec, context = setup(tmp_path, {}, "  A: fake:x#v\n", fail=["x"])
    with pytest.raises(BackendError) as failed:
        resolve(spec, context, Ledger())
    assert failed.value.exit_code == 6


def test_whole_values_nested_fields_and_json_strings(tmp_path: Path) -> None:
    spec, context = setup(
        tmp_path,
        {
            "blob": "plain text",
            "json": json.dumps({"a": {"b": "deep"}}),
            "doc": {"n": 5, "obj": {"k": "v"}},
        },
        "  BLOB: fake:blob\n  DEEP: fake:json#a.b\n  DEEP2: fake:json#a/b\n  N: fake:doc#n\n  OBJ: fake:doc#obj\n"
        "  B64:\n    ref: fake:blob\n    encoding: base64\n",
    )
    env = resolve(spec, context, Ledger()).env()
    assert env["BLOB"] == "plain text" and env["DEEP"] == env["DEEP2"] == "deep"
    assert env["N"] == "5" and json.loads(env["OBJ"]) == {"k": "v"}
    assert base64.b64decode(env["B64"]) == b"plain text"


def test_file_values_are_0600_and_removed_on_revoke(tmp_path: Path) -> None:
    spec, context = setup(
        tmp_path,
        {"tls": {"key": "-----BEGIN KEY-----\nabc\n"}},
        "  TLS:\n    ref: fake:tls#key\n    file: true\n",
    )
    ledger = Ledger()
    env = resolve(spec, context, ledger, files_dir=str(tmp_path)).env()
    path = env["TLS"]
    assert os.path.isfile(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert Path(path).read_text().startswith("-----BEGIN KEY-----")
    ledger.revoke_all()
    assert not os.path.exists(path) and not os.path.exists(os.path.dirname(path))


def test_prefix_selection_names_and_collisions(tmp_path: Path) -> None:
    docs = {"prod/pay/stripe-key": "s", "prod/pay/db.url": "d", "prod/other": "o"}
    spec, context = setup(
        tmp_path, docs, "  PAY:\n    ref: fake:prod/pay/*\n    name_prefix: PAY_\n"
    )
    assert resolve(spec, context, Ledger()).env() == {"PAY_STRIPE_KEY": "s", "PAY_DB_URL": "d"}
    docs["prod/pay/stripe_key"] = "clash"
    spec, context = setup(tmp_path, docs, "  PAY:\n    ref: fake:prod/pay/*\n")
    with pytest.raises(ConfigError) as info:
        resolve(spec, context, Ledger())
    assert "taken" in info.value.message
    spec, context = setup(tmp_path, {"x/ld_preload": "v"}, "  X:\n    ref: fake:x/*\n")
    with pytest.raises(ConfigError) as denied:
        resolve(spec, context, Ledger())
    assert "LD_PRELOAD" in denied.value.message


def test_plan_reads_nothing(tmp_path: Path) -> None:
    setup(tmp_path, {"a": {"b": "c"}}, "  A: fake:a#b\n")
    session = Session(str(tmp_path / "jobsecrets.yml"), None, env={})
    report = build_report(session, check=False)
    session.finish()
    assert [(v.name, v.path, v.field, v.type) for v in report.variables] == [
        ("A", "a", "b", "fake")
    ]
    assert journal(tmp_path) == []


def test_an_unexpected_error_in_one_read_keeps_the_other_reads_leases(tmp_path: Path) -> None:
    """A hostile answer or a bug in one read must not drop the leases of the others: they go to
    the ledger, to be revoked, and the error names no value (only the exception's type)."""
    from jobsecrets.backends.base import Backend, Document, ReadRequest
    from jobsecrets.spec import BackendSpec
    from jobsecrets.testing.fake import FakeBackend

    class Odd(FakeBackend):
        def read(self, request: ReadRequest) -> Document:
            if request.path == "odd":
                raise ValueError("s3cr3t-in-the-message")
            return super().read(request)

    def factory(backend_spec: BackendSpec, context: BackendContext) -> Backend:
        return Odd(backend_spec.name, backend_spec.options, context)

    spec, context = setup(
        tmp_path,
        {"db/creds": {"password": "p-1"}, "odd": {"v": "x"}},
        "  PASS: fake:db/creds#password\n  ODD: fake:odd#v\n",
        lease_ttl=60,
    )
    ledger = Ledger()
    with pytest.raises(BackendError) as info:
        resolve(spec, context, ledger, backend_factory=factory)
    assert "ODD" in info.value.message and "ValueError" in info.value.message
    assert "s3cr3t" not in str(info.value)
    leased = {e["lease_id"] for e in journal(tmp_path) if e["event"] == "lease"}
    assert len(leased) == 1
    assert leased <= set(ledger.leases), "a lease obtained by a sibling read was dropped"


def test_prefix_members_with_control_characters_are_refused(tmp_path: Path) -> None:
    docs = {"x/ok": "v", "x/evil\n::set-env name=A::b": "w", "x/c1\x9b": "z"}
    spec, context = setup(tmp_path, docs, "  X:\n    ref: fake:x/*\n")
    with pytest.raises(ConfigError) as info:
        resolve(spec, context, Ledger())
    message = info.value.message
    assert "refused a secret name" in message
    assert "\n::set-env" not in message and "\x9b" not in message


def test_meanwhile_runs_once_while_the_store_still_answers(tmp_path: Path) -> None:
    import time

    spec, context = setup(tmp_path, {"app": {"a": "x"}}, "  A: fake:app#a\n", delay=0.5)
    started = time.monotonic()
    called: list[float] = []
    result = resolve(spec, context, Ledger(), meanwhile=lambda: called.append(time.monotonic()))
    took = time.monotonic() - started
    assert result.env() == {"A": "x"}
    assert len(called) == 1
    # Before the read's half second was over, not after it: the caller's work overlaps the store's.
    assert called[0] - started < 0.3 < took


def test_a_failing_meanwhile_fails_resolution(tmp_path: Path) -> None:
    spec, context = setup(tmp_path, {"app": {"a": "x"}}, "  A: fake:app#a\n", delay=0.2)

    def meanwhile() -> None:
        raise RuntimeError("preparation failed")

    with pytest.raises(RuntimeError, match="preparation failed"):
        resolve(spec, context, Ledger(), meanwhile=meanwhile)


def test_a_failed_resolution_reports_each_variable_with_its_own_error(tmp_path: Path) -> None:
    """``on_failure`` gets what the combined error cannot say: the variables read (withheld, their
    leases issued), and each failed one with its own error, a backend that could not sign in
    failing each of its entries with that error."""
    from jobsecrets.backends.base import Backend
    from jobsecrets.errors import AuthError
    from jobsecrets.resolved import Resolution
    from jobsecrets.spec import BackendSpec
    from jobsecrets.testing import MemoryStore
    from jobsecrets.testing.fake import FakeBackend

    refusing = MemoryStore(fail_login="role not allowed")

    def factory(backend_spec: BackendSpec, context: BackendContext) -> Backend:
        if backend_spec.name == "other":
            return refusing.factory(backend_spec, context)
        return FakeBackend(backend_spec.name, backend_spec.options, context)

    builder = (
        SpecBuilder()
        .fake(tmp_path, {"db/creds": {"user": "u", "password": "p"}}, lease_ttl=60, deny=["no"])
        .backend("other", type="fake")
        .merge(
            "secrets:\n  USER: fake:db/creds#user\n  PASS: fake:db/creds#password\n"
            "  GONE: fake:nothere#x\n  DENIED: fake:no#y\n  ELSEWHERE: other:kv/app#k\n"
            "  MAYBE: {ref: 'fake:absent#z', optional: true}\n"
        )
    )
    spec = builder.parse(str(builder.write(tmp_path)))
    context = BackendContext(env={}, spec_dir=str(tmp_path))
    reported: list[Resolution] = []
    ledger = Ledger()
    with pytest.raises(AuthError):  # unchanged: a backend's failure is the error raised
        resolve(spec, context, ledger, backend_factory=factory, on_failure=reported.append)
    (partial,) = reported
    assert [v.name for v in partial.variables] == ["USER", "PASS"]
    assert {v.lease_id for v in partial.variables} == set(ledger.leases)
    kinds = {f.name: type(f.error).__name__ for f in partial.failed}
    assert kinds == {"GONE": "SecretNotFound", "DENIED": "AccessDenied", "ELSEWHERE": "AuthError"}
    assert partial.skipped == ["MAYBE"]
    assert all(f.document is None for f in partial.failed)


def test_a_name_clash_reports_the_others_as_read(tmp_path: Path) -> None:
    from jobsecrets.resolved import Resolution

    spec, context = setup(
        tmp_path,
        {"x/a": "1", "app": {"v": "2"}},
        "  A: fake:app#v\n  X:\n    ref: fake:x/*\n",
        lease_ttl=60,
    )
    reported: list[Resolution] = []
    with pytest.raises(ConfigError, match="which is taken"):
        resolve(spec, context, Ledger(), on_failure=reported.append)
    (partial,) = reported
    assert [v.name for v in partial.variables] == ["A"]
    (clash,) = partial.failed
    assert (clash.name, clash.path, type(clash.error)) == ("A", "x/a", ConfigError)
    assert clash.document is not None and clash.document.lease is not None
