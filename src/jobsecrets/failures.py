"""Many failed variables, one short paragraph: one line per distinct cause, variables grouped.

A store that is down fails every variable it holds for the same reason; twenty copies of that
reason hide the one line that matters. Errors built with :meth:`JobSecretsError.about` carry
their subject (the variables) and cause apart; errors with the same type and cause become one
line naming their subjects, at most :data:`SHOWN` of them.
"""

from __future__ import annotations

__all__ = ["combine"]

from .errors import JobSecretsError

#: Subjects named per cause; the rest are counted.
SHOWN = 6


def _subjects(items: list[str]) -> str:
    # "DB_USER (vault:secret/app#user)" -> "DB_USER": the reference is in the spec; the line
    # is about the cause.
    items = [item.split(" (", 1)[0] for item in items]
    shown = ", ".join(items[:SHOWN])
    if len(items) > SHOWN:
        shown += f" and {len(items) - SHOWN} more"
    return shown


def combine(errors: list[JobSecretsError]) -> JobSecretsError:
    """One error for all of ``errors``; its type, exit code and hint are the first error's."""
    if len(errors) == 1:
        return errors[0]
    groups: dict[tuple[type, str], list[JobSecretsError]] = {}
    for error in errors:
        key = (type(error), error.cause or error.message)
        groups.setdefault(key, []).append(error)
    first = errors[0]
    if len(groups) == 1 and not first.cause:
        # The same words for every variable (an invalid token fails every read alike): once.
        return first
    if len(groups) == 1 and first.cause:
        subjects = [e.subject for e in errors]
        combined = type(first)(
            f"{len(errors)} variables failed ({_subjects(subjects)}): {first.cause}"
        )
    else:
        lines = []
        for (_kind, cause), members in groups.items():
            if members[0].cause:
                lines.append(f"  - {_subjects([m.subject for m in members])}: {cause}")
            else:
                lines.append(f"  - {cause}")  # identical messages: said once
        combined = type(first)(f"{len(errors)} variables failed:\n" + "\n".join(lines))
    combined.hint = first.hint
    return combined
