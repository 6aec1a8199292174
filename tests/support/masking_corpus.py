"""The shared masking corpus (``../shared/masking-corpus/peer_cases.json``) and its oracle.

Each case gives secret values, the chunks a program writes (with a pause between them) and what
must hold: ``masked`` (no readable form of a checked value is left, the ``must_keep`` pieces stay,
in order) or ``preserved`` (the output is the input, byte for byte).

"No readable form" is decided here, not by the redactor under test:

* no ``leak_forms`` entry occurs in the output;
* unless the case says ``windows: false``, no *window* of a checked value (every slice of
  ``WINDOW`` bytes, or the whole value when shorter) occurs in the output, nor in the output as
  decoded by each decoder below: base64 (at every alignment, line breaks removed), percent-
  encoding, JSON string escapes, hex (also as dumps print it), and the shell's quoting when the
  case names the ``shell`` decoder.

Helpers return booleans and counts only: a failing test must never print a value.
"""

from __future__ import annotations

__all__ = [
    "CORPUS_ENV",
    "WINDOW",
    "Case",
    "corpus_path",
    "load_cases",
    "verdict",
]

import base64
import binascii
import json
import os
import re
import shlex
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Environment variable that points at another copy of the corpus.
CORPUS_ENV = "JOBSECRETS_MASKING_CORPUS"
#: Bytes per window of a value that must not be left readable in the output as printed
#: (or shell-, percent- or JSON-decoded).
WINDOW = 8
#: The same in base64- and hex-decoded views: a truncated base64 piece of up to 15 characters
#: (11 bytes) is what the corpus asks to keep (``ar-b64var-*``: over-masking truncated base64
#: would be noise).
DECODED_WINDOW = 12

ROOT = Path(__file__).resolve().parents[2]


def corpus_path() -> Path:
    """``$JOBSECRETS_MASKING_CORPUS``, else ``<repo root>/../shared/masking-corpus/peer_cases.json``.

    CI clones the repository into a fresh folder with a copy of ``shared/`` beside it; a
    missing corpus is a failure of the caller (never a skip).
    """
    override = os.environ.get(CORPUS_ENV)
    if override:
        return Path(override)
    relative = Path("shared") / "masking-corpus" / "peer_cases.json"
    beside = ROOT.parent / relative
    git = ROOT / ".git"
    if not beside.exists() and git.is_file():
        # A git worktree: the corpus sits beside the main checkout ("gitdir: MAIN/.git/worktrees/X").
        gitdir = Path(git.read_text().partition("gitdir:")[2].strip())
        main = gitdir.parent.parent.parent
        if (main.parent / relative).exists():
            return main.parent / relative
    return beside


def _bytes(item: Any) -> bytes:
    if isinstance(item, dict):
        return bytes.fromhex(item["hex"])
    return str(item).encode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class Case:
    """One corpus case, as bytes."""

    id: str
    secrets: list[bytes]
    chunks: list[bytes]
    pause_ms: int
    expect: str
    claimed: bool
    claim: str
    check: list[int]
    leak_forms: list[bytes]
    must_keep: list[bytes]
    windows: bool
    decoders: list[str]
    run_sample: bool
    raw: dict[str, Any] = field(repr=False, compare=False)

    def __repr__(self) -> str:
        # Never the values: pytest shows reprs of parameters.
        return f"Case({self.id})"


def load_cases(path: Path | None = None) -> list[Case]:
    """Every case of the corpus (raises when the file is missing)."""
    data = json.loads((path or corpus_path()).read_text(encoding="utf-8"))
    cases = []
    for raw in data["cases"]:
        secrets = [_bytes(s) for s in raw["secrets"]]
        cases.append(
            Case(
                id=raw["id"],
                secrets=secrets,
                chunks=[_bytes(c) for c in raw["chunks"]],
                pause_ms=int(raw.get("pause_ms") or 0),
                expect=raw["expect"],
                claimed=bool(raw["claimed"]),
                claim=raw.get("claim", ""),
                check=list(raw["check"]) if "check" in raw else list(range(len(secrets))),
                leak_forms=[_bytes(f) for f in raw.get("leak_forms") or []],
                must_keep=[_bytes(k) for k in raw.get("must_keep") or []],
                windows=raw.get("windows") is not False,
                decoders=list(raw.get("decoders") or []),
                run_sample=bool(raw.get("run_sample")),
                raw=raw,
            )
        )
    return cases


# ---- decoders: each returns views of the output in which a value may be readable -------------

_B64_RUN = re.compile(rb"[A-Za-z0-9+/_\-]{8,}={0,3}")


def _b64_views(out: bytes) -> list[bytes]:
    views = []
    for text in (out, re.sub(rb"\r?\n", b"", out)):
        for run in _B64_RUN.findall(text):
            run = run.rstrip(b"=").replace(b"-", b"+").replace(b"_", b"/")
            for shift in range(4):
                piece = run[shift:]
                piece = piece[: len(piece) - len(piece) % 4] if len(piece) % 4 == 1 else piece
                try:
                    views.append(base64.b64decode(piece + b"=" * (-len(piece) % 4)))
                except (binascii.Error, ValueError):
                    continue
    return views


def _percent_views(out: bytes) -> list[bytes]:
    return [
        urllib.parse.unquote_to_bytes(out),
        urllib.parse.unquote_to_bytes(out.replace(b"+", b" ")),
    ]


