"""A fake backend for tests and demos across processes: documents from a JSON file, events to a journal.

Registered as ``type: fake``: the in-memory backend (:mod:`.memory`) with its store kept in files, so
a ``jobsecrets`` subprocess can use it. Options: ``file`` (JSON: ``{"path": {field: value} | "text"}``,
re-read when it changes), ``lease_ttl`` (every read gets a renewable lease of that many seconds),
``journal`` (a file where login/read/renew/revoke events are appended as JSON lines, without values,
so tests can check what happened), ``token`` (true: the login "obtains" a token that must be revoked),
``fail`` (paths whose read fails with a BackendError), ``deny`` (paths whose read is denied), ``delay``
(seconds every read takes, to stand for a slow store in deadline tests). The file keeps no dates:
:meth:`FakeBackend.metadata` says nothing.
"""

from __future__ import annotations

__all__ = ["FakeBackend"]

import json
import os
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from .. import jsonsafe
from ..backends.base import BackendContext, Document, ReadRequest
from ..errors import ConfigError
from ..safe_files import open_append, read_regular, write_all
from .memory import MemoryBackend, MemoryStore

#: The largest store file read (the benchmarks' 5,000 secrets are ~0.3 MB).
MAX_FAKE_FILE = 64 << 20


class _FileStore(MemoryStore):
    """A :class:`MemoryStore` whose documents come from a JSON file and whose journal is a file."""

    def __init__(self, backend: str, options: Mapping[str, Any], spec_dir: str) -> None:
        super().__init__(
            lease_ttl=options.get("lease_ttl"),
            token=bool(options.get("token")),
            fail=set(options.get("fail", [])),
            deny=set(options.get("deny", [])),
            delay=float(options.get("delay", 0) or 0),
        )
        self.backend_name = backend
        self.file = os.path.join(spec_dir, str(options["file"])) if "file" in options else None
        self.journal_file = (
            os.path.join(spec_dir, str(options["journal"])) if "journal" in options else None
        )
        self._loaded: tuple[int, int] | None = None

    def load(self) -> None:
        """(Re)read the documents when the file changed since the last read."""
        if self.file is None:
            return
        try:
            info = os.stat(self.file)
            if self._loaded == (info.st_mtime_ns, info.st_size):
                return
            # The spec names the file: a FIFO must not hang the run, /dev/zero not fill memory.
            content = read_regular(self.file, MAX_FAKE_FILE)
            if content is None:
                raise ConfigError(
                    f"fake backend {self.backend_name!r}: its file is no readable regular file "
                    f"of at most {MAX_FAKE_FILE >> 20} MiB"
                )
            documents = jsonsafe.loads(content)
        except (OSError, ValueError) as error:
            raise ConfigError(
                f"fake backend {self.backend_name!r}: cannot load its file ({type(error).__name__})"
            ) from None
        with self._lock:
            self.documents = documents
        self._loaded = (info.st_mtime_ns, info.st_size)

    def record(self, event: str, backend: str, **details: Any) -> None:
        """Journal to the file too (another process reads it)."""
        super().record(event, backend, **details)
        if self.journal_file is None:
            return
        line = json.dumps({"backend": backend, "time": time.time(), "event": event, **details})
        with self._lock:
            fd = open_append(self.journal_file, 0o666)
            try:
                write_all(fd, (line + "\n").encode("utf-8"))
            finally:
                os.close(fd)


class FakeBackend(MemoryBackend):
    """An in-process store backed by a JSON file: for tests and local dry runs only."""

    type_name: ClassVar[str] = "fake"
    OPTIONS: ClassVar[Mapping[str, str]] = {
        "file": "JSON file of documents: {path: {field: value} | text}",
        "lease_ttl": "seconds: every read gets a renewable lease",
        "journal": "file where events (no values) are appended as JSON lines",
        "token": "true: login obtains a token that is revoked at the end",
        "fail": "paths whose read fails (BackendError)",
        "deny": "paths whose read is denied (AccessDenied)",
        "delay": "seconds every read takes (a slow store)",
    }

    def __init__(self, name: str, options: Mapping[str, Any], context: BackendContext) -> None:
        self.files = _FileStore(name, options, context.spec_dir)
        super().__init__(name, options, context, store=self.files)

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> list[str]:
        """Types of the options."""
        problems = []
        for key in ("file", "journal"):
            if key in options and not isinstance(options[key], str):
                problems.append(f"{key!r} must be a path")
        if "lease_ttl" in options and (
            not isinstance(options["lease_ttl"], int) or options["lease_ttl"] < 1
        ):
            problems.append("'lease_ttl' must be a positive integer")
        for key in ("fail", "deny"):
            if key in options and not isinstance(options[key], list):
                problems.append(f"{key!r} must be a list of paths")
        delay = options.get("delay", 0)
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
            problems.append("'delay' must be a number of seconds")
        return problems

    @classmethod
    def describe_auth(cls, options: Mapping[str, Any]) -> str:
        """Fake: no real sign-in."""
        return "fake token" if options.get("token") else "none"

    def read(self, request: ReadRequest) -> Document:
        """The document at ``request.path``, from the file as it is now."""
        self.files.load()
        return super().read(request)

    def list_prefix(self, prefix: str) -> list[str]:
        """Every document path under ``prefix``."""
        self.files.load()
        return super().list_prefix(prefix)

    def check_access(self, request: ReadRequest) -> Any:
        """As the memory backend, on the file as it is now."""
        self.files.load()
        return super().check_access(request)

    def metadata(self, request: ReadRequest) -> Document | None:
        """The file keeps no dates and no engine kinds: nothing is known without reading."""
        return None
