"""The pieces of issue 14 on their own: retries, grouped errors, the exit, env limits, spec loaders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from jobsecrets.backends.retry import OutOfTime, Retrying, within
from jobsecrets.env_limits import MAX_ARG_STRLEN, check_child_env
from jobsecrets.errors import AccessDenied, ConfigError, StoreUnavailable, ValueNotExportable
from jobsecrets.failures import combine
from jobsecrets.spec import limits as spec_limits
from jobsecrets.spec import parser as spec_module
from support.cli import jobsecrets

# ---- retries ------------------------------------------------------------------------------------


class Flaky:
    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def test_transient_failures_are_retried_with_backoff() -> None:
    sleeps: list[float] = []
    flaky = Flaky(3, ConnectionError("refused"))
    retrying = Retrying(lambda e: 0.0, deadline=None, sleep=sleeps.append)
    assert retrying(flaky) == "ok"
    assert flaky.calls == 4 and len(sleeps) == 3


def test_permanent_failures_are_not_retried() -> None:
    flaky = Flaky(1, ValueError("no"))
    with pytest.raises(ValueError):
        Retrying(lambda e: None, sleep=lambda s: None)(flaky)
    assert flaky.calls == 1


def test_retry_after_is_waited_at_least() -> None:
    sleeps: list[float] = []
    Retrying(lambda e: 2.0, deadline=None, sleep=sleeps.append)(Flaky(1, OSError()))
    assert sleeps and sleeps[0] >= 2.0


def test_no_wait_ends_past_the_deadline() -> None:
    flaky = Flaky(100, OSError("busy"))
    retrying = Retrying(lambda e: 5.0, deadline=time.monotonic() + 1.0, sleep=lambda s: None)
    with pytest.raises(OSError) as caught:
        retrying(flaky)
    assert flaky.calls == 1 and caught.value.jobsecrets_attempts == 1  # type: ignore[attr-defined]


def test_within_gives_up_on_a_call_that_does_not_end() -> None:
    with pytest.raises(OutOfTime):
        within(0.1, lambda: time.sleep(30))
    assert within(5, lambda: 42) == 42


# ---- one paragraph ------------------------------------------------------------------------------


def test_one_cause_for_many_variables_is_one_line() -> None:
    errors = [
        StoreUnavailable.about(f"V{i} (vault:secret/p{i}#k)", "cannot reach http://v:8200: refused")
        for i in range(20)
    ]
    combined = combine(list(errors))
    assert isinstance(combined, StoreUnavailable) and combined.exit_code == 6
    assert combined.message.count("\n") == 0
    assert "cannot reach http://v:8200" in combined.message and "and 14 more" in combined.message


def test_distinct_causes_get_a_line_each() -> None:
    errors = [
        StoreUnavailable.about("A (x)", "cannot reach X"),
        StoreUnavailable.about("B (y)", "cannot reach X"),
        AccessDenied.about("C (z)", "permission denied"),
    ]
    combined = combine(list(errors))
    assert combined.message.count("\n  - ") == 2 and "A, B: cannot reach X" in combined.message


# ---- the exit does not wait for blocked workers ---------------------------------------------


def test_exit_does_not_wait_for_a_blocked_worker_thread() -> None:
    code = textwrap.dedent(
        """
        import threading, time
        from concurrent.futures import ThreadPoolExecutor
        from jobsecrets._exit import exit_process
        pool = ThreadPoolExecutor(1)
        pool.submit(time.sleep, 600)
        pool.shutdown(wait=False)
        print("done", flush=True)
        exit_process(6)
        """
    )
    # The timeout is a hang detector: without exit_process the interpreter waits 600 s.
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 6 and result.stdout == "done\n", result.stderr


# ---- values that cannot be environment variables --------------------------------------------


def test_a_nul_is_refused_naming_the_variable() -> None:
    with pytest.raises(ValueNotExportable) as caught:
        check_child_env({"A": "fine", "B": "x\x00y"}, ["true"], ["A", "B"])
    assert "B:" in str(caught.value) and "A:" not in str(caught.value)
    assert "file: true" in caught.value.hint


def test_a_value_over_max_arg_strlen_is_refused() -> None:
    if not sys.platform.startswith("linux"):
        pytest.fail("MAX_ARG_STRLEN is Linux's")
    with pytest.raises(ValueNotExportable) as caught:
        check_child_env({"BIG": "x" * MAX_ARG_STRLEN}, ["true"], ["BIG"])
    assert "BIG" in str(caught.value) and "128 KiB" in str(caught.value)


def test_an_environment_over_arg_max_is_refused() -> None:
    env = {f"V{i}": "x" * 100_000 for i in range(200)}  # 20 MB, over any ARG_MAX
    with pytest.raises(ValueNotExportable, match="system's limit"):
        check_child_env(env, ["true"], list(env))


@pytest.mark.parametrize("value", ["nul\u0000inside", "y" * 200_000], ids=["nul", "200k"])
def test_run_refuses_before_the_command_starts(tmp_path: Path, value: str) -> None:
    store = tmp_path / "store.json"
    store.write_text(json.dumps({"app": {"a": "fine-value-1", "b": value}}))
    (tmp_path / "jobsecrets.yml").write_text(
        f"version: 1\nbackends:\n  fake:\n    type: fake\n    file: {store}\n"
        "secrets:\n  A: fake:app#a\n  BAD_ONE: fake:app#b\n"
    )
    marker = tmp_path / "started"
    result = jobsecrets(["run", "--", "sh", "-c", f"touch '{marker}'"], cwd=tmp_path)
    assert result.returncode == 11, result.stderr  # the value cannot be handed over
    assert "BAD_ONE" in result.stderr and "file: true" in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert not marker.exists(), "the command started"


# ---- spec files: both YAML loaders, the same lines --------------------------------------------

SPECS_WITH_PROBLEMS = [
    "version: 1\nsecrets:\n  A: nope\n  B: vault:secret/a#k\n  bad-name: vault:secret/b#k\n",
    "version: 2\nbackends:\n  v: {type: nope}\nsecrets:\n  A: v:x#y\n",
    "version: 1\nsecrets:\n  A: vault:secret/a#k\n  A: vault:secret/b#k\n",
    "version: 1\nsecrets:\n  A: {ref: 'vault:x#k', file: maybe}\nsettings: {deadline: soon}\n",
    "version: 1\nsecrets:\n  A: [vault:secret/a#k\n",
    "version: 1\nsecrets:\n  A: 'a\x01b'\n",
    "version: 1\nsecrets:\n  A: " + "[" * 100 + "]" * 100 + "\n",
    # The field written as a comment: found from the scalar's end mark and the line's text, and
    # the loaders disagree on a plain scalar's style (None for the pure one, "" for libyaml).
    "version: 1\nsecrets:\n  A: vault:secret/a #password\n  B: vault:secret/b#k\n"
    "  C: vault:secret/c   #user\n",
    # A tab where YAML wants spaces: libyaml's message does not name it, the line does.
    "version: 1\nsecrets:\n  A: vault:secret/a#k\n\tB: vault:secret/b#k\n",
    # A duplicate key inside an entry's own mapping, and a bad value after a multi-line scalar.
    "version: 1\nbackends:\n  v:\n    type: vault\n    auth: {method: jwt, method: token}\n"
    "secrets:\n  A: >-\n    vault:secret/a#k\n  B: {ref: 'v:secret/b#k', optional: perhaps}\n",
]


def problems_with(loader: type, text: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setattr(spec_module, "loader_class", lambda: loader)
    monkeypatch.setattr(spec_limits, "loader_class", lambda: loader)
    with pytest.raises(ConfigError) as caught:
        spec_module.parse_spec(text, "s.yml")
    return [f"{p.line}" for p in caught.value.problems]


@pytest.mark.parametrize("text", SPECS_WITH_PROBLEMS)
def test_c_and_python_loaders_give_the_same_lines(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert yaml.__with_libyaml__, "PyYAML without libyaml: the C loader is not tested"
    c_lines = problems_with(yaml.CSafeLoader, text, monkeypatch)
    py_lines = problems_with(yaml.SafeLoader, text, monkeypatch)
    assert c_lines == py_lines and c_lines


def test_the_c_loader_is_used_where_available() -> None:
    assert spec_limits.loader_class() is yaml.CSafeLoader


def test_bad_byte_is_reported_by_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yml"
    path.write_bytes(b"version: 1\nsecrets:\n  A: vault:secret/a#k\n  B: 'caf\xe9'\n")
    with pytest.raises(ConfigError) as caught:
        spec_module.load_spec(str(path))
    assert [p.line for p in caught.value.problems] == [4]


def test_alias_bomb_is_refused_without_expanding_it() -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    text = "version: 1\nsecrets: {A: vault:secret/a#k}\n" + "\n".join(lines) + "\n"
    with pytest.raises(ConfigError) as caught:
        spec_module.parse_spec(text, "s.yml")
    assert "alias" in str(caught.value) and len(str(caught.value)) < 1000


def test_exit_without_teardown_still_runs_atexit_and_flushes(tmp_path: Path) -> None:
    marker = tmp_path / "atexit-ran"
    code = textwrap.dedent(
        f"""
        import atexit, sys
        from jobsecrets._exit import exit_process
        atexit.register(lambda: open({str(marker)!r}, "w").close())
        sys.stdout.write("buffered, not flushed")
        exit_process(3, teardown=False)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 3, result.stderr
    assert result.stdout == "buffered, not flushed" and marker.exists()