_JSON_ESCAPE = re.compile(rb"\\(u[0-9a-fA-F]{4}|[\"\\/bfnrt])")
_SIMPLE = {b'"': b'"', b"\\": b"\\", b"/": b"/", b"b": b"\b", b"f": b"\f", b"n": b"\n"}
_SIMPLE.update({b"r": b"\r", b"t": b"\t"})


def _json_view(out: bytes) -> list[bytes]:
    def one(match: re.Match[bytes]) -> bytes:
        body = match.group(1)
        if body[:1] == b"u":
            return chr(int(body[1:], 16)).encode("utf-8", "surrogatepass")
        return _SIMPLE[body]

    first = _JSON_ESCAPE.sub(one, out)
    # A surrogate pair decoded as two halves: join them into the character.
    joined = first.decode("utf-8", "surrogatepass").encode("utf-16", "surrogatepass")
    return [first, joined.decode("utf-16", "replace").encode("utf-8", "replace")]


_HEX_RUN = re.compile(rb"(?:[0-9a-fA-F]{2}[ \t\r\n:]*){4,}")


def _hex_views(out: bytes) -> list[bytes]:
    views = []
    for run in _HEX_RUN.findall(out):
        digits = re.sub(rb"[^0-9a-fA-F]", b"", run)
        for shift in (0, 1):
            piece = digits[shift:]
            views.append(bytes.fromhex((piece[: len(piece) - len(piece) % 2]).decode()))
    return views


_ANSI_C = re.compile(rb"\$'((?:[^'\\]|\\.)*)'")


def _shell_views(out: bytes) -> list[bytes]:
    views = []
    for line in out.split(b"\n"):
        line = _ANSI_C.sub(
            lambda m: shlex.quote(
                m.group(1).decode("unicode_escape", "replace").replace("\\E", "\x1b")
            ).encode("utf-8", "surrogateescape"),
            line,
        )
        try:
            words = shlex.split(line.decode("utf-8", "surrogateescape"), comments=False)
        except ValueError:
            continue
        views.append(" ".join(words).encode("utf-8", "surrogateescape"))
        views.append(b"".join(w.encode("utf-8", "surrogateescape") for w in words))
    return views


def _views(case: Case, out: bytes) -> list[tuple[bytes, int]]:
    """``(view, window)`` pairs: each decoded view of the output with its window size."""
    views = [out, *_percent_views(out), *_json_view(out)]
    if "shell" in case.decoders:
        views.extend(_shell_views(out))
    decoded = [*_b64_views(out), *_hex_views(out)]
    return [(v, WINDOW) for v in views] + [(v, DECODED_WINDOW) for v in decoded]


def _windows(value: bytes, size: int = WINDOW) -> set[bytes]:
    if len(value) <= size:
        return {value}
    return {value[i : i + size] for i in range(len(value) - size + 1)}


def _in_order(pieces: list[bytes], out: bytes) -> bool:
    pos = 0
    for piece in pieces:
        found = out.find(piece, pos)
        if found < 0:
            return False
        pos = found + len(piece)
    return True


def verdict(case: Case, out: bytes) -> str:
    """``"ok"`` when the output meets the case's expectation, else a reason naming no value."""
    whole = b"".join(case.chunks)
    if case.expect == "preserved":
        return "ok" if out == whole else "changed bytes of a text holding no value"
    if not _in_order(case.must_keep, out):
        return "must_keep pieces changed"
    for i, form in enumerate(case.leak_forms):
        if form and form in out:
            return f"leak form {i} left"
    if case.windows:
        needles: dict[int, set[bytes]] = {WINDOW: set(), DECODED_WINDOW: set()}
        for index in case.check:
            for size, found in needles.items():
                found |= _windows(case.secrets[index], size)
        for view, size in _views(case, out):
            if any(needle in view for needle in needles[size] if needle):
                return "a window of a checked value is readable"
    return "ok"


# ---- running a case ---------------------------------------------------------------------------

#: Pauses longer than this are cut to it: the order of writes and reads is what matters.
MAX_PAUSE_MS = 20


def case_env(case: Case, base: dict[str, str]) -> dict[bytes, bytes]:
    """The filter's environment: ``base`` plus each value in ``JOBSECRETS_CASE_<i>``, named in
    ``$JOBSECRETS_MASK_VARS`` (as ``export --format gitlab`` sets them); bytes, so a value that
    is not UTF-8 reaches the filter as it is."""
    env = {os.fsencode(k): os.fsencode(v) for k, v in base.items()}
    names = []
    for i, value in enumerate(case.secrets):
        name = f"JOBSECRETS_CASE_{i}"
        if value:
            env[name.encode()] = value
            names.append(name)
    env[b"JOBSECRETS_MASK_VARS"] = " ".join(names).encode()
    return env


def feed_process(
    argv: list[str], env: dict[bytes, bytes], case: Case, timeout: float = 60
) -> bytes:
    """Start ``argv``, write the case's chunks to its stdin with the pauses, return its stdout."""
    import subprocess
    import threading
    import time

    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )
    assert proc.stdin is not None and proc.stdout is not None
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(proc.stdout.read()))  # type: ignore[union-attr]
    reader.start()
    pause = min(case.pause_ms, MAX_PAUSE_MS) / 1000
    for i, chunk in enumerate(case.chunks):
        if i and pause:
            time.sleep(pause)
        proc.stdin.write(chunk)
        proc.stdin.flush()
    proc.stdin.close()
    reader.join(timeout)
    proc.wait(timeout)
    return got[0] if got else b""
