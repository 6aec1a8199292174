"""Round-trip YAML for workflow and GitLab files: read with lines, write back keeping the rest.

ruamel.yaml keeps comments, key order, quoting and block styles of what it does not touch, so
``--write`` changes only the steps and jobs it rewrites. It is imported here only, and this
module only by the ``import`` command: start-up of the other commands stays light.
"""

from __future__ import annotations

__all__ = [
    "Document",
    "key_line",
    "last_comment",
    "load",
    "move_trailing_comment",
    "node_line",
    "value_line",
]

import io
import itertools
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedBase, CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

from .linematch import align
from .model import ImportError_, Where


@dataclass
class Document:
    """A loaded file: its text, its lines, the round-trip data and how to dump it again."""

    path: str
    text: str
    data: Any
    indent: int  # of mappings
    sequence_indent: int  # of a sequence's items' content
    sequence_offset: int  # of the dash

    def where(self, line: int | None) -> Where:
        """A place in this file."""
        return Where(self.path, line)

    def find_line(self, start: int | None, needle: str) -> int | None:
        """The first line from ``start`` (1-based) that contains ``needle``; else ``start``.

        Entries inside a block or folded scalar (``secrets: |``) have no line of their own in
        the YAML tree: they are found in the text, from the line where the scalar starts.
        """
        if start is None or not needle:
            return start
        lines = self.text.splitlines()
        needle = " ".join(needle.split())
        for number in range(start, len(lines) + 1):
            if needle in " ".join(lines[number - 1].split()):
                return number
        return start

    def dump(self) -> str:
        """The data as YAML again, in the file's own indentation."""
        yaml = _yaml()
        yaml.indent(mapping=self.indent, sequence=self.sequence_indent, offset=self.sequence_offset)
        out = io.StringIO()
        yaml.dump(self.data, out)
        return _restore_layout(self.text, out.getvalue())

    def use_sequence_style_of(self, parent: Any, key: Any) -> None:
        """Dump sequences as the one at ``parent[key]`` is written (``steps:`` of a rewritten
        step): ruamel has one style per file, and a file may mix ``- `` under or beside its key."""
        node = parent.get(key) if isinstance(parent, CommentedMap) else None
        if not isinstance(node, CommentedSeq) or not node or not isinstance(node[0], CommentedBase):
            return
        try:
            key_col = int(parent.lc.key(key)[1])
            item_col = int(node[0].lc.col)  # the first key of the first item, after "- "
            dash_col = self.text.splitlines()[int(node.lc.line)].index("-")
        except (KeyError, TypeError, AttributeError, IndexError, ValueError):
            return
        if item_col > dash_col > key_col - 1:
            self.sequence_offset = dash_col - key_col
            self.sequence_indent = item_col - key_col


def _restore_layout(original: str, dumped: str) -> str:
    """Undo ruamel's re-indentation of lines it did not change, if the data stays the same.

    ruamel writes one indentation style per file; a file that mixes styles would otherwise see
    unrelated lines move. A line whose text is unchanged gets its original indentation back; the
    result is used only when it loads to exactly the data ruamel wrote.
    """
    old, new = original.splitlines(keepends=True), dumped.splitlines(keepends=True)
    restored: list[str] = []
    changed = False
    # Lines are matched on their text without indentation: a re-indented line is the same line.
    for block in align([line.strip() for line in old], [line.strip() for line in new]):
        before, after = old[block.a1 : block.a2], new[block.b1 : block.b2]
        if block.same or len(before) == len(after):
            for was, now in zip(before, after, strict=True):
                same_text = was.strip() == now.strip() and was != now
                restored.append(was if same_text else now)
                changed = changed or same_text
        else:
            restored.extend(after)
    if not changed:
        return dumped
    text = "".join(restored)
    try:
        if _plain(_yaml().load(text)) == _plain(_yaml().load(dumped)):
            return text
    except YAMLError:
        pass
    return dumped