# ---- garbage collection paused while starting and resolving ------------------------------------


def test_collection_pause_is_undone_only_when_ours() -> None:
    import gc

    from jobsecrets import _collect

    assert gc.isenabled()
    with _collect.paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()  # a program that turned collection off itself keeps it off
    try:
        with _collect.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_startup_pause_lasts_through_resolution_and_ends_frozen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`main`'s pause: off through resolution, then on with what exists frozen (no 45 ms
    collection of everything start-up allocated, just before the child starts)."""
    import gc

    from jobsecrets import _collect
    from jobsecrets.pipeline import resolve_checked
    from jobsecrets.session import Session

    store = tmp_path / "store.json"
    store.write_text(json.dumps({"app": {"a": "fine-value-1"}}))
    spec = tmp_path / "jobsecrets.yml"
    spec.write_text(
        f"version: 1\nbackends:\n  fake:\n    type: fake\n    file: {store}\n"
        "secrets:\n  A: fake:app#a\n"
    )
    monkeypatch.setenv("HOME", str(tmp_path))
    seen: list[bool] = []
    _collect.pause(freeze=True)
    try:
        session = Session(str(spec), None)
        real_resolve = __import__("jobsecrets.pipeline", fromlist=["resolve"]).resolve

        def watching(*args: object, **kwargs: object) -> object:
            seen.append(gc.isenabled())
            return real_resolve(*args, **kwargs)

        monkeypatch.setattr("jobsecrets.pipeline.resolve", watching)
        resolution = resolve_checked(session, "export", None)
        assert [v.name for v in resolution.variables] == ["A"]
        assert seen == [False], "collection ran during resolution"
        assert gc.isenabled() and gc.get_freeze_count() > 0
        session.finish()
    finally:
        _collect.resume()
        gc.unfreeze()
        gc.enable()


_COLLECTIONS_DURING_CLI_IMPORT = """
import gc, os, sys
def seen(phase, info):
    cli = sys.modules.get("jobsecrets.cli")
    if phase == "start" and cli is not None and not hasattr(cli, "main"):
        os.write(1, b"collected-while-importing-cli\\n")
