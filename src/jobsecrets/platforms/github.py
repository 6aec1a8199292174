"""GitHub Actions: detection, job ids, the OIDC token endpoint, and ``export --format github``.

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

The job's identity token is requested from ``ACTIONS_ID_TOKEN_REQUEST_URL`` with the bearer
``ACTIONS_ID_TOKEN_REQUEST_TOKEN`` (the workflow needs ``permissions: id-token: write``), for the
audience the backend asks for. Only ``urllib`` is used: ``plan`` imports this without paying for an
HTTP library.
"""

from __future__ import annotations

__all__ = [
    "PLATFORM",
    "GitHub",
    "export",
    "heredoc_entry",
    "new_delimiter",
    "request_oidc_token",
    "summary_table",
]

import contextlib
import os
import secrets
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

from .. import jsonsafe
from ..addresses import address_problem, header_problem
from ..durations import format_duration
from ..errors import ConfigError, IdentityError, ValueNotExportable
from ..names import clean_text
from ..recorded import FILE_VARS_ENV, MIN_LINE_LENGTH_ENV, VARS_ENV
from ..safe_files import append_private, open_append, write_all
from .base import Platform, TokenSource

if TYPE_CHECKING:
    from ..redact import MaskList
    from ..resolved import Resolution, ResolvedVar

REQUEST_URL_ENV = "ACTIONS_ID_TOKEN_REQUEST_URL"
REQUEST_TOKEN_ENV = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"  # noqa: S105 - a variable name, not a secret


class GitHub(Platform):
    """GitHub Actions (``GITHUB_ACTIONS=true``)."""

    name: ClassVar[str] = "github"
    export_format: ClassVar[str | None] = "github"
    audit_variables: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "server": ("GITHUB_SERVER_URL",),
        "project": ("GITHUB_REPOSITORY",),
        "pipeline": ("GITHUB_RUN_ID",),
        "attempt": ("GITHUB_RUN_ATTEMPT",),
        "workflow": ("GITHUB_WORKFLOW_REF", "GITHUB_WORKFLOW"),
        "job": ("GITHUB_JOB",),
        "ref": ("GITHUB_REF",),
        "sha": ("GITHUB_SHA",),
        "actor": ("GITHUB_TRIGGERING_ACTOR", "GITHUB_ACTOR"),
        "event": ("GITHUB_EVENT_NAME",),
    }

    def detect(self, env: Mapping[str, str]) -> bool:
        """``GITHUB_ACTIONS=true``, as the runner sets it."""
        return env.get("GITHUB_ACTIONS") == "true"

    def job_key(self, env: Mapping[str, str]) -> str:
        """Run id and job id: one job of one workflow run."""
        return env.get("GITHUB_RUN_ID", "") + env.get("GITHUB_JOB", "")

    def state_base(self, env: Mapping[str, str]) -> str | None:
        """``$RUNNER_TEMP``: private to the job and emptied by the runner after it."""
        return env.get("RUNNER_TEMP") or None

    def session_name(self, env: Mapping[str, str]) -> str | None:
        """``jobsecrets-gh-<run id>-<attempt>``."""
        if not env.get("GITHUB_RUN_ID"):
            return None
        return f"jobsecrets-gh-{env['GITHUB_RUN_ID']}-{env.get('GITHUB_RUN_ATTEMPT', '1')}"

    def token_source(
        self, variable: str | None, audience: str | None, env: Mapping[str, str]
    ) -> TokenSource:
        """GitHub's OIDC token endpoint (needs ``permissions: id-token: write``)."""
        url = env.get(REQUEST_URL_ENV, "")
        missing = [name for name in (REQUEST_URL_ENV, REQUEST_TOKEN_ENV) if not env.get(name)]
        why = address_problem(url) if url else None
        host = "?" if why else urllib.parse.urlsplit(url).hostname or "?"
        if why:
            # Not a URL to send the request token to (file:///... was read as a local file).
            return TokenSource(
                "github",
                "GitHub Actions OIDC token endpoint (not usable)",
                missing=f"${REQUEST_URL_ENV}: {why}",
                hint="GitHub Actions sets it for jobs with 'permissions: id-token: write'",
            )
        if missing:
            return TokenSource(
                "github",
                "GitHub Actions OIDC token endpoint (not available)",
                missing=f"GitHub Actions did not provide {' and '.join(missing)}",
                hint="give the job 'permissions: id-token: write' (in the workflow or the "
                "job); pull requests from forks never get an OIDC token",
            )
        return TokenSource(
            "github",
            f"GitHub Actions OIDC token endpoint ({host})",
            request=lambda aud, timeout, clock, sleep: request_oidc_token(
                env, aud, timeout, clock, sleep
            ),
        )

    def export(self, *args: Any, **kwargs: Any) -> None:
        """:func:`export`."""
        export(*args, **kwargs)