def _plain(node: Any) -> Any:
    """Data without ruamel's types (tags kept), to compare two loads."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        tag = getattr(getattr(node, "tag", None), "value", None)
        return [tag, [_plain(v) for v in node]]
    return node if isinstance(node, (int, float, bool)) or node is None else str(node)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line the user wrote
    return yaml


def load(path: str, text: str) -> Document:
    """Parse ``text`` (the file ``path``); a YAML error is an ImportError_ with file:line."""
    try:
        _data, sequence_indent, sequence_offset = load_yaml_guess_indent(text)
        # load_yaml_guess_indent uses its own loader; load again with ours (quotes kept).
        data = _yaml().load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        context = ""
        if error.context and error.context_mark is not None and error.problem_mark is not None:
            context = f" ({error.context} that starts at line {error.context_mark.line + 1})"
        raise ImportError_.at(
            Where(path, line), f"not valid YAML: {error.problem or error.context}{context}"
        ) from None
    except YAMLError as error:
        raise ImportError_.at(Where(path), f"not valid YAML: {type(error).__name__}") from None
    except RecursionError:
        # ruamel's composer recurses per level: [[[...]]] 500 deep was an internal error.
        raise ImportError_.at(Where(path), "not valid YAML here: nested too deeply") from None
    return Document(
        path, text, data, _mapping_indent(text), sequence_indent or 2, sequence_offset or 0
    )


def _mapping_indent(text: str) -> int:
    """The indentation of a nested mapping (ruamel guesses only the sequences'): the first
    key under a top-level key that holds a block mapping."""
    lines = [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    for line, following in itertools.pairwise(lines):
        if not line.startswith((" ", "-")) and line.rstrip().endswith(":"):
            stripped = following.lstrip(" ")
            width = len(following) - len(stripped)
            if width and not stripped.startswith("-"):
                return width
    return 2


def last_comment(node: Any) -> Any:
    """The comment token after the last entry of ``node`` (deepest last mapping), or None."""
    found = None
    while isinstance(node, CommentedMap) and node:
        last = list(node)[-1]
        item = node.ca.items.get(last)
        if item is not None and len(item) > 2 and item[2] is not None:
            found = item[2]
        node = node[last]
    return found


def move_trailing_comment(old: Any, new_parent: Any, token: Any = None) -> None:
    """Keep the comment (or blank lines) that followed ``old``, a subtree being replaced or removed.

    ruamel hangs what follows a mapping on its deepest last key; once that key is gone, the
    comment must hang on ``new_parent``'s deepest last key, or the lines after it lose it.
    ``token``: the comment, when it was taken (:func:`_last_comment`) before ``old`` changed.
    """
    token = token if token is not None else last_comment(old)
    if token is None or not isinstance(new_parent, CommentedMap) or not new_parent:
        return
    node: CommentedMap = new_parent
    while isinstance(node[list(node)[-1]], CommentedMap) and node[list(node)[-1]]:
        node = node[list(node)[-1]]
    value = str(token.value)
    if not value.startswith("\n"):
        # After a block scalar (`secrets: |`) the comment starts on its own line; after a
        # plain value it would become an end-of-line comment.
        value = "\n" + " " * token.column + value
    token.value = value
    node.ca.items[list(node)[-1]] = [None, None, token, None]


def key_line(node: Any, key: Any) -> int | None:
    """The 1-based line of ``key`` in the mapping ``node`` (None when unknown)."""
    if isinstance(node, CommentedBase):
        try:
            return int(node.lc.key(key)[0]) + 1
        except (KeyError, TypeError, AttributeError):
            return None
    return None


def value_line(node: Any, key: Any) -> int | None:
    """The 1-based line where the value of ``key`` starts in the mapping ``node``."""
    if isinstance(node, CommentedBase):
        try:
            return int(node.lc.value(key)[0]) + 1
        except (KeyError, TypeError, AttributeError):
            return None
    return None


def node_line(node: Any) -> int | None:
    """The 1-based line where a mapping or sequence starts."""
    if isinstance(node, CommentedBase):
        try:
            return int(node.lc.line) + 1
        except (TypeError, AttributeError):
            return None
    return None