gc.callbacks.append(seen)
sys.argv = ["jobsecrets", "--version"]
if os.environ["HOW"] == "entry":
    from jobsecrets._entry import main
    main()
else:
    import jobsecrets.cli
"""


def test_the_command_imports_its_cli_with_collection_paused() -> None:
    """The console script (``_entry``) pauses collection before importing the CLI: importing it
    bare collects many times (~23 collections, 3-4 ms), which proves the probe sees them."""
    outputs = {}
    for how in ("entry", "bare"):
        done = subprocess.run(
            [sys.executable, "-c", _COLLECTIONS_DURING_CLI_IMPORT],
            env={**os.environ, "HOW": how},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        outputs[how] = done.stdout
    assert "collected-while-importing-cli" in outputs["bare"]
    assert "collected-while-importing-cli" not in outputs["entry"]
    assert "jobsecrets" in outputs["entry"]  # the --version line: the command ran


# ---- JSON nested deeper than Python follows -------------------------------------------------

#: A store value of JSON nested 20,000 levels (120 KB, under Linux's 128 KiB per variable):
#: json.loads gives up with a RecursionError.
_DEEP_TEXT = '{"a":' * 20_000 + '"leaf"' + "}" * 20_000


def _deep_structure(depth: int) -> list[object]:
    """A value a store could hand over already parsed (Vault's KV data), ``depth`` lists deep."""
    node: list[object] = []
    for _ in range(depth):
        node = [node]
    return node


def test_deep_json_is_bad_json_everywhere_it_is_read() -> None:
    """Each reader of outside JSON says what any bad JSON gets, not a RecursionError."""
    from jobsecrets import jsonsafe
    from jobsecrets.fields import FieldMissing, extract, to_text
    from jobsecrets.fieldsets import FieldSetError, select
    from jobsecrets.maskforms import json_leaves

    with pytest.raises(jsonsafe.NestedTooDeeply):
        jsonsafe.loads(_DEEP_TEXT)
    with pytest.raises(FieldMissing, match="nested too deeply"):
        extract(_DEEP_TEXT, "a")
    with pytest.raises(FieldSetError):
        select(_DEEP_TEXT, "*", name="X")
    assert select(_DEEP_TEXT, "*", name="X", flatten=True) == [("X", _DEEP_TEXT)]
    assert json_leaves(_DEEP_TEXT.encode()) == []
    with pytest.raises(ValueError, match="nested too deeply"):
        to_text(_deep_structure(100_000))
    # Parsed fine but too deep to walk: flatten names fields by recursion.
    with pytest.raises(FieldSetError, match="nested too deeply"):
        select({"a": _deep_nested_mapping(5000)}, "*", name="X", flatten=True)


def _deep_nested_mapping(depth: int) -> dict[str, object]:
    node: dict[str, object] = {"leaf": "v"}
    for _ in range(depth):
        node = {"a": node}
    return node


def test_a_store_value_of_deep_json_is_handed_over_and_masked(tmp_path: Path) -> None:
    """The whole value still goes to the job, masked; a field of it is a clear 'not found'.
    Both were "internal error: RecursionError" (the mask list reads JSON values' leaves)."""
    store = tmp_path / "store.json"
    store.write_text(json.dumps({"deep": _DEEP_TEXT, "app": {"a": "fine-value-1"}}))
    store.chmod(0o600)
    spec = tmp_path / "jobsecrets.yml"
    base = f"version: 1\nbackends:\n  fake: {{type: fake, file: {store}}}\nsecrets:\n"
    spec.write_text(base + "  DEEP: fake:deep\n")
    run = jobsecrets(["run", "--", "sh", "-c", 'printf "%s" "$DEEP" | wc -c'], cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(len(_DEEP_TEXT))
    spec.write_text(base + "  DEEP: fake:deep#a\n")
    field = jobsecrets(["export", "--format", "json"], cwd=tmp_path)
    assert field.returncode == 4
    assert "nested too deeply to read" in field.stderr and "internal error" not in field.stderr


def test_a_store_string_with_a_lone_surrogate_is_a_clear_exit_11(tmp_path: Path) -> None:
    """A store's JSON string may hold "\\ud800", which is no UTF-8 text: no variable, file or
    mask can carry it exactly. It was "internal error: UnicodeEncodeError" in `run` (the
    environment check), with `file: true` (writing the file) and with `encoding: base64`."""
    store = tmp_path / "store.json"
    store.write_text('{"app": {"a": "ab\\ud800cdef-123"}}')
    store.chmod(0o600)
    spec = tmp_path / "jobsecrets.yml"
    base = f"version: 1\nbackends:\n  fake: {{type: fake, file: {store}}}\nsecrets:\n"
    for secret in (
        "  A: fake:app#a\n",
        "  A: {ref: 'fake:app#a', file: true}\n",
        "  A: {ref: 'fake:app#a', encoding: base64}\n",
    ):
        spec.write_text(base + secret)
        result = jobsecrets(["run", "--", "true"], cwd=tmp_path)
        assert result.returncode == 11, result.stderr
        assert "not valid Unicode text (a lone surrogate)" in result.stderr
        assert "internal error" not in result.stderr
