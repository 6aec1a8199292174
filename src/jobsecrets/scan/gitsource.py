"""``--staged`` and ``--history N``: the blobs git is about to commit, or that the last N commits added.

Only what changes is read: for ``--staged`` the index version of every added, copied, modified,
renamed or type-changed path (``git diff --cached``); for ``--history N`` the new version of every
such path in each of the last N commits (``git diff-tree --root``, merges contribute nothing of
their own). Each blob is read once (by object id) through one ``git cat-file --batch`` process
and streamed into the scanner like a file, archives included. Submodules and symlinks are not
blobs with content and are skipped.

Places are shown as ``:PATH`` (the index) or ``COMMIT:PATH`` (12 hex digits), as git spells them.
"""

from __future__ import annotations

__all__ = ["history_blobs", "scan_blobs", "staged_blobs"]

import subprocess
from collections.abc import Iterable
from typing import Any

from ..digits import is_digits
from ..errors import ConfigError
from .archives import ExpansionLimit, Limits, ScanContext, limited, scan_object
from .matcher import Matcher
from .report import Report

_SKIP_MODES = ("160000", "120000")  # a submodule commit, a symlink's target path


def _git(args: list[str], cwd: str | None) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise ConfigError("git is not installed: --staged and --history need it") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ConfigError(
            f"git {args[0]} failed: {message[-1] if message else done.returncode}",
            hint="run the scan inside a git work tree",
        )
    return done.stdout


def _raw_entries(output: bytes) -> Iterable[tuple[str, str]]:
    """``(object id, path)`` from ``--raw -z`` output, new side, content blobs only."""
    fields = output.split(b"\0")
    i = 0
    while i < len(fields) - 1:
        header = fields[i].decode("ascii", "replace")
        if not header.startswith(":"):
            i += 1
            continue
        parts = header[1:].split()
        status = parts[4] if len(parts) > 4 else ""
        # Renames and copies name two paths: the new one is the second.
        paths = 2 if status[:1] in ("R", "C") else 1
        path = fields[i + paths].decode("utf-8", "surrogateescape")
        i += 1 + paths
        new_mode, new_id = parts[1], parts[3]
        if new_mode in _SKIP_MODES or set(new_id) == {"0"}:
            continue
        yield new_id, path


def staged_blobs(cwd: str | None = None) -> list[tuple[str, str]]:
    """``(object id, place)`` of what ``git commit`` would record now."""
    out = _git(["diff", "--cached", "--raw", "-z", "--no-abbrev", "--diff-filter=ACMRT", "-M"], cwd)
    return [(oid, f":{path}") for oid, path in _raw_entries(out)]


def history_blobs(count: int, cwd: str | None = None) -> list[tuple[str, str]]:
    """``(object id, place)`` of what the last ``count`` commits of HEAD added or changed."""
    commits = _git(["rev-list", f"--max-count={count}", "HEAD"], cwd).decode().split()
    blobs: list[tuple[str, str]] = []
    for commit in commits:
        out = _git(
            ["diff-tree", "-r", "-z", "--no-abbrev", "--root", "--diff-filter=ACMRT", "-M", commit],
            cwd,
        )
        # diff-tree prints the commit id first when given one commit; _raw_entries skips it.
        blobs.extend((oid, f"{commit[:12]}:{path}") for oid, path in _raw_entries(out))
    return blobs


def scan_blobs(
    blobs: list[tuple[str, str]],
    matcher: Matcher,
    report: Report,
    *,
    cwd: str | None = None,
    limits: Limits | None = None,
) -> None:
    """Stream every blob through the scanner (each object id once)."""
    limits = limits or Limits()
    unique: dict[str, list[str]] = {}
    for oid, place in blobs:
        unique.setdefault(oid, []).append(place)
    if not unique:
        return
    with subprocess.Popen(
        ["git", "cat-file", "--batch"],
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        for oid, places in unique.items():
            proc.stdin.write(oid.encode("ascii") + b"\n")
            proc.stdin.flush()
            header = proc.stdout.readline().split()
            sized = len(header) == 3 and is_digits(header[2].decode("ascii", "replace"), 15)
            size = int(header[2]) if sized else 0
            if not sized or header[1] != b"blob":
                if sized:
                    # A tree or a commit where the index names a file (a crafted index can):
                    # its body follows all the same, and left unread it would be taken for the
                    # next headers (the files after it unscanned, or fed headers of its making).
                    _skip(proc.stdout, size)
                # Without a size ("<oid> missing") nothing follows the header line.
                report.add_issue((places[0],), "not a blob in this repository: not scanned")
                continue
            body = limited(proc.stdout, size)
            ctx = ScanContext(matcher, report, limits)
            ctx.start(size)
            # The first place names the finding; the same content elsewhere is the same leak.
            where = (places[0],)
            try:
                scan_object(body, where, ctx)
            except ExpansionLimit as error:
                report.add_issue(where, str(error))
            while body.read(1 << 20):  # the rest, when the scan stopped early
                pass
            proc.stdout.read(1)  # the newline after each object
            report.count(files=1, read=size)
        proc.stdin.close()


def _skip(stream: Any, size: int) -> None:
    """Read past an object's ``size`` bytes of body and the newline git writes after it."""
    body = limited(stream, size)
    while body.read(1 << 20):
        pass
    stream.read(1)