PLATFORM = GitHub()


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


class ExportRefused(ValueNotExportable):
    """A value cannot be handed to GitHub faithfully and safely; nothing was written."""


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


def _append(path: str, text: str, *, private: bool = False) -> None:
    """Append ``text`` in one write: the runner's files are shared by every step of the job.

    ``private``: a file the user named (``-o``), held to the rules of every other ``-o`` (a
    0600 regular file of ours, no symlink): it was followed through a symlink, and an existing
    file kept its mode (0644: the values readable by everyone).
    """
    if not text:
        return
    if private:
        append_private(path, text)
        return
    fd = open_append(path, 0o600)
    try:
        write_all(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def _append_all(items: Iterable[tuple[str, str]], private: str | None = None) -> None:
    """Append each ``(path, text)``, or none: a failure takes back what was appended.

    The runner reads ``$GITHUB_ENV``/``$GITHUB_OUTPUT`` only when the step ends, so cutting a file
    back to its earlier size undoes our entries (all or nothing, invariant 4).
    """
    done: list[tuple[str, int]] = []
    try:
        for path, text in items:
            try:
                size = os.stat(path).st_size
            except FileNotFoundError:
                size = 0
            done.append((path, size))
            try:
                _append(path, text, private=path == private)
            except OSError as error:
                # A runner's file that cannot take our entries (a directory, a full disk, a
                # FIFO nothing reads): the step fails, its leases are revoked, nothing half-done.
                raise ConfigError(
                    f"cannot write to {path}: {error.strerror or error}",
                    hint="the runner's $GITHUB_ENV/$GITHUB_OUTPUT must be writable files",
                ) from None
    except BaseException:
        for path, size in done:
            with contextlib.suppress(OSError):
                os.truncate(path, size)
        raise


def _recorded_names(resolution: Resolution, masks: MaskList) -> list[tuple[str, str]]:
    """``$JOBSECRETS_MASK_*`` entries: which variables hold values (and which hold files)."""
    names = [var.name for var in resolution.variables if var.file is None]
    files = [var.name for var in resolution.variables if var.file is not None]
    return [
        (VARS_ENV, " ".join(names)),
        (FILE_VARS_ENV, " ".join(files)),
        (MIN_LINE_LENGTH_ENV, str(masks.min_line_length)),
    ]


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
    if env_path:
        # Names only: a later `jobsecrets scan` step finds the values by them, as the redact
        # filter does on GitLab (issue 19). Not for step outputs: those are not an environment.
        env_body = body + "".join(
            heredoc_entry(name, text, delimiter)
            for name, text in _recorded_names(resolution, masks)
        )
    else:
        env_body = body
    table = summary_table(resolution.variables, masks) if summary else ""

    _announce_masks(masks, stream)
    _append_all(
        [(path, text) for path, text in ((env_path, env_body), (output_path, body)) if path],
        private=output,
    )
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


# ---- the OIDC token endpoint ----------------------------------------------------------------------


def request_oidc_token(
    env: Mapping[str, str],
    audience: str | None,
    timeout: float,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """A fresh OIDC token for ``audience`` from GitHub's endpoint, retried within ``timeout``.

    5xx and 429 answers and network errors are retried with backoff; 401/403/404 are not (they
    do not get better). The request token is sent as a bearer header, never logged.
    """
    # Here, not at the top: urllib.request brings http.client and ssl (~10 ms), which a command
    # that only detects the platform (every command does) or runs outside GitHub never needs.
    import urllib.error
    import urllib.request

    from ..redirects import RedirectRefused, SameOriginRedirects

    url = env[REQUEST_URL_ENV]
    problem = header_problem(env[REQUEST_TOKEN_ENV]) or (
        f"the audience {clean_text(audience, 60)!r} is no text a URL can carry"
        if audience and not _encodable(audience)
        else None
    )
    if problem:
        # The request token is a credential: never shown, only what is wrong with it.
        raise IdentityError(f"cannot ask GitHub's OIDC token endpoint: {problem}")
    if audience:
        # The URL GitHub gives already carries a query string (api-version=...).
        separator = "&" if urllib.parse.urlsplit(url).query else "?"
        if url.endswith(("?", "&")):
            separator = ""
        url = f"{url}{separator}audience={urllib.parse.quote(audience, safe='')}"
    request = urllib.request.Request(  # noqa: S310 - the URL is GitHub's, not user input
        url,
        headers={
            "Authorization": f"Bearer {env[REQUEST_TOKEN_ENV]}",
            "Accept": "application/json; api-version=2.0",
            "User-Agent": "jobsecrets",
        },
    )
    # urlopen follows a redirect anywhere, https -> http too, with every header: the bearer
    # request token went to whatever host a 302 named. Same origin only (@actions/http-client,
    # GitHub's own, drops Authorization on a change of host).
    opener = urllib.request.build_opener(SameOriginRedirects())
    deadline = clock() + timeout
    delay = 0.25
    attempt = 0
    last = ""
    while True:
        attempt += 1
        remaining = deadline - clock()
        try:
            with opener.open(request, timeout=max(1.0, min(10.0, remaining))) as r:
                body = r.read()
        except RedirectRefused as exc:
            # Not retried: the endpoint will point there again.
            raise IdentityError(
                f"GitHub's OIDC token endpoint redirected the request to {exc.target}, "
                "another origin: not followed (the request token is sent to "
                f"${REQUEST_URL_ENV}'s origin only)",
                hint=f"${REQUEST_URL_ENV} is set by the runner: check what overrides it",
            ) from None
        except urllib.error.HTTPError as exc:
            if exc.code < 500 and exc.code != 429:
                # 401/403/404 will not get better by retrying.
                raise IdentityError(
                    f"GitHub's OIDC token endpoint refused the request: HTTP {exc.code}",
                    hint="the job needs 'permissions: id-token: write'; the request token "
                    "is only valid while the job runs",
                ) from None
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            last = f"{type(reason).__name__}: {reason}"
        else:
            return _parse_github_body(body)
        remaining = deadline - clock()
        if remaining <= delay:
            raise IdentityError(
                f"GitHub's OIDC token endpoint failed {attempt} times within "
                f"{format_duration(timeout)} (last: {last})",
                hint="retry the job; raise 'identity.timeout' if this is frequent",
            )
        sleep(delay)
        delay = min(delay * 2, 5.0)


def _encodable(text: str) -> bool:
    """True when ``text`` is UTF-8 text (a lone surrogate from a non-UTF-8 environment is not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _parse_github_body(body: bytes) -> str:
    try:
        data = jsonsafe.loads(body)
    except ValueError:
        raise IdentityError("GitHub's OIDC token endpoint answered with invalid JSON") from None
    value = data.get("value") if isinstance(data, dict) else None
    if not isinstance(value, str) or not value:
        raise IdentityError("GitHub's OIDC token endpoint answered without a token 'value'")
    return value
