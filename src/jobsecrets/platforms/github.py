"""GitHub Actions: announce masks, then hand the values to later steps through the runner's files.

``jobsecrets export --format github`` (what the ``actions/inject`` action runs) does, in order:

1. prints an ``::add-mask::`` workflow command on stdout for every form of every value (and for the
   Vault token and the CI identity token), so the runner masks them before any value exists anywhere
   a later step could print it;
2. appends the values to ``$GITHUB_ENV`` (or to ``-o PATH``), each as a heredoc with a random
   delimiter; a value containing the delimiter is refused rather than allowed to end its heredoc
   early and inject further variables;
3. with outputs enabled, appends them to ``$GITHUB_OUTPUT`` the same way (``steps.ID.outputs.NAME``);
4. appends a table to ``$GITHUB_STEP_SUMMARY``: variable, backend, path, lease TTL, masked. Never a value.

Everything is rendered and checked before the first byte is written, so a refused value exports
nothing at all (all or nothing, like every other format).

Switches come from the environment, because the action sets them from its inputs:

- ``JOBSECRETS_GITHUB_EXPORT_ENV`` (default ``true``): write values to ``$GITHUB_ENV``;
- ``JOBSECRETS_GITHUB_OUTPUTS`` (default ``false``): write values as step outputs;
- ``JOBSECRETS_GITHUB_SUMMARY`` (default ``true``): write the job summary table.
"""

from __future__ import annotations

__all__ = ["export", "heredoc_entry", "new_delimiter", "summary_table"]

import contextlib
import os
import secrets
import sys
from collections.abc import Iterable, Mapping
from typing import TextIO

from ..errors import ConfigError, JobSecretsError
from ..redact import MaskList
from ..resolver import Resolution, ResolvedVar

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


class ExportRefused(JobSecretsError):
    """A value cannot be handed to GitHub faithfully and safely; nothing was written."""

    exit_code = 1


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"${name} must be true or false, got {raw.strip()!r}")


def new_delimiter() -> str:
    """A heredoc delimiter nobody can predict (GitHub's own toolkit uses the same shape)."""
    return f"ghadelimiter_{secrets.token_hex(16)}"


def heredoc_entry(name: str, value: str, delimiter: str) -> str:
    """One ``NAME<<DELIM`` entry for ``$GITHUB_ENV``/``$GITHUB_OUTPUT``.

    Raises :class:`ExportRefused` (naming the variable, never showing the value) when the value
    contains the delimiter: the runner would end the heredoc there and read the rest as new entries.
    """
    if "\x00" in value:
        # The runner would hand the job a variable cut at the NUL: another credential, silently.
        raise ExportRefused(
            f"{name}: the value holds a NUL byte, which no environment variable can carry; "
            "refusing to write it",
            hint="use 'file: true' for this secret: the variable then holds the path of a 0600 file",
        )
    if delimiter in value or delimiter in name:
        raise ExportRefused(
            f"{name}: the value contains the heredoc delimiter chosen for $GITHUB_ENV; "
            "refusing to write it",
            hint="run the step again (the delimiter is random), or use 'file: true' for this value",
        )
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


def _text_value(var: ResolvedVar) -> str:
    """What the variable holds as text: the file path for ``file: true``, else the value."""
    if var.file is not None:
        return var.file
    if isinstance(var.value, str):
        return var.value
    try:
        return var.value.decode("utf-8")
    except UnicodeDecodeError:
        raise ExportRefused(
            f"{var.name}: the value is binary (not UTF-8) and cannot be passed through $GITHUB_ENV",
            hint="add 'file: true' to this secret: the variable then holds the path of a 0600 file",
        ) from None


