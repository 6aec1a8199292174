"""`run` keeps what it obtained in the job's state file while it runs, and takes it out at the end.

A `run` killed outright (SIGKILL: the out-of-memory killer, a CI hard cancel) runs no cleanup:
what it obtained lived on, and no `jobsecrets revoke` could find it. The fake store's journal
says what was obtained and revoked (tests/unit/test_policy.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from test_policy import obtained_and_revoked, write_fake

from support.cli import jobsecrets


def _env(tmp_path: Path) -> dict[str, str]:
    return {"JOBSECRETS_STATE": str(tmp_path / "state" / "state.json")}


def test_a_killed_run_leaves_its_leases_for_revoke(tmp_path: Path) -> None:
    _, _, journal = write_fake(tmp_path, "")
    env = _env(tmp_path)
    # The command kills its own `jobsecrets run` (its parent) with SIGKILL, as the OOM killer
    # would; sleeping first lets the state file's writer (at most every 0.2 s) catch up.
    killed = jobsecrets(["run", "--", "sh", "-c", "sleep 1; kill -9 $PPID"], cwd=tmp_path, env=env)
    assert killed.returncode == -9
    obtained, revoked = obtained_and_revoked(journal)
    assert obtained and not revoked, "nothing was left alive: nothing was tested"
    state = json.loads(Path(env["JOBSECRETS_STATE"]).read_text())
    assert {lease["lease_id"] for lease in state["leases"]} == obtained
    later = jobsecrets(["revoke"], cwd=tmp_path, env=env)
    assert later.returncode == 0, later.stderr
    obtained, revoked = obtained_and_revoked(journal)
    assert obtained <= revoked


def test_a_run_that_ends_takes_its_records_out(tmp_path: Path) -> None:
    """Revoked at the end, its records leave the state file; an earlier export's stay as they
    were, byte for byte."""
    _, _, journal = write_fake(tmp_path, "")
    env = _env(tmp_path)
    exported = jobsecrets(["export", "--format", "json"], cwd=tmp_path, env=env)
    assert exported.returncode == 0, exported.stderr
    state = Path(env["JOBSECRETS_STATE"])
    before = state.read_bytes()
    ran = jobsecrets(["run", "--", "sh", "-c", "sleep 0.5"], cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr
    assert state.read_bytes() == before
    alone = tmp_path / "alone"
    alone.mkdir()
    _, _, journal = write_fake(alone, "")
    env = {"JOBSECRETS_STATE": str(alone / "state" / "state.json")}
    ran = jobsecrets(["run", "--", "sh", "-c", "sleep 0.5"], cwd=alone, env=env)
    assert ran.returncode == 0, ran.stderr
    assert not Path(env["JOBSECRETS_STATE"]).exists(), "the run's state file stayed behind"
    obtained, revoked = obtained_and_revoked(journal)
    assert obtained and obtained <= revoked
