"""``jobsecrets import FILE...``: read, convert, then print (or write) the spec, the diff, the report.

Reads no secret value and needs no network: only the files named. Nothing is written unless
``--write`` (the spec and the rewritten files) or ``--spec-out`` (the spec) asks for it, and
then only once every file converted without an error.
"""

from __future__ import annotations

__all__ = ["ImportResult", "convert", "run_import"]

import difflib
import os
import stat
from dataclasses import dataclass, field

import click

from ..errors import ConfigError, Problem
from ..safe_files import read_regular, replace_with
from .gitlab import read_gitlab, rewrite_gitlab
from .model import ImportError_, Job, Note, Where
from .specwriter import SpecFile, build_specs
from .vals import read_vals
from .workflow import read_workflow, rewrite_steps
from .yamlio import Document, load

DEFAULT_ACTION = "jobsecrets/jobsecrets/actions/inject@v1"
#: The largest file ``import`` reads (a workflow or CI file is a few KiB).
_MAX_INPUT = 8 << 20
DEFAULT_GITLAB_INCLUDE = "gitlab/jobsecrets.yml"


@dataclass
class ImportResult:
    """Everything an import produced."""

    specs: list[SpecFile] = field(default_factory=list)
    rewritten: dict[str, tuple[str, str]] = field(default_factory=dict)  # path -> (old, new)
    notes: list[Note] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)


def _kind(path: str, text: str, doc: Document | None) -> str:
    data = doc.data if doc is not None else None
    if isinstance(data, dict) and (
        isinstance(data.get("jobs"), dict)
        or (isinstance(data.get("runs"), dict) and data["runs"].get("using") == "composite")
    ):
        return "github"
    if isinstance(data, dict) and any(
        isinstance(v, dict) and ({"script", "secrets", "extends", "trigger"} & set(v))
        for v in data.values()
    ):
        return "gitlab"
    if "ref+" in text:
        return "vals"
    raise ImportError_.at(
        Where(path, 1),
        "not a GitHub workflow (jobs:), a GitLab CI file (jobs with script:) or a file of vals "
        "references (ref+vault://...)",
    )


def _read(path: str) -> str:
    if not os.path.lexists(path):
        raise ImportError_.at(Where(path), "file not found")
    # Bounded and non-blocking: `import /dev/zero` was read without end, a FIFO blocked.
    raw = read_regular(path, _MAX_INPUT)
    if raw is None:
        raise ImportError_.at(
            Where(path),
            f"cannot read: not a readable regular file of at most {_MAX_INPUT >> 20} MiB",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ImportError_.at(Where(path), "cannot read: not valid UTF-8") from None
    # As open() in text mode read it: universal newlines.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def convert(
    paths: list[str],
    *,
    spec_out: str = "jobsecrets.yml",
    action: str = DEFAULT_ACTION,
    gitlab_include: str = DEFAULT_GITLAB_INCLUDE,
) -> ImportResult:
    """Convert ``paths``; raises ImportError_ (exit 2) for input it cannot read."""
    result = ImportResult()
    loaded: list[tuple[Document, str, object]] = []
    for path in paths:
        text = _read(path)
        doc: Document | None
        try:
            doc = load(path, text)
        except ImportError_:
            if "ref+" in text and not path.endswith((".yml", ".yaml")):
                doc = None  # a dotenv file of vals references is not YAML
            else:
                raise
        kind = _kind(path, text, doc)
        if kind == "github":
            assert doc is not None
            jobs, notes, rewrites = read_workflow(doc)
            loaded.append((doc, kind, rewrites))
        elif kind == "gitlab":
            assert doc is not None
            jobs, notes, nodes = read_gitlab(doc)
            loaded.append((doc, kind, nodes))
        else:
            jobs, notes = read_vals(path, text, doc.data if doc is not None else None)
        result.jobs.extend(jobs)
        result.notes.extend(notes)
    if not result.jobs:
        raise ConfigError(
            "nothing to import: no hashicorp/vault-action or aws-secretsmanager-get-secrets "
            "step, no GitLab secrets:, no vals reference that could be carried over",
            [Problem(n.message, n.where.file, n.where.line) for n in _unique(result.notes)],
        )
    result.specs = build_specs(result.jobs, spec_out, result.notes, paths)
    config_of = {(job.file, job.name): spec.path for spec in result.specs for job in spec.jobs}
    for doc, kind, items in loaded:
        configs = {name: cfg for (file, name), cfg in config_of.items() if file == doc.path}
        if kind == "github":
            rewrite_steps(doc, items, action, configs)  # type: ignore[arg-type]
        else:
            result.notes.extend(rewrite_gitlab(doc, items, gitlab_include, configs))  # type: ignore[arg-type]
            if items:
                result.notes.append(
                    Note(
                        doc.where(1),
                        f"include {gitlab_include!r} added: copy gitlab/jobsecrets.yml from "
                        "jobsecrets there, or pass --gitlab-include with your catalog component",
                        "info",
                    )
                )
        new = doc.dump()
        if new != doc.text:
            result.rewritten[doc.path] = (doc.text, new)
    result.notes = _unique(result.notes)
    return result


