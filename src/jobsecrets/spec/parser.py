"""The spec file (``jobsecrets.yml``) parsed into :mod:`~jobsecrets.spec.model` dataclasses.

The file is validated as a whole: every problem is collected with its file and line and raised as one
:class:`~jobsecrets.errors.ConfigError` (exit code 2) before anything is fetched. Every section is parsed
here (or by the section's own module beside this one: ``policy``, ``identity``), once.
"""

from __future__ import annotations

__all__ = ["ENCODINGS", "SECRET_KEYS", "SPEC_VERSION", "TOP_KEYS", "load_spec", "parse_spec"]

import os
import re
from typing import Any

import yaml

from ..backends.registry import available_types, get_backend_class
from ..durations import parse_duration
from ..errors import ConfigError, Problem
from ..fieldsets import is_field_set
from ..names import CONTROL_CHARS, check_name
from ..refs import Reference, parse_reference
from .identity import IdentityConfig
from .limits import clip, decode_spec, loader_class, read_spec_bytes, scan_limits
from .model import BackendSpec, RedactSettings, SecretSpec, Settings, Spec
from .policy import Policy, parse_policy
from .references import reference_values

SPEC_VERSION = 1
#: Problems listed in one error (the count says how many there were).
MAX_PROBLEMS = 50
TOP_KEYS = {
    "version",
    "backends",
    "secrets",
    "allow_names",
    "identity",
    "redact",
    "settings",
    "policy",
}
SECRET_KEYS = {"ref", "file", "optional", "params", "encoding", "name_prefix", "flatten", "policy"}
ENCODINGS = {"utf-8", "base64"}


#: ` #word` after a value: a comment whose text starts right after '#' (`#password`).
_FIELD_COMMENT = re.compile(r"^[ \t]+#(\S+)")


def _yaml_problem(error: yaml.MarkedYAMLError, text: str = "") -> str:
    """PyYAML's words, except where they send people the wrong way (a tab).

    The pure loader names the tab in its words; the C loader only says "found character that
    cannot start any token", so the line itself is looked at too.
    """
    mark = error.problem_mark
    lines = text.splitlines()
    at_tab = (
        mark is not None and mark.line < len(lines) and "\t" in lines[mark.line][: mark.column + 1]
    )
    if at_tab or "'\\t'" in str(error.problem) or "\t" in str(error.problem):
        return (
            "YAML syntax error: a tab character; YAML indents with spaces only "
            "(replace the tab on this line with spaces)"
        )
    return f"YAML syntax error: {error.problem}"


def load_spec(path: str | os.PathLike[str]) -> Spec:
    """Read and validate the spec file at ``path``."""
    path = os.fspath(path)
    if not path:
        # `-c "$SPEC"` with an empty variable: say so, not "file not found: " with no name.
        raise ConfigError(
            "-c/--config is empty: no spec file named",
            hint="pass -c/--config PATH, or leave it out for jobsecrets.yml",
        )
    try:
        # Bounded read, bad bytes reported by line (spec_limits: a spec cannot exhaust us).
        text = decode_spec(read_spec_bytes(path), path)
    except FileNotFoundError:
        raise ConfigError(
            f"spec file not found: {path}",
            [Problem("file not found", path)],
            hint="create jobsecrets.yml or pass -c/--config PATH",
        ) from None
    except OSError as error:
        raise ConfigError(f"cannot read spec file {path}: {error.strerror}") from None
    return parse_spec(text, path)


def parse_spec(text: str, path: str = "<spec>") -> Spec:
    """Parse spec text; raises ConfigError listing every problem."""
    return _Parser(text, path).parse()


