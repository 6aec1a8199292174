"""The ``jobsecrets`` command line: ``plan``, ``run``, ``export``, ``revoke``, ``redact``, ``import``,
``scan``.

Heavy libraries (hvac, botocore) are imported only by the backends, when a command talks to a store:
``--help``, ``--version`` and ``plan`` never load them (a test guards the import graph).
"""

from __future__ import annotations

__all__ = ["main"]

import json
import logging
import os
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from . import unshown
from ._version import __version__
from .errors import ChildError, ConfigError, JobSecretsError, RevokeError

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("jobsecrets")

EXPORT_FORMATS = ("shell", "dotenv", "docker", "json", "github", "gitlab")
#: Commands that resolve secrets: collection stays paused until resolution ends (_collect.py).
RESOLVING = ("run", "export")
#: Set by the commands on a job's critical path (``run``, ``export``, ``revoke``) once click has
#: parsed their arguments: the process then ends without the interpreter's teardown (_exit.py).
_skip_teardown = False


def _no_teardown() -> None:
    """This command's process may end without the interpreter's teardown (see ``main``)."""
    global _skip_teardown
    _skip_teardown = True


def _split_only(value: tuple[str, ...]) -> list[str] | None:
    """The names ``--only`` asks for; ``None`` when it was not given at all.

    ``--only ""`` (an empty ``$VARS``) asks for nothing: handing over every secret instead would
    give the job more than it asked for, so it is refused.
    """
    if not value:
        return None
    names = [n.strip() for item in value for n in item.split(",") if n.strip()]
    if not names:
        raise ConfigError(
            "--only names no variable",
            hint="leave --only out to resolve every variable of the spec",
        )
    return names


def _more_verbose(ctx: click.Context, _param: click.Parameter, value: int) -> int:
    # `-v` after the command (`jobsecrets run -v -- CMD`) adds to any `-v` before it.
    if value:
        root = ctx.find_root()
        root.meta["jobsecrets.verbose"] = root.meta.get("jobsecrets.verbose", 0) + value
        _configure_logging(root.meta["jobsecrets.verbose"])
    return value


def verbose_option(func: F) -> F:
    """``-v``/``-vv`` on every command as well as before it (the README lists it as common)."""
    return click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        callback=_more_verbose,
        help="More log output on stderr (-vv: debug). Never values.",
    )(func)


def audit_option(func: F) -> F:
    """``--audit-log FILE|-`` on the commands that resolve (``run``, ``export``)."""
    return click.option(
        "--audit-log",
        metavar="FILE|-",
        envvar="JOBSECRETS_AUDIT_LOG",
        show_envvar=True,
        help="Append one JSON line per variable (no values; docs/audit.md) to FILE, or - for stdout.",
    )(func)


def _config_path(ctx: click.Context, _param: click.Parameter, value: str | None) -> str:
    # -c after the command, else -c before it, else jobsecrets.yml/.yaml found upwards
    # (spec/discovery.py): a command run from a subdirectory of the repository finds the spec.
    from click.core import ParameterSource

    from_env = ctx.get_parameter_source("config") == ParameterSource.ENVIRONMENT
    if value is not None and not from_env:
        return value
    given = ctx.find_root().meta.get("jobsecrets.config")
    if given is not None:
        return str(given)
    if value is not None:
        return value
    from .spec.discovery import find_spec

    return find_spec()


def _remember_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    # `jobsecrets -c ci/jobsecrets.yml plan`: the group's -c reaches every command.
    ctx.meta["jobsecrets.config"] = value


