"""The backend registry: built-in types without reading package metadata, third parties' by
their entry points, and the two never disagreeing."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path
from unittest import mock

import pytest

from jobsecrets.backends import registry
from jobsecrets.backends.base import Backend
from jobsecrets.errors import ConfigError


def test_the_builtin_table_is_the_packages_own_entry_points() -> None:
    declared = {
        ep.name: ep.value
        for ep in distribution("jobsecrets").entry_points
        if ep.group == registry.ENTRY_POINT_GROUP
    }
    assert declared == registry.BUILTIN
    for name in registry.BUILTIN:
        cls = registry.get_backend_class(name)
        assert issubclass(cls, Backend)
        assert cls.type_name == name


def test_a_spec_with_builtin_types_reads_no_package_metadata(tmp_path: Path) -> None:
    """`plan` of a Vault + AWS spec, in a fresh interpreter: importlib.metadata never loads."""
    (tmp_path / "jobsecrets.yml").write_text(
        "version: 1\nbackends:\n  v: {type: vault, address: 'http://127.0.0.1:1'}\n"
        "  a: {type: aws, region: us-east-1}\nsecrets:\n  A: v:kv/a#x\n  B: a:b\n"
    )
    probe = (
        "import sys, json\n"
        "from jobsecrets.cli import main\n"
        "try:\n    main(['plan', '--format', 'json'])\n"
        "except SystemExit as end:\n    assert end.code == 0, end.code\n"
        "sys.stderr.write(json.dumps('importlib.metadata' in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert json.loads(result.stderr.strip().splitlines()[-1]) is False, result.stderr[-500:]
    planned = json.loads(result.stdout)  # the spec was read, both backends' classes loaded
    assert sorted((b["name"], b["type"]) for b in planned["backends"]) == [
        ("a", "aws"),
        ("v", "vault"),
    ]


def test_a_third_party_type_is_found_by_its_entry_point_and_cannot_replace_a_builtin() -> None:
    class Plugin(Backend):
        type_name = "plugin"

    def fake_entry_points(group: str) -> list[mock.Mock]:
        assert group == registry.ENTRY_POINT_GROUP
        plugin = mock.Mock()
        plugin.name, plugin.load.return_value = "plugin", Plugin
        hijack = mock.Mock()
        hijack.name, hijack.load.return_value = "vault", Plugin
        return [plugin, hijack]

    registry._entry_points.cache_clear()
    registry.get_backend_class.cache_clear()
    try:
        with mock.patch("importlib.metadata.entry_points", fake_entry_points):
            assert registry.get_backend_class("plugin") is Plugin
            assert registry.get_backend_class("vault") is not Plugin
            assert "plugin" in registry.available_types()
            assert set(registry.BUILTIN) <= set(registry.available_types())
            with pytest.raises(ConfigError) as caught:
                registry.get_backend_class("nosuch")
            assert "unknown backend type 'nosuch'" in str(caught.value)
            assert "aws" in str(caught.value) and "plugin" in str(caught.value)
    finally:
        registry._entry_points.cache_clear()
        registry.get_backend_class.cache_clear()
