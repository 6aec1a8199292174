"""The jobsecrets spec(s) an import writes, checked by the real spec parser.

Every job's variables go into one spec when their names agree; two jobs that give one name
different values (staging and production both set ``DB_PASSWORD``) get separate spec files
(``jobsecrets.yml``, ``jobsecrets-2.yml``...), and each rewritten job names its own.
"""

from __future__ import annotations

__all__ = ["SpecFile", "build_specs"]

import json
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import ConfigError, Problem
from ..names import check_name
from ..spec import parse_spec
from .model import Backend, ImportError_, Job, Note, Secret


@dataclass
class SpecFile:
    """One spec to write: its path, its entries, and the jobs that use it."""

    path: str
    secrets: dict[str, Secret] = field(default_factory=dict)
    jobs: list[Job] = field(default_factory=list)
    text: str = ""


def check_duplicates(job: Job) -> None:
    """A variable set twice in one job (two steps, or one step twice) is refused: exit 2."""
    seen: dict[str, Secret] = {}
    problems = []
    for secret in job.secrets:
        invalid = check_name(secret.name, (secret.name,))  # syntax only: allow_names lifts denial
        if invalid:
            problems.append(Problem(invalid, secret.where.file, secret.where.line))
            continue
        first = seen.get(secret.name)
        if first is not None:
            problems.append(
                Problem(
                    f"job {job.name!r}: variable {secret.name} is set again (first at line "
                    f"{first.where.line}); the later step would overwrite it: rename one "
                    "('| NAME' or an alias)",
                    secret.where.file,
                    secret.where.line,
                )
            )
        else:
            seen[secret.name] = secret
    if problems:
        raise ImportError_.many(problems)


def _spec_path(base: str, index: int) -> str:
    if index == 0:
        return base
    stem, ext = os.path.splitext(base)
    return f"{stem}-{index + 1}{ext or '.yml'}"


def build_specs(
    jobs: list[Job], base: str, notes: list[Note], sources: list[str]
) -> list[SpecFile]:
    """Group jobs into specs (as few as names allow), name backends, write and validate the text."""
    specs: list[SpecFile] = []
    for job in jobs:
        check_duplicates(job)
        for spec in specs:
            if all(
                s.name not in spec.secrets or spec.secrets[s.name].same_target(s)
                for s in job.secrets
            ):
                break
        else:
            spec = SpecFile(_spec_path(base, len(specs)))
            specs.append(spec)
        for secret in job.secrets:
            spec.secrets.setdefault(secret.name, secret)
        spec.jobs.append(job)
    for spec in specs:
        spec.text = _render(spec, notes, sources)
        try:
            parse_spec(spec.text, spec.path)
        except ConfigError as error:
            raise ConfigError(
                f"the spec written for {spec.path} does not validate (a bug of the import, "
                "or input it should have refused)",
                error.problems,
            ) from None
    return specs


def _backend_names(secrets: list[Secret]) -> dict[Backend, str]:
    names: dict[Backend, str] = {}
    counts: dict[str, int] = {}
    for secret in secrets:
        if secret.backend in names:
            continue
        counts[secret.backend.type] = counts.get(secret.backend.type, 0) + 1
        count = counts[secret.backend.type]
        names[secret.backend] = (
            secret.backend.type if count == 1 else f"{secret.backend.type}{count}"
        )
    return names


def _flow(value: Any) -> str:
    """A value as one line of YAML (JSON is YAML; strings quoted only when they need it)."""
    if isinstance(value, str):
        dumped = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
        return dumped[: -len("...")].strip() if dumped.endswith("...") else dumped
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_flow(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _render(spec: SpecFile, notes: list[Note], sources: list[str]) -> str:
    secrets = list(spec.secrets.values())
    backends = _backend_names(secrets)
    lines = [
        f"# Written by `jobsecrets import` from {', '.join(sources)}.",
        "# Each variable names the file:line it came from; the import's report lists what",
        "# could not be carried over. Check it with `jobsecrets plan` (and `plan --check`).",
        "version: 1",
        "backends:",
    ]
    for backend, name in backends.items():
        lines.append(f"  {name}:")
        lines.append(f"    type: {backend.type}")
        for key, value in backend.as_dict().items():
            lines.append(f"    {key}: {_flow(value)}")
    allow: list[str] = []
    body: list[str] = []
    for secret in secrets:
        problem = check_name(secret.name, ())
        if problem and check_name(secret.name, (secret.name,)) is None:
            allow.append(secret.name)  # the old tool set it: keep it, but say so
            notes.append(
                Note(
                    secret.where,
                    f"{secret.name} is a name jobsecrets refuses by default ({problem}); "
                    "listed under allow_names to keep it",
                )
            )
        ref = f"{backends[secret.backend]}:{secret.path}" + (
            f"#{secret.field}" if secret.field is not None else ""
        )
        long: dict[str, Any] = {}
        if secret.file:
            long["file"] = True
        if secret.optional:
            long["optional"] = True
        if secret.name_prefix:
            long["name_prefix"] = secret.name_prefix
        if secret.flatten:
            long["flatten"] = True
        long.update(secret.options)
        value = _flow(ref) if not long else _flow({"ref": ref, **long})
        body.append(f"  {_flow(secret.name)}: {value}  # {secret.where}")
    if allow:
        lines.append("allow_names:")
        lines.extend(f"  - {_flow(name)}" for name in allow)
    lines.append("secrets:")
    lines.extend(body)
    return "\n".join(lines) + "\n"