def _complete_names(
    ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Shell completion of ``--only``: the variable names of the spec (no value is read)."""
    from click.shell_completion import CompletionItem

    from .spec.parser import load_spec

    try:
        spec = load_spec(ctx.params.get("config") or _config_path(ctx, _param, None))
    except Exception:  # a broken spec completes nothing; completion must never fail loudly
        return []
    done, _, last = incomplete.rpartition(",")
    head = done + "," if done else ""
    return [CompletionItem(head + s.name) for s in spec.secrets if s.name.startswith(last)]


def common_options(func: F) -> F:
    """``-c/--config``, ``--only`` and ``-v`` on every command that reads the spec."""
    func = verbose_option(func)
    func = click.option(
        "--only",
        multiple=True,
        metavar="NAME[,NAME]",
        shell_complete=_complete_names,
        help="Resolve only these variables (repeatable or comma-separated).",
    )(func)
    func = click.option(
        "-c",
        "--config",
        envvar="JOBSECRETS_CONFIG",
        show_envvar=True,
        type=click.Path(dir_okay=False),
        callback=_config_path,
        help="The spec file [default: jobsecrets.yml or .yaml, here or up to the repository root].",
    )(func)
    return func


class _Group(click.Group):
    """Lists every command's whole first sentence: click cuts them at about 45 columns ("...")."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="jobsecrets")
@click.option(
    "-v", "--verbose", count=True, help="More log output on stderr (-vv: debug). Never values."
)
@click.option(
    "-c",
    "--config",
    type=click.Path(dir_okay=False),
    expose_value=False,
    callback=_remember_config,
    help="The spec file, for the command that follows (same as its own -c).",
)
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """Give a CI job exactly the secrets it asks for, for as long as it runs, and nothing more.

    Reads jobsecrets.yml, signs in to Vault/OpenBao and AWS Secrets Manager with the job's own
    identity, and hands the values to the job masked, revoking every lease and token at the end.
    """
    ctx.meta["jobsecrets.verbose"] = verbose
    _configure_logging(verbose)
    if ctx.invoked_subcommand not in RESOLVING:
        # Long filters (redact, scan) and the rest: collection back on at once.
        from . import _collect

        _collect.resume()


class _ScrubbingFormatter(logging.Formatter):
    """Log records quote a store's words too (a lease it would not revoke, a renewal it
    refused): what the process must never print is masked in them (:mod:`jobsecrets.unshown`)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as the plain formatter writes it, with remembered values masked (unless
        it says it holds none: :data:`jobsecrets.unshown.PLAIN`)."""
        text = super().format(record)
        return text if getattr(record, "unshown_plain", False) else unshown.scrub(text)


def _configure_logging(verbose: int) -> None:
    """Log jobsecrets' own records only: never the root logger.

    Client libraries log request and response bodies at debug level (botocore prints every
    SecretString it receives), so their loggers must stay quiet whatever -v says.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logger = logging.getLogger("jobsecrets")
    logger.setLevel(level)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_ScrubbingFormatter("jobsecrets: %(levelname)s: %(message)s"))
        logger.addHandler(handler)
    logger.propagate = False
    for noisy in ("botocore", "boto3", "urllib3", "hvac", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# ---- plan ------------------------------------------------------------------------------------


@cli.command()
@common_options
@click.option(
    "--check", is_flag=True, help="Also sign in and check access to every path (reads no value)."
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def plan(config: str, only: tuple[str, ...], check: bool, fmt: str) -> None:
    """Show what a job will get, from where, and how: reads no secret value."""
    from .commands.plan import run_plan

    run_plan(config, _split_only(only), check=check, fmt=fmt)


# ---- run -------------------------------------------------------------------------------------


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@common_options
@audit_option
@click.option(
    "--tty/--no-tty",
    default=None,
    help="Give the command a pseudo-terminal (default: when stdout is one).",
)
@click.option(
    "--scan",
    "scan_paths",
    multiple=True,
    metavar="PATH",
    help="After COMMAND exits (before revocation), look for the values in PATH (repeatable).",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(
    config: str,
    only: tuple[str, ...],
    audit_log: str | None,
    tty: bool | None,
    scan_paths: tuple[str, ...],
    command: tuple[str, ...],
) -> None:
    """Run COMMAND with the secrets in its environment, masked in its output, revoked at exit.

    Exits with COMMAND's exit code. Write `--` before the command:
    `jobsecrets run -- ./deploy.sh --prod`.
    """
    from .commands.run import run_command

    _no_teardown()
    sys.exit(
        run_command(
            config,
            _split_only(only),
            list(command),
            tty=tty,
            audit_log=audit_log,
            scan=list(scan_paths),
        )
    )


# ---- export ----------------------------------------------------------------------------------


@cli.command()
@common_options
@audit_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(EXPORT_FORMATS),
    help="Where and how values go [default: dotenv with -o, else shell].",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Write to this file (created 0600) instead of stdout.",
)
@click.option(
    "--state",
    type=click.Path(dir_okay=False),
    help="State file for `revoke` (default: see README).",
)
@click.option(
    "--files-dir", type=click.Path(file_okay=False), help="Where `file: true` values are written."
)
def export(
    config: str,
    only: tuple[str, ...],
    audit_log: str | None,
    fmt: str | None,
    output: str | None,
    state: str | None,
    files_dir: str | None,
) -> None:
    """Resolve and write the values for a later step; leases go to the state file for `revoke`."""
    from .commands.export import export_command

    _no_teardown()
    # A file is usually read by a tool (docker --env-file, compose): dotenv; stdout usually by
    # a shell (`eval "$(jobsecrets export)"`): shell.
    fmt = fmt or ("dotenv" if output else "shell")
    # Every format but github (whose values go to $GITHUB_ENV) writes them to stdout.
    if audit_log == "-" and output is None and fmt != "github":
        raise ConfigError(
            "--audit-log - would mix audit records into the values written to stdout",
            hint="give --audit-log a file, or write the values with -o/--output",
        )
    if output is not None:
        _check_output_dir(output)
    export_command(
        config,
        _split_only(only),
        fmt,
        output=output,
        state=state,
        files_dir=files_dir,
        audit_log=audit_log,
    )


def _check_output_dir(output: str) -> None:
    """``-o DIR/FILE`` into a directory that does not exist: say so before anything is fetched
    (it was an internal error after the secrets had been read)."""
    if not output:
        # With --format github, '' meant "no -o": the values went to $GITHUB_ENV instead.
        raise ConfigError("--output '' names no file", hint="give -o a file path, or leave it out")
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        raise ConfigError(
            f"--output {output}: the directory {directory} does not exist",
            hint="create it first, or give -o a path in an existing directory",
        )


# ---- init ------------------------------------------------------------------------------------


@cli.command(short_help="Write a first spec for GitHub, GitLab or local use.")
@verbose_option
@click.option(
    "--for",
    "target",
    type=click.Choice(["github", "gitlab", "local"]),
    help="Where the spec runs [default: github with .github/workflows, gitlab with .gitlab-ci.yml, "
    "else local].",
)
@click.option(
    "-o",
    "--output",
    default="jobsecrets.yml",
    show_default=True,
    help="The file to write (- for stdout).",
)
@click.option("--force", is_flag=True, help="Replace an existing file.")
def init(target: str | None, output: str, force: bool) -> None:
    """Write a first spec, with the Vault role and policy and the AWS trust policy it needs as
    comments. Check it with `jobsecrets plan`."""
    from .commands.init import init_command

    init_command(target, output, force)


# ---- revoke ----------------------------------------------------------------------------------


@cli.command()
@verbose_option
@click.option(
    "--state",
    type=click.Path(dir_okay=False),
    help="State file written by `export` (default: see README).",
)
def revoke(state: str | None) -> None:
    """Revoke every lease and token recorded by `export`. Safe to run twice."""
    from .commands.revoke import revoke_command

    _no_teardown()
    revoke_command(state)


# ---- redact ----------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--done-file",
    # Any path: a filter that exits on a bad option would leave the job's output unread; a path
    # that is no regular file is reported and left alone (commands.redact._DoneFile).
    type=click.Path(),
    help="Remove this regular file once the last byte is written (a shell waits on it before "
    "exiting).",
)
def redact(done_file: str | None) -> None:
    """Copy stdin to stdout with the job's secrets masked (the GitLab include pipes the job through it).

    The values come from this process's environment: the variables named in $JOBSECRETS_MASK_VARS
    (and the files named by $JOBSECRETS_MASK_FILE_VARS), as `export --format gitlab` sets them.
    """
    from .commands.redact import run_filter_from_env

    sys.exit(run_filter_from_env(dict(os.environ), done_file=done_file))


# ---- import ----------------------------------------------------------------------------------


@cli.command("import")
@verbose_option
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--write", is_flag=True, help="Write the spec and edit FILES in place (else: print).")
@click.option(
    "--spec-out", type=click.Path(dir_okay=False), help="Write the spec here [jobsecrets.yml]."
)
@click.option(
    "--action",
    default="jobsecrets/jobsecrets/actions/inject@v1",
    show_default=True,
    help="What rewritten GitHub steps use (pin a commit SHA).",
)
@click.option(
    "--gitlab-include",
    default="gitlab/jobsecrets.yml",
    show_default=True,
    help="Include added to GitLab files: a local path, or a component (with @VERSION).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing spec file.")
def import_(
    files: tuple[str, ...],
    write: bool,
    spec_out: str | None,
    action: str,
    gitlab_include: str,
    force: bool,
) -> None:
    """Turn vault-action / aws-secretsmanager-get-secrets steps, GitLab `secrets:` and vals
    references into a spec, rewritten steps and jobs, and a report. Reads no secret value.
    """
    try:
        from .importer.command import run_import  # ruamel.yaml: loaded by this command only
    except ModuleNotFoundError as error:
        # The GitHub Action's install leaves ruamel.yaml out (its steps never run this command),
        # and a later step of the job may find that install on PATH.
        if not (error.name or "").startswith("ruamel"):
            raise
        raise ConfigError(
            "`jobsecrets import` needs ruamel.yaml, which this install of jobsecrets does not have",
            hint="pip install 'ruamel.yaml>=0.18' next to it, or run `pip install jobsecrets` "
            "and import from there (the GitHub Action installs only what its steps run)",
        ) from None

    run_import(
        list(files),
        write=write,
        spec_out=spec_out,
        action=action,
        gitlab_include=gitlab_include,
        force=force,
    )


# ---- scan ------------------------------------------------------------------------------------


@cli.command()
@verbose_option
@click.option(
    "-c",
    "--config",
    type=click.Path(dir_okay=False),
    help="Resolve this spec here for the values (a local check; leases are revoked at once). "
    "Without it: the values of this environment, by the names `export` recorded.",
)
@click.option("--only", multiple=True, metavar="NAME[,NAME]", help="With -c: only these variables.")
@click.option("--staged", is_flag=True, help="Scan what `git commit` would record now.")
@click.option("--history", type=click.IntRange(min=1), metavar="N", help="Scan the last N commits.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--summary",
    type=click.Path(dir_okay=False),
    help="Append a Markdown table (variable, file, form) to this file, e.g. $GITHUB_STEP_SUMMARY.",
)
@click.option(
    "--min-length",
    type=click.IntRange(min=3),
    default=8,
    show_default=True,
    help="Values and forms shorter than this are not searched for (named in a warning).",
)
@click.option(
    "--max-depth",
    type=click.IntRange(min=0),
    default=6,
    show_default=True,
    help="Archive and compression layers opened inside one another.",
)
@click.argument("paths", nargs=-1, type=click.Path())
def scan(
    config: str | None,
    only: tuple[str, ...],
    staged: bool,
    history: int | None,
    fmt: str,
    summary: str | None,
    min_length: int,
    max_depth: int,
    paths: tuple[str, ...],
) -> None:
    """Look for the job's values, in every masked form, in PATHs (archives too) and git changes.

    Reports file, archive member, offset, line, variable and form: never the value. Exit codes:
    0 clean, 9 a value was found, 10 something could not be scanned.
    """
    from .scan import Limits, ScanOptions, run_scan

    options = ScanOptions(
        paths=list(paths),
        staged=staged,
        history=history,
        fmt=fmt,
        summary=summary,
        min_length=min_length,
        limits=Limits(max_depth=max_depth),
    )
    sys.exit(run_scan(config, _split_only(only) if config else None, options))


# ---- entry point -----------------------------------------------------------------------------


def _fail(error: JobSecretsError) -> NoReturn:
    # A store's error text is in the message: it may quote our token or another variable's value.
    click.echo(unshown.scrub(f"jobsecrets: error: {error}"), err=True)
    if error.hint:
        click.echo(unshown.scrub(f"jobsecrets: hint: {error.hint}"), err=True)
    sys.exit(error.exit_code)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: runs the CLI and turns every failure into a message and exit code."""
    global _skip_teardown
    from . import _collect
    from ._exit import exit_process, mark_process_start

    mark_process_start()
    # Until the command is known, or for run/export until resolution ends (_collect.py).
    _collect.pause(freeze=True)
    _skip_teardown = False
    try:
        _main(argv)
        code: int | str | None = 0
    except SystemExit as done:
        code = done.code
    finally:
        _collect.resume()
    # Last, after revocation: do not wait for worker threads a store keeps blocked, nor, for a
    # command of the job's critical path, for the interpreter's teardown (_exit.py).
    exit_process(code, teardown=not _skip_teardown)


def _main(argv: list[str] | None) -> None:
    from ._signals import Terminated, install_signal_handlers

    install_signal_handlers()
    try:
        cli.main(args=argv, prog_name="jobsecrets", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.Abort:
        click.echo("jobsecrets: aborted", err=True)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        # Usage errors share exit code 2 with spec errors: both mean "fix the input".
        sys.exit(ConfigError.exit_code)
    except (ChildError, RevokeError, JobSecretsError) as error:
        _fail(error)
    except Terminated as terminated:
        click.echo(f"jobsecrets: terminated by signal {terminated.signum}", err=True)
        sys.exit(terminated.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except ModuleNotFoundError as error:
        # An install without a backend's library (botocore, hvac, pyjwt): a message naming it
        # and how to get it, not an internal error.
        from .missing_modules import missing_module_error

        _fail(missing_module_error(error))
    except Exception as error:  # the last line of defence: no traceback, it could show a value
        frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
        where = f" at {os.path.basename(frame.filename)}:{frame.lineno}" if frame else ""
        click.echo(f"jobsecrets: internal error: {type(error).__name__}{where}", err=True)
        click.echo(
            "jobsecrets: hint: this is a bug; please report it with the command you ran "
            "(the message above holds no secret value)",
            err=True,
        )
        sys.exit(1)


def _json_dump(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str)
