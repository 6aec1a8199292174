"""Spec files written from code, and the fake store's files beside them.

>>> spec = (
...     SpecBuilder()
...     .backend("vault", type="vault", address="https://vault.example.com:8200")
...     .secret("DB_PASSWORD", "vault:secret/app#password")
...     .secret("TLS_KEY", "vault:pki/issue/ci#private_key", file=True)
...     .parse()
... )

``SpecBuilder().fake(directory, {"app": {"key": "v"}}, lease_ttl=60)`` writes the documents of a
``type: fake`` backend (and names its journal) in ``directory``; :func:`read_journal` reads back what
the fake store saw (events, never values).
"""

from __future__ import annotations

__all__ = ["JOURNAL", "STORE", "SpecBuilder", "read_journal"]

import json
import textwrap
from pathlib import Path
from typing import Any

import yaml

from ..spec.model import Spec
from ..spec.parser import parse_spec

#: File names :meth:`SpecBuilder.fake` uses, relative to the spec's directory.
STORE = "store.json"
JOURNAL = "journal.jsonl"


class SpecBuilder:
    """Builds a ``version: 1`` spec: backends, secrets and the other sections, in order."""

    def __init__(self) -> None:
        self._backends: dict[str, dict[str, Any]] = {}
        self._secrets: dict[str, Any] = {}
        self._sections: dict[str, Any] = {}

    def backend(self, name: str, **options: Any) -> SpecBuilder:
        """Add ``backends.NAME`` with these options (``type=`` among them)."""
        self._backends[name] = dict(options)
        return self

    def fake(
        self, directory: str | Path, documents: dict[str, Any], name: str = "fake", **options: Any
    ) -> SpecBuilder:
        """Add a ``type: fake`` backend whose documents are written to ``directory`` now."""
        (Path(directory) / STORE).write_text(json.dumps(documents), encoding="utf-8")
        return self.backend(name, type="fake", file=STORE, journal=JOURNAL, **options)

    def secret(self, name: str, ref: str, **fields: Any) -> SpecBuilder:
        """Add ``secrets.NAME``: the short form, or the long form when ``fields`` are given."""
        self._secrets[name] = {"ref": ref, **fields} if fields else ref
        return self

    def section(self, key: str, value: Any) -> SpecBuilder:
        """Set a top-level section (``policy``, ``settings``, ``redact``, ``identity``, ...)."""
        self._sections[key] = value
        return self

    def merge(self, text: str) -> SpecBuilder:
        """Merge a YAML snippet of top-level keys: ``secrets:`` and ``backends:`` entries join
        the ones already added, any other key sets its section."""
        data = yaml.safe_load(textwrap.dedent(text)) or {}
        for key, value in data.items():
            if key == "secrets":
                self._secrets.update(value)
            elif key == "backends":
                self._backends.update(value)
            else:
                self._sections[key] = value
        return self

    def data(self) -> dict[str, Any]:
        """The spec as a mapping."""
        data: dict[str, Any] = {"version": 1}
        if self._backends:
            data["backends"] = self._backends
        data.update(self._sections)
        data["secrets"] = self._secrets
        return data

    def text(self) -> str:
        """The spec as YAML text."""
        return yaml.safe_dump(self.data(), sort_keys=False, allow_unicode=True)

    def write(self, directory: str | Path, name: str = "jobsecrets.yml") -> Path:
        """Write the spec file into ``directory``; returns its path."""
        path = Path(directory) / name
        path.write_text(self.text(), encoding="utf-8")
        return path

    def parse(self, path: str = "<spec>") -> Spec:
        """The parsed spec (raises ConfigError as a spec file would)."""
        return parse_spec(self.text(), path)


def read_journal(directory: str | Path, name: str = JOURNAL) -> list[dict[str, Any]]:
    """The events a fake store journalled in ``directory`` (empty when there are none)."""
    path = Path(directory) / name
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