def _unique(notes: list[Note]) -> list[Note]:
    seen: set[tuple[str, int | None, str]] = set()
    out = []
    for note in notes:
        key = (note.where.file, note.where.line, note.message)
        if key not in seen:
            seen.add(key)
            out.append(note)
    return sorted(out, key=lambda n: (n.where.file, n.where.line or 0))


def report_text(notes: list[Note]) -> str:
    """The report: one line per note, ``file:line: level: message``."""
    if not notes:
        return "report: everything was carried over\n"
    lines = [f"report: {len(notes)} note(s)"]
    lines.extend(f"{note.where}: {note.level}: {note.message}" for note in notes)
    return "\n".join(lines) + "\n"


def diff_text(rewritten: dict[str, tuple[str, str]]) -> str:
    """A unified diff of every rewritten file."""
    chunks: list[str] = []
    for path, (old, new) in rewritten.items():
        chunks.extend(
            difflib.unified_diff(
                old.splitlines(keepends=True),
                new.splitlines(keepends=True),
                fromfile=f"a/{path}",
                tofile=f"b/{path}",
            )
        )
    return "".join(chunks)


def _check_replaceable(path: str, hint: str = "") -> None:
    """Refuse a path that is there but no regular file: renamed over, it would be lost."""
    try:
        existing = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(existing.st_mode):
        # A device node (run as root: --spec-out /dev/null --force) or a link would be
        # replaced by our file.
        raise ConfigError(
            f"refusing to replace {path}: not a regular file",
            hint=hint or "pass --spec-out with a new file or a regular file of your own",
        )


def _write_file(path: str, text: str, *, mode: int | None = None) -> None:
    """Replace ``path`` atomically with a new file of ours (``mode``: the old file's, kept).

    The temporary file is created new in the same directory (``mkstemp``: never an existing
    path, never through a symlink someone planted), so the mode is only ever set on our file.
    """
    _check_replaceable(path)
    if mode is None:
        # A new file gets what open() would give it (mkstemp's is 0600): 0666 less the umask.
        umask = os.umask(0o022)
        os.umask(umask)
        mode = 0o666 & ~umask
    replace_with(path, text.encode("utf-8"), mode, prefix=".jobsecrets-import-")


def run_import(
    paths: list[str],
    *,
    write: bool,
    spec_out: str | None,
    action: str,
    gitlab_include: str,
    force: bool,
) -> None:
    """The ``import`` command."""
    result = convert(
        paths, spec_out=spec_out or "jobsecrets.yml", action=action, gitlab_include=gitlab_include
    )
    if write or spec_out:
        # Every target is checked before the first is written: a refusal halfway (a workflow
        # that is a symlink) left a spec written for steps that were never rewritten.
        for spec in result.specs:
            if os.path.lexists(spec.path) and not force:
                try:
                    same = _read(spec.path) == spec.text
                except ImportError_:  # a device, a FIFO, a directory: not ours to replace
                    same = False
                if not same:
                    raise ConfigError(
                        f"{spec.path} exists: not overwritten",
                        hint="pass --spec-out PATH for another file, or --force",
                    )
            _check_replaceable(spec.path)
        for path in result.rewritten if write else ():
            _check_replaceable(
                path, hint="import the file it points to, which --write can then rewrite"
            )
        for spec in result.specs:
            _write_file(spec.path, spec.text)
            click.echo(f"wrote {spec.path} ({len(spec.secrets)} variable(s))")
    else:
        for spec in result.specs:
            click.echo(f"# ---- {spec.path} ----")
            click.echo(spec.text, nl=False)
    if write:
        for path, (_old, new) in result.rewritten.items():
            mode = os.stat(path).st_mode & 0o777
            _write_file(path, new, mode=mode)
            click.echo(f"rewrote {path}")
    elif result.rewritten:
        click.echo(diff_text(result.rewritten), nl=False)
    click.echo(report_text(result.notes), nl=False)
