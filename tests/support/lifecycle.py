"""A CI job against real servers, for the lease-lifecycle tests: OpenBao + PostgreSQL + GitHub OIDC.

:class:`VaultJob` gives one test its own names on the shared servers (a database mount and role, a
KV mount, a policy, a jwt role bound to ``acme/app`` on ``refs/heads/main``), writes the spec file
and builds the environment a GitHub job would have. The CLI then runs as a subprocess, exactly as a
user runs it. Helpers observe the servers from outside: which PostgreSQL roles exist, which leases
OpenBao still knows, which tokens are alive.
"""

from __future__ import annotations

__all__ = ["VaultJob", "jobsecrets_cmd", "wait_until"]

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import hvac
from cryptography.hazmat.primitives.asymmetric import rsa

from .oidc import GithubTokenServer, public_pem
from .openbao import OpenBaoServer
from .postgres import PostgresServer

JWT_MOUNT = "jwt-lifecycle"


def jobsecrets_cmd(*args: str) -> list[str]:
    """The command line a user types, run with the test interpreter (the editable install)."""
    return [sys.executable, "-m", "jobsecrets", *args]


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes; return its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class VaultJob:
    """One test's slice of the shared OpenBao and PostgreSQL, and a workspace to run the CLI in.

    ``allow_revoke`` adds ``sys/leases/revoke/<db mount>/creds/*`` to the policy, so leases are
    revoked one by one (synchronously); without it only revoking the token ends them (Vault does
    that in the background, moments later).
    """

    def __init__(
        self,
        openbao: OpenBaoServer,
        postgres: PostgresServer,
        oidc_key: rsa.RSAPrivateKey,
        workdir: Path,
        *,
        default_ttl: str = "1m",
        max_ttl: str = "10m",
        token_ttl: str = "2m",  # noqa: S107 - a duration
        allow_revoke: bool = True,
        bound_claims: Mapping[str, Any] | None = None,
    ) -> None:
        self.openbao = openbao
        self.postgres = postgres
        self.workdir = workdir
        self.uid = uuid.uuid4().hex[:8]
        self.db_mount = f"db-{self.uid}"
        self.kv_mount = f"kv-{self.uid}"
        self.role = f"ci-{self.uid}"
        openbao.enable_database(
            postgres, mount=self.db_mount, default_ttl=default_ttl, max_ttl=max_ttl
        )
        openbao.enable_kv(self.kv_mount, version=2)
        policy = (
            f'path "{self.db_mount}/creds/ci" {{ capabilities = ["read"] }}\n'
            f'path "{self.kv_mount}/data/*" {{ capabilities = ["read"] }}\n'
        )
        if allow_revoke:
            policy += f'path "sys/leases/revoke/{self.db_mount}/creds/*" {{ capabilities = ["update"] }}\n'
        openbao.write_policy(self.role, policy)
        openbao.enable_jwt(
            public_pem(oidc_key),
            self.role,
            bound_claims=dict(bound_claims or {"repository": "acme/app", "ref": "refs/heads/main"}),
            policies=[self.role],
            ttl=token_ttl,
            mount=JWT_MOUNT,
            token_max_ttl="10m",
        )
        self.roles_before = postgres.roles()
        self.accessors_before = self.token_accessors()

    # ---- the job's side -------------------------------------------------------------------------

    def write_spec(
        self, secrets: str, *, auth: str | None = None, name: str = "jobsecrets.yml"
    ) -> Path:
        """Write a spec whose ``secrets:`` block is ``secrets`` (``{db}``/``{kv}`` are the mounts)."""
        auth = auth or f"{{method: jwt, role: {self.role}, mount: {JWT_MOUNT}, audience: vault}}"
        text = (
            "version: 1\n"
            "backends:\n"
            "  vault:\n"
            "    type: vault\n"
            f"    auth: {auth}\n"
            "secrets:\n" + secrets.format(db=self.db_mount, kv=self.kv_mount)
        )
        path = self.workdir / name
        path.write_text(text)
        return path

    def env(self, github: GithubTokenServer | None, **extra: str) -> dict[str, str]:
        """A job's environment: no Vault token, the OpenBao address, GitHub's OIDC variables."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("VAULT_", "BAO_", "GITHUB_", "ACTIONS_", "JOBSECRETS_", "CI"))
        }
        env.update(self.openbao.env())
        # No ~/.vault-token from the developer's machine; state files stay in the test's dir.
        env["HOME"] = str(self.workdir)
        env["RUNNER_TEMP"] = str(self.workdir / "runner-temp")
        if github is not None:
            env.update(github.env())
        env.update(extra)
        return env

    def run(
        self, *args: str, env: Mapping[str, str], timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the CLI to completion in the workspace, capturing its output."""
        return subprocess.run(
            jobsecrets_cmd(*args),
            env=dict(env),
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    # ---- the servers' side ----------------------------------------------------------------------

    def new_roles(self) -> set[str]:
        """PostgreSQL roles created since this job was set up (by its database leases)."""
        return self.postgres.roles() - self.roles_before

    def leases(self) -> list[str]:
        """Lease ids OpenBao still holds for this job's database role (``sys/leases/lookup``)."""
        try:
            reply = self.openbao.client().sys.list_leases(f"{self.db_mount}/creds/ci/")
        except hvac.exceptions.InvalidPath:
            return []
        return [f"{self.db_mount}/creds/ci/{key}" for key in reply["data"]["keys"]]

    def token_accessors(self) -> set[str]:
        """Accessors of every live token (the root token's included)."""
        reply = self.openbao.client().list("auth/token/accessors")
        return set(reply["data"]["keys"]) if reply else set()

    def new_tokens(self) -> set[str]:
        """Accessors of tokens created since set-up that are still alive."""
        return self.token_accessors() - self.accessors_before

    def all_ended(self, timeout: float = 5.0) -> bool:
        """True once no role, lease or token of this job is left (polls: Vault ends a revoked
        token's leases in the background)."""
        return wait_until(
            lambda: not self.new_roles() and not self.leases() and not self.new_tokens(),
            timeout=timeout,
        )
