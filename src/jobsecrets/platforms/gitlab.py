"""GitLab CI: detection, job ids, the ``id_tokens:`` variable, and ``export --format gitlab``.

``jobsecrets export --format gitlab`` writes values for the job's own shell, masked by ``jobsecrets redact``.

GitLab has no run-time equivalent of GitHub's ``::add-mask::``: a value fetched by the job cannot be
added to the masked variables, and a dotenv artifact would store it in GitLab. So the include
captures this output in a shell variable and ``eval``s it in the job's shell (``before_script`` and
``script`` share one shell), and then pipes everything that shell prints through
``jobsecrets redact``. What is written here:

* ``export NAME='value'`` for every variable (quoted with :func:`shlex.quote`: nothing in a value is
  expanded by ``eval``); ``file: true`` variables hold the path of their 0600 file;
* ``JOBSECRETS_MASK_VARS``: the *names* of the variables whose values the filter must mask, the
  job's CI identity token variable included; ``JOBSECRETS_MASK_FILE_VARS``: the ``file: true``
  variables, whose file contents it masks; the spec's replacement and minimum line length.

The output goes to ``-o FILE`` (created 0600) or to stdout, but never to a terminal, and never to a
stdout that is also stderr: in a GitLab job that is the job log itself (``jobsecrets export
--format gitlab`` run bare instead of inside ``$(...)``).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_ID_TOKEN_VARIABLE",
    "PLATFORM",
    "GitLab",
    "export",
    "mask_variable_names",
    "render_gitlab",
]

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import ConfigError
from ..formats import render
from ..names import is_identifier
from ..recorded import FILE_VARS_ENV, MIN_LINE_LENGTH_ENV, REPLACEMENT_ENV, VARS_ENV
from ..safe_files import write_private
from .base import Platform, TokenSource

if TYPE_CHECKING:
    from ..redact import MaskList
    from ..resolved import Resolution

#: The variable ``id_tokens:`` defines unless the spec names another.
DEFAULT_ID_TOKEN_VARIABLE = "VAULT_ID_TOKEN"  # noqa: S105 - a variable name, not a secret


class GitLab(Platform):
    """GitLab CI (``GITLAB_CI=true``)."""

    name: ClassVar[str] = "gitlab"
    export_format: ClassVar[str | None] = "gitlab"
    token_in_variable: ClassVar[bool] = True
    audit_variables: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "server": ("CI_SERVER_URL",),
        "project": ("CI_PROJECT_PATH",),
        "pipeline": ("CI_PIPELINE_ID",),
        "job_id": ("CI_JOB_ID",),
        "job": ("CI_JOB_NAME",),
        "ref": ("CI_COMMIT_REF_NAME",),
        "sha": ("CI_COMMIT_SHA",),
        "actor": ("GITLAB_USER_LOGIN",),
        "event": ("CI_PIPELINE_SOURCE",),
        "environment": ("CI_ENVIRONMENT_NAME",),
    }

    def detect(self, env: Mapping[str, str]) -> bool:
        """``GITLAB_CI=true``, as the runner sets it; also a job run by gitlab-ci-local, which sets
        ``GITLAB_CI=false`` but the job's own variables too (so its ``id_tokens:`` are found)."""
        if env.get("GITLAB_CI") == "true":
            return True
        return env.get("GITLAB_CI") == "false" and all(
            env.get(name) for name in ("CI_JOB_ID", "CI_PROJECT_DIR", "CI_PIPELINE_ID")
        )

    def job_key(self, env: Mapping[str, str]) -> str:
        """The job id."""
        return env.get("CI_JOB_ID", "")

    def state_base(self, env: Mapping[str, str]) -> str | None:
        """Beside the build directory: ``after_script`` runs in a new shell in the same place."""
        if self.detect(env) and env.get("CI_PROJECT_DIR"):
            return env["CI_PROJECT_DIR"] + ".tmp"
        return None

    def session_name(self, env: Mapping[str, str]) -> str | None:
        """``jobsecrets-gl-<job id>``."""
        return f"jobsecrets-gl-{env['CI_JOB_ID']}" if env.get("CI_JOB_ID") else None

    def token_source(
        self, variable: str | None, audience: str | None, env: Mapping[str, str]
    ) -> TokenSource:
        """The variable ``id_tokens:`` defines (``VAULT_ID_TOKEN`` unless the spec names another)."""
        name = variable or DEFAULT_ID_TOKEN_VARIABLE
        return TokenSource(
            "gitlab",
            f"GitLab CI id_tokens variable ${name}",
            missing="" if env.get(name) else f"${name} is not set or empty",
            hint=f"declare it in the job: 'id_tokens: {{{name}: {{aud: "
            f"{audience or 'https://vault.example.com'}}}}}'",
            variable=name,
        )

    def export(self, *args: Any, **kwargs: Any) -> None:
        """:func:`export`."""
        export(*args, **kwargs)


PLATFORM = GitLab()


def mask_variable_names(
    resolution: Resolution, masks: MaskList, env: Mapping[str, str]
) -> tuple[list[str], list[str]]:
    """The variables whose values the filter masks, and the ``file: true`` ones (contents masked).

    Besides the resolved variables, any variable of the job's environment that holds one of the
    values to mask is listed: that is how the CI identity token's variable (``VAULT_ID_TOKEN`` or
    whatever ``id_tokens:`` names) is found without knowing its name here.
    """
    names = [var.name for var in resolution.variables if var.file is None]
    files = [var.name for var in resolution.variables if var.file is not None]
    patterns = masks.patterns
    for name, value in sorted(env.items()):
        if name in names or name in files or not value or not is_identifier(name):
            continue
        if value.encode("utf-8", "surrogateescape") in patterns:
            names.append(name)
    return names, files


def render_gitlab(resolution: Resolution, masks: MaskList, env: Mapping[str, str]) -> str:
    """The shell text the include ``eval``s (holds values: never print it)."""
    names, files = mask_variable_names(resolution, masks, env)
    settings = {
        VARS_ENV: " ".join(names),
        FILE_VARS_ENV: " ".join(files),
        REPLACEMENT_ENV: masks.replacement.decode("utf-8", "replace"),
        MIN_LINE_LENGTH_ENV: str(masks.min_line_length),
    }
    return render("shell", resolution.env()) + render("shell", settings)


def _same_file(fd_a: int, fd_b: int) -> bool:
    try:
        a, b = os.fstat(fd_a), os.fstat(fd_b)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _refuse_log_stdout() -> None:
    """Refuse a stdout that is a terminal or the job log (stdout and stderr are one pipe there)."""
    if os.isatty(1) or _same_file(1, 2):
        raise ConfigError(
            "--format gitlab writes secret values; stdout here is a terminal or the job log",
            hint='capture it in the job\'s shell: out="$(jobsecrets export --format gitlab)" '
            '&& eval "$out", or write a 0600 file with -o FILE (the GitLab include does this for you)',
        )


def _write_private(path: str, text: str) -> None:
    # Only a regular file of ours, never a device, FIFO, symlink or another user's file.
    write_private(path, text)


def export(
    resolution: Resolution, masks: MaskList, env: Mapping[str, str], output: str | None
) -> None:
    """Write the job's variables as shell ``export`` lines for the GitLab include to ``eval``."""
    if output is None:
        _refuse_log_stdout()
    text = render_gitlab(resolution, masks, env)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        _write_private(output, text)
    names = [var.name for var in resolution.variables]
    listed = ", ".join(names) if names else "none"
    print(f"jobsecrets: {len(names)} variable(s) for this job: {listed}", file=sys.stderr)