def _duration(seconds: int | None) -> str:
    if not seconds:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _cell(text: str) -> str:
    # A pipe would split the Markdown cell; a newline would end the row.
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def summary_table(variables: Iterable[ResolvedVar], masks: MaskList) -> str:
    """The job summary: one row per variable with where it came from and its lease; no value."""
    unmasked = set(masks.short_values)
    lines = [
        "### jobsecrets",
        "",
        "| variable | backend | path | lease TTL | masked |",
        "|---|---|---|---|---|",
    ]
    for var in variables:
        masked = "no: too short to mask" if var.name in unmasked else "yes"
        if var.file is not None:
            masked += " (file)"
        lines.append(
            f"| `{_cell(var.name)}` | {_cell(var.backend)} | `{_cell(var.path)}` "
            f"| {_duration(var.lease_ttl)} | {masked} |"
        )
    return "\n".join(lines) + "\n\n"


def _append(path: str, text: str) -> None:
    """Append ``text`` in one write: the runner's files are shared by every step of the job."""
    if not text:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        data = text.encode("utf-8")
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])
    finally:
        os.close(fd)


def _append_all(paths: Iterable[str], text: str) -> None:
    """Append ``text`` to every file, or to none: a failure takes back what was appended.

    The runner reads ``$GITHUB_ENV``/``$GITHUB_OUTPUT`` only when the step ends, so cutting a file
    back to its earlier size undoes our entries (all or nothing, invariant 4).
    """
    done: list[tuple[str, int]] = []
    try:
        for path in paths:
            try:
                size = os.stat(path).st_size
            except FileNotFoundError:
                size = 0
            done.append((path, size))
            _append(path, text)
    except BaseException:
        for path, size in done:
            with contextlib.suppress(OSError):
                os.truncate(path, size)
        raise


def _announce_masks(masks: MaskList, stream: TextIO) -> None:
    commands = masks.github_commands()
    if commands:
        stream.write("\n".join(commands) + "\n")
    # The runner must have read every mask before a value can reach any file a step reads.
    stream.flush()


def export(
    resolution: Resolution,
    masks: MaskList,
    env: Mapping[str, str],
    output: str | None,
    *,
    stream: TextIO | None = None,
) -> None:
    """Register the masks, then write values to ``$GITHUB_ENV`` (or ``output``) and outputs.

    ``stream`` is where workflow commands go (stdout, which the runner reads); tests pass a buffer.
    """
    stream = sys.stdout if stream is None else stream
    export_env = _flag(env, "JOBSECRETS_GITHUB_EXPORT_ENV", True)
    outputs = _flag(env, "JOBSECRETS_GITHUB_OUTPUTS", False)
    summary = _flag(env, "JOBSECRETS_GITHUB_SUMMARY", True)

    env_path = output or (env.get("GITHUB_ENV") if export_env else None)
    if export_env and not env_path:
        raise ConfigError(
            "$GITHUB_ENV is not set: not running in a GitHub Actions step",
            hint="pass -o FILE to write the entries to a file, or use --format shell/dotenv/json",
        )
    output_path = env.get("GITHUB_OUTPUT") if outputs else None
    if outputs and not output_path:
        raise ConfigError("step outputs were asked for, but $GITHUB_OUTPUT is not set")

    # Render and check everything first: a refused value must leave every file untouched.
    delimiter = new_delimiter()
    entries = [heredoc_entry(var.name, _text_value(var), delimiter) for var in resolution.variables]
    body = "".join(entries)
    table = summary_table(resolution.variables, masks) if summary else ""

    _announce_masks(masks, stream)
    _append_all([path for path in (env_path, output_path) if path], body)
    summary_path = env.get("GITHUB_STEP_SUMMARY")
    if table and summary_path:
        try:
            _append(summary_path, table)
        except OSError as error:
            # The values are out already; a missing summary must not fail (and so revoke) them.
            print(
                f"jobsecrets: warning: could not write the job summary: {error.strerror}",
                file=sys.stderr,
            )
    where = ", ".join(
        what
        for what, on in (
            (output or "$GITHUB_ENV", bool(env_path)),
            ("step outputs", bool(output_path)),
        )
        if on
    )
    print(
        f"jobsecrets: {len(resolution.variables)} variable(s) masked"
        + (f" and written to {where}" if where else " (export-env and outputs are off)"),
        file=sys.stderr,
    )
