"""A real PostgreSQL for tests: ``initdb`` + ``postgres`` in a temp dir, on a free port on 127.0.0.1.

PostgreSQL refuses to run as root. When the tests run as root (as in the dev container), every
server process is started through ``setpriv`` as the ``postgres`` OS user: ``setpriv`` execs
in place (unlike ``su``/``runuser``, which fork and wait), so the pid we hold IS the postmaster's
and stopping it needs no pid file. A missing PostgreSQL is a test failure, never a skip: the
database engine tests are the proof that leases are revoked.
"""

from __future__ import annotations

__all__ = ["PostgresServer", "find_pg_bin", "free_port"]

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from .process import ServerProcess


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_pg_bin() -> Path:
    """The directory holding ``initdb`` and ``postgres``: ``$PG_BIN``, PATH, then Debian's layout."""
    candidates: list[str] = []
    if os.environ.get("PG_BIN"):
        candidates.append(os.environ["PG_BIN"])
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).resolve().parent))
    # Debian keeps the server binaries off PATH; prefer the newest major version.
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True
    )
    for candidate in candidates:
        path = Path(candidate)
        if (path / "initdb").is_file() and (path / "postgres").is_file():
            return path
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, postgres) not found in $PG_BIN, PATH or "
        "/usr/lib/postgresql/*/bin: install the Debian 'postgresql' package"
    )


class PostgresServer(ServerProcess):
    """A throwaway PostgreSQL cluster; use as a context manager.

    ``user``/``password`` are a superuser with password (scram) auth over TCP, which is what
    OpenBao's database engine needs. ``dsn`` is a libpq connection string for psycopg.
    """

    # SIGINT = PostgreSQL's "fast" shutdown: disconnect clients, exit cleanly.
    STOP_SIGNAL = signal.SIGINT

    def __init__(self, *, user: str = "jobsecrets_admin", database: str = "postgres") -> None:
        self.user = user
        self.database = database
        # Generated per run: the password is only ever handed to OpenBao and psycopg.
        self.password = secrets.token_urlsafe(18)
        self.host = "127.0.0.1"
        self.port = 0
        self.bin = find_pg_bin()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._as_user: list[str] = []
        self._owner: pwd.struct_passwd | None = None

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while running."""
        return self._proc.pid if self._proc is not None else None

    @property
    def dsn(self) -> str:
        """libpq key/value connection string for the superuser."""
        return (
            f"host={self.host} port={self.port} dbname={self.database} "
            f"user={self.user} password={self.password} connect_timeout=5"
        )

    def connection_url(self, *, template: bool = False) -> str:
        """A ``postgresql://`` URL; with ``template`` the credentials are OpenBao placeholders."""
        creds = "{{username}}:{{password}}" if template else f"{self.user}:{self.password}"
        return f"postgresql://{creds}@{self.host}:{self.port}/{self.database}?sslmode=disable"

    @property
    def log_path(self) -> Path:
        """The server's log (stdout and stderr)."""
        assert self._tmp is not None
        return Path(self._tmp.name) / "postgres.log"

    def _prepare_user(self) -> None:
        if os.geteuid() != 0:
            return
        try:
            self._owner = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError(
                "running as root and there is no 'postgres' OS user to run PostgreSQL as"
            ) from None
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise RuntimeError("running as root needs 'setpriv' (util-linux) to drop to 'postgres'")
        self._as_user = [setpriv, "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]

    def _chown(self, path: Path) -> None:
        if self._owner is not None:
            os.chown(path, self._owner.pw_uid, self._owner.pw_gid)

    def start(self) -> PostgresServer:
        """initdb, start the postmaster and wait until it accepts connections."""
        self._prepare_user()
        self._tmp = tempfile.TemporaryDirectory(prefix="jobsecrets-pg-")
        root = Path(self._tmp.name)
        self._chown(root)
        pwfile = root / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        self._chown(pwfile)
        env = {**os.environ, "LC_ALL": "C", "TZ": "UTC"}
        if self._owner is not None:
            env["HOME"] = str(root)
        initdb = subprocess.run(
            [
                *self._as_user,
                str(self.bin / "initdb"),
                "-D",
                str(root / "data"),
                "-U",
                self.user,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-sync",  # throwaway cluster: durability is not worth the fsyncs
            ],
            env=env,
            capture_output=True,
            check=False,
        )
        pwfile.unlink()
        if initdb.returncode != 0:
            self.close()
            raise RuntimeError(f"initdb failed ({initdb.returncode}):\n{initdb.stderr.decode()}")
        for attempt in range(3):
            self.port = free_port()
            with open(self.log_path, "wb") as log:
                self._proc = subprocess.Popen(
                    [
                        *self._as_user,
                        str(self.bin / "postgres"),
                        "-D",
                        str(root / "data"),
                        "-h",
                        self.host,
                        "-p",
                        str(self.port),
                        "-k",
                        str(root),  # unix socket in our dir, not /var/run/postgresql
                        "-c",
                        "fsync=off",
                        "-c",
                        "max_connections=100",
                    ],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            if self._wait_ready(timeout=30):
                return self
            self._stop_process()
            if attempt == 2 or "could not bind" not in self.log_path.read_text(errors="replace"):
                log_text = self.log_path.read_text(errors="replace")
                self.close()
                raise RuntimeError(f"PostgreSQL did not start:\n{log_text}")
        raise AssertionError("unreachable")

    def _wait_ready(self, timeout: float) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                with psycopg.connect(self.dsn):
                    return True
            except psycopg.OperationalError:
                time.sleep(0.1)
        return False

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run one statement as the superuser (autocommit); return the rows, if any."""
        with psycopg.connect(self.dsn, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []

    def role_exists(self, name: str) -> bool:
        """True when a role (user) of that name exists in the cluster."""
        return bool(self.query("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)))

    def roles(self) -> set[str]:
        """Every role name except PostgreSQL's built-in ``pg_*`` ones."""
        return {
            r[0] for r in self.query("SELECT rolname FROM pg_roles") if not r[0].startswith("pg_")
        }
