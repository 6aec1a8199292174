"""What an import produces: secrets, backends, notes and the jobs that ask for them.

Plain data, no YAML library: every source module (vault-action, the AWS action, GitLab, vals)
fills these, the spec writer and the report read them.
"""

from __future__ import annotations

__all__ = ["Backend", "ImportError_", "Job", "Note", "Secret", "Where"]

from dataclasses import dataclass
from dataclasses import field as _field
from typing import Any

from ..errors import ConfigError, Problem


@dataclass(frozen=True)
class Where:
    """A place in an input file (1-based line)."""

    file: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class Note:
    """Something the import could not carry over as it was, and why (the report's lines)."""

    where: Where
    message: str
    level: str = "warning"  # warning: carried over differently | error: not carried over


@dataclass(frozen=True)
class Backend:
    """A backend the spec needs: its type and options (``name`` is chosen by the spec writer)."""

    type: str
    options: tuple[tuple[str, Any], ...] = ()

    @staticmethod
    def of(type_name: str, options: dict[str, Any]) -> Backend:
        """A hashable backend from an options mapping (nested mappings kept as sorted tuples)."""

        def freeze(value: Any) -> Any:
            if isinstance(value, dict):
                return tuple(sorted((k, freeze(v)) for k, v in value.items()))
            return value

        return Backend(type_name, tuple(sorted((k, freeze(v)) for k, v in options.items())))

    def as_dict(self) -> dict[str, Any]:
        """The options as a plain mapping again."""

        def thaw(value: Any) -> Any:
            if isinstance(value, tuple) and all(
                isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in value
            ):
                return {k: thaw(v) for k, v in value}
            return value

        return {k: thaw(v) for k, v in self.options}


@dataclass
class Secret:
    """One entry of the spec's ``secrets:``. ``ref`` has no backend name yet: ``PATH[#FIELD]``."""

    name: str
    backend: Backend
    path: str
    field: str | None
    where: Where
    file: bool = False
    optional: bool = False
    name_prefix: str = ""
    flatten: bool = False
    options: dict[str, Any] = _field(default_factory=dict)

    def same_target(self, other: Secret) -> bool:
        """True when two entries of one name would give the same value the same way."""
        return (
            self.backend == other.backend
            and self.path == other.path
            and self.field == other.field
            and self.file == other.file
            and self.optional == other.optional
            and self.name_prefix == other.name_prefix
            and self.flatten == other.flatten
            and self.options == other.options
        )


@dataclass
class Job:
    """One CI job (GitHub job or GitLab job) and the secrets it asks for, in order.

    ``groups`` holds one list per source step (GitHub: one inject step replaces each); GitLab
    jobs have a single group.
    """

    file: str
    name: str
    where: Where
    groups: list[list[Secret]] = _field(default_factory=list)

    @property
    def secrets(self) -> list[Secret]:
        """Every secret of the job, in order."""
        return [s for group in self.groups for s in group]


class ImportError_(ConfigError):
    """Input the import cannot read at all (not YAML, an unknown input, a duplicate name): exit 2."""

    @classmethod
    def at(cls, where: Where, message: str, hint: str = "") -> ImportError_:
        """One problem at one place."""
        return cls(f"{where}: {message}", hint=hint)

    @classmethod
    def many(cls, problems: list[Problem]) -> ImportError_:
        """Every problem found, each with file:line; nothing was written."""
        noun = "problem" if len(problems) == 1 else "problems"
        return cls(f"import: {len(problems)} {noun} in the input; nothing was written", problems)
