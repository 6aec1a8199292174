"""Whole numbers written in text from outside (a spec, a store, the environment, a state file)."""

from __future__ import annotations

__all__ = ["is_digits"]


def is_digits(text: str, max_digits: int = 18) -> bool:
    """True for 1 to ``max_digits`` ASCII digits: text ``int()`` turns into a small number.

    ``str.isdigit()`` alone is also true of "²", which ``int()`` refuses (a ValueError where a
    number was checked for), and of other scripts' digits; and ``int()`` of more than 4,300
    digits raises.
    """
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()