def _line(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


class _Parser:
    """Walks the YAML node tree so every problem can carry its line."""

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.problems: list[Problem] = []
        self.loader: Any = None
        self._lines: list[str] | None = None

    @property
    def lines(self) -> list[str]:
        """The text's lines, split once: looked up per entry, splitting each time was quadratic
        (1.2 s for 5,000 entries without a ``#field``)."""
        if self._lines is None:
            self._lines = self.text.splitlines()
        return self._lines

    def problem(self, message: str, node: yaml.Node | None = None) -> None:
        # Messages quote values and keys: clipped, so none embeds an unbounded one.
        self.problems.append(Problem(clip(message), self.path, _line(node)))

    def value(self, node: yaml.Node) -> Any:
        assert self.loader is not None
        self._duplicate_keys(node)
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as error:
            self.problem(f"invalid value: {getattr(error, 'problem', error)}", node)
            return None
        except ValueError:
            # int() of a 5,000-digit number: Python refuses it (int_max_str_digits).
            self.problem("invalid value: a number too large to read", node)
            return None

    def _duplicate_keys(self, node: yaml.Node) -> None:
        """Report repeated keys in nested mappings (``auth``, ``params``, ``policy``...).

        PyYAML keeps the last one silently: ``{method: jwt, method: token}`` would sign in with a
        token when the line that was read first says jwt.
        """
        stack, visited = [node], set()
        while stack:
            current = stack.pop()
            if id(current) in visited:  # aliases can share, even nest, nodes
                continue
            visited.add(id(current))
            if isinstance(current, yaml.MappingNode):
                seen: dict[str, int | None] = {}
                for key_node, value_node in current.value:
                    if (
                        isinstance(key_node, yaml.ScalarNode)
                        and key_node.tag != "tag:yaml.org,2002:merge"
                    ):
                        key = str(key_node.value)
                        if key in seen:
                            self.problem(
                                f"duplicate key {key!r} (first at line {seen[key]})", key_node
                            )
                        seen.setdefault(key, _line(key_node))
                    stack.extend((key_node, value_node))
            elif isinstance(current, yaml.SequenceNode):
                stack.extend(current.value)

    def mapping(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node, yaml.Node]] | None:
        """The (key, key node, value node) pairs of a mapping; duplicates and odd keys reported."""
        if not isinstance(node, yaml.MappingNode):
            self.problem(f"{what} must be a mapping", node)
            return None
        seen: dict[str, int | None] = {}
        pairs: list[tuple[str, yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(f"{what}: keys must be plain strings", key_node)
                continue
            key = str(key_node.value)
            if key in seen:
                self.problem(f"{what}: duplicate key {key!r} (first at line {seen[key]})", key_node)
                continue
            seen[key] = _line(key_node)
            pairs.append((key, key_node, value_node))
        return pairs

    def _field_in_comment(self, node: yaml.Node) -> str:
        """The word of a ``#word`` comment right after a plain scalar on its line, else ``""``."""
        # A plain scalar's style is None for the pure loader and "" for the C loader.
        if not isinstance(node, yaml.ScalarNode) or node.style:
            return ""
        mark = node.end_mark
        lines = self.lines
        if mark is None or mark.line >= len(lines):
            return ""
        found = _FIELD_COMMENT.match(lines[mark.line][mark.column :])
        return found.group(1) if found else ""

    def fail(self) -> ConfigError:
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        shown = self.problems[:MAX_PROBLEMS]
        if count > MAX_PROBLEMS:
            # A generated spec can hold 50,000 bad entries: the first ones say what to fix.
            shown.append(Problem(f"... and {count - MAX_PROBLEMS} more problems", self.path))
        return ConfigError(
            f"{self.path}: {count} {noun} in the spec file; nothing was fetched", shown
        )

    def parse(self) -> Spec:
        # Depth, alias expansion and value sizes are bounded before anything is composed.
        scan_limits(self.text, self.path)
        try:
            self.loader = loader_class()(self.text)
            root = self.loader.get_single_node()
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            line = mark.line + 1 if mark is not None else None
            self.problem(_yaml_problem(error, self.text))
            self.problems[-1] = Problem(self.problems[-1].message, self.path, line)
            raise self.fail() from None
        except yaml.reader.ReaderError as error:
            # A character YAML does not allow (a control character): say on which line.
            line = self.text.count("\n", 0, max(0, error.position)) + 1
            char = error.character
            code = ord(char) if isinstance(char, str) else int(char)
            self.problems.append(
                Problem(f"character U+{code:04X} is not allowed in YAML", self.path, line)
            )
            raise self.fail() from None
        except yaml.YAMLError as error:
            self.problem(f"YAML error: {error}")
            raise self.fail() from None
        if root is None:
            self.problem("the spec file is empty: it needs 'version: 1' and 'secrets:'")
            raise self.fail()
        top = self.mapping(root, "the spec file")
        if top is None:
            raise self.fail()
        nodes = {key: (key_node, value_node) for key, key_node, value_node in top}
        for key, key_node, _ in top:
            if key not in TOP_KEYS:
                self.problem(
                    f"unknown top-level key {key!r} (known: {', '.join(sorted(TOP_KEYS))})",
                    key_node,
                )

        version = self._version(nodes.get("version"), root)
        allow_names = self._allow_names(nodes.get("allow_names"))
        backends = self._backends(nodes.get("backends"))
        secrets = self._secrets(nodes.get("secrets"), root, backends, allow_names)
        identity = self._identity(nodes.get("identity"))
        redact = self._redact(nodes.get("redact"))
        settings = self._settings(nodes.get("settings"))
        policy = self._policy(nodes.get("policy"))
        if self.problems:
            raise self.fail()
        return Spec(
            path=self.path,
            version=version,
            backends=backends,
            secrets=tuple(secrets),
            allow_names=tuple(allow_names),
            identity=identity,
            redact=redact,
            settings=settings,
            policy=policy,
        )

    # ---- sections -----------------------------------------------------------------------

    def _version(self, entry: tuple[yaml.Node, yaml.Node] | None, root: yaml.Node) -> int:
        if entry is None:
            self.problem("missing 'version: 1'", root)
            return SPEC_VERSION
        value = self.value(entry[1])
        if value != SPEC_VERSION or isinstance(value, bool):
            self.problem(
                f"unsupported version {value!r}: this jobsecrets reads version 1", entry[1]
            )
        return SPEC_VERSION

    def _allow_names(self, entry: tuple[yaml.Node, yaml.Node] | None) -> list[str]:
        if entry is None:
            return []
        value = self.value(entry[1])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.problem("'allow_names' must be a list of names or patterns (e.g. LD_*)", entry[1])
            return []
        return value

    def _backends(self, entry: tuple[yaml.Node, yaml.Node] | None) -> dict[str, BackendSpec]:
        backends: dict[str, BackendSpec] = {}
        if entry is None:
            return backends
        pairs = self.mapping(entry[1], "'backends'")
        for name, key_node, value_node in pairs or []:
            if (
                not name
                or not name.replace("_", "a").replace("-", "a").isalnum()
                or not name[0].isalpha()
            ):
                self.problem(
                    f"backend name {name!r} must start with a letter (letters, digits, _ or -)",
                    key_node,
                )
                continue
            options_pairs = self.mapping(value_node, f"backend {name!r}")
            if options_pairs is None:
                continue
            options: dict[str, Any] = {}
            type_name: str | None = None
            type_node: yaml.Node = key_node
            for key, opt_key_node, opt_value_node in options_pairs:
                if key == "type":
                    type_value = self.value(opt_value_node)
                    if not isinstance(type_value, str):
                        self.problem(f"backend {name!r}: 'type' must be a string", opt_value_node)
                        continue
                    type_name, type_node = type_value, opt_value_node
                else:
                    options[key] = (self.value(opt_value_node), opt_key_node)
            if type_name is None:
                if name in available_types():
                    type_name = name  # `vault: {...}` needs no `type: vault`
                else:
                    self.problem(
                        f"backend {name!r} has no 'type' (known: {', '.join(available_types())})",
                        key_node,
                    )
                    continue
            try:
                cls = get_backend_class(type_name)
            except ConfigError as error:
                self.problem(f"backend {name!r}: {error.message}", type_node)
                continue
            clean: dict[str, Any] = {}
            for key, (value, opt_key_node) in options.items():
                if key not in cls.OPTIONS:
                    known = ", ".join(sorted(cls.OPTIONS)) or "none"
                    self.problem(
                        f"backend {name!r}: unknown option {key!r} for type {type_name} (known: {known})",
                        opt_key_node,
                    )
                else:
                    clean[key] = value
            for message in cls.validate_options(clean):
                self.problem(f"backend {name!r}: {message}", value_node)
            backends[name] = BackendSpec(name, type_name, clean, _line(key_node))
        # Options that name another backend's secret (a GitHub App's key) are checked once all
        # backends are known: a reference may name one declared below it.
        self._check_option_references(backends)
        return backends

    def _check_option_references(self, backends: dict[str, BackendSpec]) -> None:
        """Each reference in a backend option parses and names another declared backend.

        That backend must itself take no option references: one level only, so there is no cycle
        and the resolver can sign it in alongside the rest.
        """
        for spec in backends.values():
            for option, value in reference_values(spec).items():
                where = f"backend {spec.name!r}: {option!r}"
                try:
                    ref = parse_reference(value)
                except ValueError as error:
                    self.problems.append(Problem(f"{where}: {error}", self.path, spec.line))
                    continue
                target = backends.get(ref.backend or "")
                if ref.backend is None or target is None:
                    known = ", ".join(sorted(n for n in backends if n != spec.name)) or "none"
                    self.problems.append(
                        Problem(
                            f"{where}: {value!r} must name a backend declared under 'backends:' "
                            f"as NAME:PATH#FIELD (declared: {known})",
                            self.path,
                            spec.line,
                        )
                    )
                elif target.name == spec.name or reference_values(target):
                    self.problems.append(
                        Problem(
                            f"{where}: {value!r} names a backend that itself reads its options "
                            "from references; name a store (vault, aws) instead",
                            self.path,
                            spec.line,
                        )
                    )

    def _secrets(
        self,
        entry: tuple[yaml.Node, yaml.Node] | None,
        root: yaml.Node,
        backends: dict[str, BackendSpec],
        allow_names: list[str],
    ) -> list[SecretSpec]:
        if entry is None:
            self.problem("missing 'secrets:' (the variables the job gets)", root)
            return []
        pairs = self.mapping(entry[1], "'secrets'")
        secrets: list[SecretSpec] = []
        for name, key_node, value_node in pairs or []:
            secret = self._secret(name, key_node, value_node, backends, allow_names)
            if secret is not None:
                secrets.append(secret)
        if pairs is not None and not pairs:
            self.problem("'secrets' is empty: name at least one variable", entry[1])
        return secrets

    def _secret(
        self,
        name: str,
        key_node: yaml.Node,
        value_node: yaml.Node,
        backends: dict[str, BackendSpec],
        allow_names: list[str],
    ) -> SecretSpec | None:
        name_problem = check_name(name, allow_names)
        if name_problem:
            self.problem(name_problem, key_node)
        fields: dict[str, Any] = {}
        extra: dict[str, tuple[Any, yaml.Node]] = {}
        ref_node = value_node
        policy_node: yaml.Node | None = None
        if isinstance(value_node, yaml.ScalarNode):
            fields["ref"] = self.value(value_node)
        else:
            pairs = self.mapping(value_node, f"secret {name!r}")
            if pairs is None:
                return None
            for key, field_key_node, field_value_node in pairs:
                if key == "ref":
                    ref_node = field_value_node
                if key == "policy":
                    policy_node = field_value_node
                if key in SECRET_KEYS:
                    fields[key] = self.value(field_value_node)
                else:
                    extra[key] = (self.value(field_value_node), field_key_node)
            if "ref" not in fields:
                self.problem(f"secret {name!r} has no 'ref'", value_node)
                return None
        raw_ref = fields.get("ref")
        if not isinstance(raw_ref, str):
            self.problem(
                f"secret {name!r}: 'ref' must be a string like 'vault:secret/app#password'",
                ref_node,
            )
            return None
        try:
            ref = parse_reference(raw_ref)
        except ValueError as error:
            self.problem(f"secret {name!r}: {error}", ref_node)
            return None
        comment = self._field_in_comment(ref_node) if ref.field is None else ""
        if comment:
            # `vault:secret/app #password`: YAML drops ` #password` as a comment, and the job
            # would get the whole document instead of one field. Least privilege: refuse.
            self.problem(
                f"secret {name!r}: '{raw_ref} #{comment}' is read by YAML as the reference "
                f"'{raw_ref}' and a comment, which would hand over the whole document; write "
                f"'{raw_ref}#{comment}' (no space), or put a space after '#' in a comment",
                ref_node,
            )
            return None
        backend_name = self._backend_for(name, ref, ref_node, backends)
        if backend_name is None:
            return None
        backend = backends[backend_name]
        cls = get_backend_class(backend.type)
        if ref.field is not None and not cls.TAKES_FIELD:
            # Caught now, not as "field asked of a secret that is not JSON" after minting.
            self.problem(
                f"secret {name!r}: {backend.type} references take no '#field': the variable "
                "holds the whole value",
                ref_node,
            )

        options: dict[str, Any] = {}
        for key, (value, opt_key_node) in extra.items():
            if key in cls.SECRET_OPTIONS:
                options[key] = value
            else:
                known = ", ".join(sorted(SECRET_KEYS | set(cls.SECRET_OPTIONS)))
                self.problem(f"secret {name!r}: unknown key {key!r} (known: {known})", opt_key_node)

        file = self._bool(fields.get("file", False), name, "file", value_node)
        optional = self._bool(fields.get("optional", False), name, "optional", value_node)
        params = fields.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            self.problem(f"secret {name!r}: 'params' must be a mapping", value_node)
            params = {}
        elif params and not cls.SUPPORTS_PARAMS:
            self.problem(
                f"secret {name!r}: backend type {backend.type} takes no 'params'", value_node
            )
        encoding = fields.get("encoding", "utf-8")
        # A list or mapping here (`encoding: []`) is no set member: a problem, not a TypeError.
        if not isinstance(encoding, str) or encoding not in ENCODINGS:
            self.problem(
                f"secret {name!r}: 'encoding' must be one of {', '.join(sorted(ENCODINGS))}",
                value_node,
            )
            encoding = "utf-8"
        name_prefix = fields.get("name_prefix", "")
        if not isinstance(name_prefix, str):
            self.problem(f"secret {name!r}: 'name_prefix' must be a string", value_node)
            name_prefix = ""
        elif name_prefix and not (ref.is_prefix or is_field_set(ref.field)):
            self.problem(
                f"secret {name!r}: 'name_prefix' only goes with a prefix ref ending in '*' "
                "or every field ('#*', '#**')",
                value_node,
            )
        elif name_prefix and check_name(name_prefix + "X", allow_names):
            # Every variable the selection names starts so: an invalid or denied prefix (1X, LD_)
            # is known now, before anything is listed or read.
            self.problem(
                f"secret {name!r}: 'name_prefix' {name_prefix!r} cannot start a variable name: "
                f"{check_name(name_prefix + 'X', allow_names)}",
                value_node,
            )
        if ref.is_prefix and ref.field is not None and file:
            self.problem(f"secret {name!r}: a prefix selection cannot be 'file: true'", value_node)
        flatten = self._bool(fields.get("flatten", False), name, "flatten", value_node)
        if is_field_set(ref.field) and file:
            self.problem(f"secret {name!r}: every field ('#*') cannot be 'file: true'", value_node)
        if flatten and not is_field_set(ref.field):
            self.problem(
                f"secret {name!r}: 'flatten' goes with every field ('#*' or '#**'), "
                f"e.g. '{ref.raw.rpartition('#')[0] or ref.raw}#*'",
                value_node,
            )
        policy: Policy | None = None
        if "policy" in fields:
            policy, policy_problems = parse_policy(
                fields["policy"], policy_node, what=f"secret {name!r}: policy"
            )
            self.problems.extend(Problem(m, self.path, line) for m, line in policy_problems)
        for message in cls.validate_secret(ref.path, options):
            self.problem(f"secret {name!r}: {message}", ref_node)
        return SecretSpec(
            name=name,
            ref=ref,
            backend=backend_name,
            file=file,
            optional=optional,
            params=params,
            options=options,
            encoding=encoding,
            name_prefix=name_prefix,
            policy=policy,
            line=_line(key_node),
            flatten=flatten,
        )

    def _bool(self, value: Any, name: str, key: str, node: yaml.Node) -> bool:
        if isinstance(value, bool):
            return value
        self.problem(f"secret {name!r}: {key!r} must be true or false", node)
        return False

    def _backend_for(
        self, name: str, ref: Reference, node: yaml.Node, backends: dict[str, BackendSpec]
    ) -> str | None:
        if ref.backend is not None:
            if ref.backend in backends:
                return ref.backend
            if ref.backend in available_types():
                # A reference may name a backend type directly: it gets a default-configured backend.
                backends[ref.backend] = BackendSpec(
                    ref.backend, ref.backend, {}, None, implicit=True
                )
                return ref.backend
            known = ", ".join(sorted(backends)) or "none declared"
            self.problem(
                f"secret {name!r}: unknown backend {ref.backend!r} in {ref.raw!r} (backends: {known})",
                node,
            )
            return None
        matching = [b.name for b in backends.values() if b.type == ref.backend_type]
        if ref.backend_type in matching:
            # The backend named like the type ("vault", "aws") is the natural default.
            return ref.backend_type
        if len(matching) == 1:
            return matching[0]
        if len(matching) > 1:
            self.problem(
                f"secret {name!r}: {ref.raw!r} is ambiguous: several backends of type "
                f"{ref.backend_type} ({', '.join(sorted(matching))}) and none named {ref.backend_type!r}; write NAME:PATH instead",
                node,
            )
            return None
        assert ref.backend_type is not None
        backends[ref.backend_type] = BackendSpec(
            ref.backend_type, ref.backend_type, {}, None, implicit=True
        )
        return ref.backend_type

    def _identity(self, entry: tuple[yaml.Node, yaml.Node] | None) -> IdentityConfig:
        if entry is None:
            return IdentityConfig()
        config, problems = IdentityConfig.from_mapping(self.value(entry[1]))
        for message in problems:
            self.problem(message, entry[1])
        return config

    def _redact(self, entry: tuple[yaml.Node, yaml.Node] | None) -> RedactSettings:
        if entry is None:
            return RedactSettings()
        pairs = self.mapping(entry[1], "'redact'")
        settings = RedactSettings()
        replacement, min_line = settings.replacement, settings.min_line_length
        for key, key_node, value_node in pairs or []:
            value = self.value(value_node)
            if key == "replacement":
                if not isinstance(value, str) or not value or CONTROL_CHARS.search(value):
                    # No line break, NUL, CR or escape: it is written into every log line that
                    # held a value (a NUL or an ESC there is the log's damage), and export
                    # --format shell/gitlab could not carry it.
                    self.problem(
                        "redact: 'replacement' must be a non-empty one-line string without "
                        "control characters",
                        value_node,
                    )
                else:
                    replacement = value
            elif key == "min_line_length":
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    self.problem("redact: 'min_line_length' must be a positive integer", value_node)
                else:
                    min_line = value
            else:
                self.problem(
                    f"redact: unknown key {key!r} (known: min_line_length, replacement)", key_node
                )
        return RedactSettings(replacement, min_line)

    def _settings(self, entry: tuple[yaml.Node, yaml.Node] | None) -> Settings:
        if entry is None:
            return Settings()
        pairs = self.mapping(entry[1], "'settings'")
        values = {
            "timeout": Settings.timeout,
            "deadline": Settings.deadline,
            "concurrency": Settings.concurrency,
        }
        for key, key_node, value_node in pairs or []:
            value = self.value(value_node)
            if key in ("timeout", "deadline"):
                try:
                    seconds = parse_duration(value)
                except ValueError as error:
                    self.problem(f"settings: {key!r}: {error}", value_node)
                    continue
                if seconds < 1:
                    self.problem(f"settings: {key!r} must be at least 1s", value_node)
                    continue
                values[key] = seconds
            elif key == "concurrency":
                if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 256:
                    self.problem(
                        "settings: 'concurrency' must be an integer from 1 to 256", value_node
                    )
                else:
                    values[key] = value
            else:
                self.problem(
                    f"settings: unknown key {key!r} (known: concurrency, deadline, timeout)",
                    key_node,
                )
        return Settings(values["timeout"], values["deadline"], values["concurrency"])

    def _policy(self, entry: tuple[yaml.Node, yaml.Node] | None) -> Policy:
        if entry is None:
            return Policy()
        policy, problems = parse_policy(self.value(entry[1]), entry[1])
        self.problems.extend(Problem(m, self.path, line) for m, line in problems)
        return policy
