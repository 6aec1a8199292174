"""Bounds on a spec file, checked before it is turned into values: a spec cannot hang or exhaust us.

A spec file comes from a repository, and whoever can push a branch can write one. So before the
YAML is composed or any value is built, the file is read with a size cap, decoded with the line
of any byte that is not UTF-8, and scanned event by event (no recursion, nothing expanded) for:

- nesting depth (PyYAML's composer and constructor recurse: 3,000 levels end in RecursionError,
  and libyaml's composer recurses in C);
- the size of the document with every alias expanded (a "billion laughs" of six levels is small
  on disk, 34 MB when a message or a walk expands it), computed from the anchors' sizes;
- the size of any one scalar (a value can end up in a message or a request).

Parsing then uses libyaml's ``CSafeLoader`` when PyYAML was built with it (about 15x faster on a
large file, same line marks), else the pure-Python ``SafeLoader``.
"""

from __future__ import annotations

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_SCALAR",
    "MAX_SPEC_BYTES",
    "clip",
    "decode_spec",
    "loader_class",
    "read_spec_bytes",
    "scan_limits",
]

import os
from typing import Any

import yaml

from ..errors import ConfigError, Problem
from ..safe_files import read_at_most

#: Largest spec file read (a real one is a few KiB; 1,000 secrets is ~60 KiB).
MAX_SPEC_BYTES = 1024 * 1024
#: Deepest nesting of mappings and sequences (a spec needs about 6).
MAX_DEPTH = 64
#: Most nodes in the document with aliases expanded.
MAX_NODES = 100_000
#: Longest scalar (a CSR or a policy document in ``params`` is a few KiB).
MAX_SCALAR = 64 * 1024
#: Longest text of a problem message: values quoted in messages are cut to this.
MAX_MESSAGE = 300


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` cut to ``limit`` characters, saying so."""
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def loader_class() -> type[Any]:
    """``yaml.CSafeLoader`` when available (libyaml), else ``yaml.SafeLoader``."""
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _fail(path: str, message: str, line: int | None = None) -> ConfigError:
    return ConfigError(
        f"{path}: 1 problem in the spec file; nothing was fetched", [Problem(message, path, line)]
    )


def read_spec_bytes(path: str) -> bytes:
    """The file's bytes, at most :data:`MAX_SPEC_BYTES` (a larger file is refused).

    Opened non-blocking so a FIFO with no writer cannot hang the open; read blocking after
    that (a pipe from ``<(...)`` is fine), never more than the cap plus one byte.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        os.set_blocking(fd, True)
        content = read_at_most(fd, MAX_SPEC_BYTES)
    finally:
        os.close(fd)
    if len(content) > MAX_SPEC_BYTES:
        raise _fail(path, f"the file is larger than {MAX_SPEC_BYTES // 1024} KiB: not a spec file")
    return content


def decode_spec(data: bytes, path: str) -> str:
    """UTF-8 text of ``data``; a bad byte is reported with its line and column."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        before = data[: error.start]
        line = before.count(b"\n") + 1
        column = error.start - (before.rfind(b"\n") + 1) + 1
        raise _fail(
            path,
            f"byte 0x{data[error.start]:02x} at column {column} is not UTF-8 "
            "(save the file as UTF-8)",
            line,
        ) from None
    return text.removeprefix("\ufeff")


def scan_limits(text: str, path: str) -> None:
    """Raise a ConfigError at the first event past a bound (see the module docstring).

    Syntax errors are left to the real parse, which reports them with their line.
    """
    depth = 0
    # One counter per open collection: its expanded node count, and its anchor.
    stack: list[tuple[str | None, int]] = [(None, 0)]
    anchors: dict[str, int] = {}
    try:
        for event in yaml.parse(text, Loader=loader_class()):
            line = event.start_mark.line + 1 if event.start_mark is not None else None
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _fail(path, f"nested deeper than {MAX_DEPTH} levels", line)
                stack.append((event.anchor, 1))
                continue
            if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
                anchor, count = stack.pop()
                if anchor is not None:
                    anchors[anchor] = count
                added = count
            elif isinstance(event, yaml.ScalarEvent):
                if len(event.value) > MAX_SCALAR:
                    raise _fail(
                        path,
                        f"a value of {len(event.value)} characters (at most {MAX_SCALAR})",
                        line,
                    )
                if event.anchor is not None:
                    anchors[event.anchor] = 1
                added = 1
            elif isinstance(event, yaml.AliasEvent):
                added = anchors.get(str(event.anchor), 1)
            else:
                continue
            anchor, count = stack[-1]
            stack[-1] = (anchor, count + added)
            if count + added > MAX_NODES:
                raise _fail(
                    path,
                    f"more than {MAX_NODES} values once aliases are expanded "
                    "(an alias bomb?): write the spec without nested aliases",
                    line,
                )
    except yaml.YAMLError:
        return
    except RecursionError:  # pragma: no cover - the scan does not recurse; belt and braces
        raise _fail(path, f"nested deeper than {MAX_DEPTH} levels") from None
