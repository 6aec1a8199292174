"""hashicorp/vault-action steps: their inputs, read as vault-action reads them.

``secrets:`` holds entries separated by ``;`` (not by newlines: two entries on two lines with no
``;`` between them are one bad entry, for vault-action too). Each entry is ``PATH SELECTOR
[| NAME]``. Without ``| NAME`` the variable is the selector with ``.`` turned into ``__``, ``-``
and other characters dropped, upper-cased; the step output keeps the selector's case. ``*``
selects every field, upper-cased; ``**`` keeps the key's case; ``| PREFIX`` prefixes them.
vault-action GETs the path as written: a KV v2 path carries ``data/``, which jobsecrets adds
itself, so it is taken off here (mount detection at run time refuses it otherwise).
"""

from __future__ import annotations

__all__ = ["INPUTS", "StepResult", "convert_step", "normalize_output_key"]

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .exprs import has_expression
from .model import Backend, ImportError_, Note, Secret, Where

# Every input vault-action 3.x takes (action.yml); anything else is a typo: refused, not ignored.
INPUTS = frozenset(
    {
        "url",
        "namespace",
        "method",
        "role",
        "path",
        "token",
        "roleId",
        "secretId",
        "githubToken",
        "jwtGithubAudience",
        "jwtPrivateKey",
        "jwtKeyPassword",
        "jwtTtl",
        "kubernetesTokenPath",
        "username",
        "password",
        "authPayload",
        "secrets",
        "pki",
        "exportEnv",
        "exportToken",
        "outputToken",
        "caCertificate",
        "clientCertificate",
        "clientKey",
        "tlsSkipVerify",
        "extraHeaders",
        "secretEncodingType",
        "ignoreNotFound",
    }
)

# vault-action method -> jobsecrets auth method; anything else is not carried over.
METHODS = {"token": "token", "approle": "approle", "jwt": "jwt", "kubernetes": "kubernetes"}
# A JSONata path of plain names or `back-ticked` names: what vault-action reads as keys.
_PATH = re.compile(
    r"^(?:[A-Za-z_$][A-Za-z0-9_$]*|`[^`]+`)(?:\.(?:[A-Za-z_$][A-Za-z0-9_$]*|`[^`]+`))*$"
)
_STEP = re.compile(r"`[^`]+`|[^.]+")
_NAME = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


def normalize_output_key(key: str, upper: bool = False) -> str:
    """vault-action's ``normalizeOutputKey``: ``.`` -> ``__``, ``-`` dropped, non-word dropped."""
    out = key.replace(".", "__").replace("-", "")
    out = "".join(c for c in out if c.isalnum() or c in "_-")
    return out.upper() if upper else out


@dataclass
class StepResult:
    """What one vault-action step becomes."""

    secrets: list[Secret] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    step_env: dict[str, str] = field(default_factory=dict)  # env of the rewritten step
    export_env: bool = True
    outputs: dict[str, str] = field(default_factory=dict)  # old output name -> new one
    convertible: bool = True


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _truthy(value: Any) -> bool:
    return _text(value).strip().lower() == "true"


def convert_step(
    inputs: dict[str, Any],
    where: Where,
    line_of: Callable[[str], int | None],
    find: Callable[[int | None, str], int | None],
) -> StepResult:
    """Convert one step's ``with:`` (``where``: the step). ``line_of(key)`` is the line of an
    input's value; ``find(start, text)`` the first line from ``start`` holding ``text``.
    """
    step_line = where.line
    result = StepResult()
    unknown = sorted(k for k in inputs if k not in INPUTS)
    if unknown:
        raise ImportError_.at(
            Where(where.file, line_of(unknown[0]) or step_line),
            f"hashicorp/vault-action has no input {unknown[0]!r}",
            hint="vault-action's inputs are: " + ", ".join(sorted(INPUTS)),
        )
    options: dict[str, Any] = {}

    def here(key: str) -> Where:
        return Where(where.file, line_of(key) or step_line)

    url = _text(inputs.get("url")).strip()
    if url and not has_expression(url):
        options["address"] = url
    elif url:
        name = "VAULT_ADDR"
        result.step_env[name] = url
    namespace = _text(inputs.get("namespace")).strip()
    if namespace and not has_expression(namespace):
        options["namespace"] = namespace
    elif namespace:
        result.step_env["VAULT_NAMESPACE"] = namespace

    method = _text(inputs.get("method") or "token").strip()
    auth: dict[str, Any] = {}
    if has_expression(method) or method not in METHODS:
        result.convertible = False
        result.notes.append(
            Note(
                here("method"),
                f"auth method {method!r} is not supported by jobsecrets (token, approle, jwt, "
                "kubernetes): the step is left as it is; jwt with the job's OIDC token needs no "
                "stored credential",
                "error",
            )
        )
        return result
    auth["method"] = METHODS[method]
    mount = _text(inputs.get("path")).strip()
    if mount and method != "token":
        if has_expression(mount):
            result.notes.append(
                Note(here("path"), "auth mount given by an expression: set auth.mount by hand")
            )
        else:
            auth["mount"] = mount.strip("/")
    if method == "token":
        token = _text(inputs.get("token")).strip()
        if token:
            # ${{ secrets.VAULT_TOKEN }}: the step's env hands it over as $VAULT_TOKEN.
            result.step_env["VAULT_TOKEN"] = token
    elif method == "approle":
        for key, env in (("roleId", "VAULT_ROLE_ID"), ("secretId", "VAULT_SECRET_ID")):
            value = _text(inputs.get(key)).strip()
            if value:
                result.step_env[env] = value
    elif method in ("jwt", "kubernetes"):
        role = _text(inputs.get("role")).strip()
        if not role or has_expression(role):
            result.convertible = False
            result.notes.append(
                Note(
                    here("role"),
                    "the role is "
                    + ("an expression known only at run time" if role else "missing")
                    + ": jobsecrets needs it in the spec; the step is left as it is",
                    "error",
                )
            )
            return result
        auth["role"] = role
        if method == "jwt":
            if inputs.get("jwtPrivateKey"):
                result.convertible = False
                result.notes.append(
                    Note(
                        here("jwtPrivateKey"),
                        "jwt with a self-signed key (jwtPrivateKey) is not supported: use the "
                        "job's OIDC token (permissions: id-token: write); step left as it is",
                        "error",
                    )
                )
                return result
            audience = _text(inputs.get("jwtGithubAudience")).strip()
            # vault-action asks GitHub for audience 'sigstore' unless told otherwise: keep it,
            # or the Vault role's bound_audiences no longer match.
            auth["audience"] = audience if audience and not has_expression(audience) else "sigstore"
            if audience and has_expression(audience):
                result.notes.append(
                    Note(here("jwtGithubAudience"), "audience is an expression: set it by hand")
                )
        else:
            path = _text(inputs.get("kubernetesTokenPath")).strip()
            if path and not has_expression(path):
                auth["token_file"] = path
    options["auth"] = auth
    if _truthy(inputs.get("tlsSkipVerify")):
        options["tls_skip_verify"] = True
    backend = Backend.of("vault", options)

    for key, why in (
        ("caCertificate", "a CA bundle is a file for jobsecrets: set the backend's ca_cert"),
        ("clientCertificate", "TLS client certificates are not supported"),
        ("clientKey", "TLS client certificates are not supported"),
        ("extraHeaders", "extra HTTP headers are not supported"),
        ("exportToken", "jobsecrets never exports its Vault token (it revokes it at the end)"),
        ("outputToken", "jobsecrets never outputs its Vault token"),
        ("secretEncodingType", "set 'encoding' on the variables by hand"),
        ("jwtTtl", "only for self-signed JWTs"),
    ):
        if key in inputs and (key not in ("exportToken", "outputToken") or _truthy(inputs[key])):
            result.notes.append(Note(here(key), f"input {key!r} not carried over: {why}"))
    result.export_env = _text(inputs.get("exportEnv") or "true").strip().lower() != "false"
    optional = _truthy(inputs.get("ignoreNotFound"))

    if inputs.get("secrets") and inputs.get("pki"):
        raise ImportError_.at(here("pki"), "vault-action takes 'secrets' or 'pki', not both")
    if inputs.get("pki"):
        _pki(_text(inputs["pki"]), line_of("pki") or step_line, where, find, backend, result)
        return result
    raw = _text(inputs.get("secrets"))
    start = line_of("secrets") or step_line
    for entry in (e.strip() for e in raw.split(";")):
        if not entry:
            continue
        # Entries come in order: each is looked for from the line of the one before.
        start = find(start, " ".join(entry.split("|")[0].split()[:2]))
        spot = Where(where.file, start)
        if has_expression(entry):
            result.notes.append(
                Note(
                    spot,
                    f"entry {_short(entry)!r} holds an expression known only at run time: not "
                    "carried over (write one variable per value it can take)",
                    "error",
                )
            )
            continue
        rename: str | None = None
        spec_part = entry
        if "|" in entry:
            spec_part, _, rename = entry.rpartition("|")
            spec_part, rename = spec_part.strip(), rename.strip()
            if not rename:
                raise ImportError_.at(spot, f"entry {_short(entry)!r}: nothing after '|'")
        parts = spec_part.split()
        if len(parts) != 2:
            raise ImportError_.at(
                spot,
                f"entry {_short(entry)!r} is not 'PATH KEY [| NAME]'"
                + (" (entries are separated by ';')" if len(parts) > 2 else ""),
            )
        path, selector = parts[0], parts[1].replace('"', "")
        secret_path, kv_mount = _kv_path(path.strip("/"))
        extra: dict[str, Any] = {"mount": kv_mount} if kv_mount and "/" in kv_mount else {}
        if selector in ("*", "**"):
            prefix = normalize_output_key(rename or "", upper=selector == "*")
            result.secrets.append(
                Secret(
                    name=_label(prefix, secret_path),
                    backend=backend,
                    path=secret_path,
                    field=selector,
                    where=spot,
                    optional=optional,
                    name_prefix=prefix,
                    options=extra,
                )
            )
            result.notes.append(
                Note(
                    spot,
                    "every field: keys with '-' or '.' are named with '_' by jobsecrets "
                    "(vault-action drops '-' and turns '.' into '__')",
                )
            )
            continue
        quoted = parts[1].startswith('"')
        if "." not in selector:
            # vault-action reads a selector without '.' as one key ("api-key" included); but
            # unquoted and with no '| NAME' it must parse as a JSONata name (`api-key` is a
            # subtraction): vault-action refuses it, so the import does too.
            if rename is None and not quoted and not _NAME.fullmatch(selector):
                raise ImportError_.at(
                    spot,
                    f"entry {_short(entry)!r}: {selector!r} is a JSONata expression, not a key: "
                    "vault-action refuses it too; write it in double quotes or give '| NAME'",
                )
            field_name = selector
        else:
            steps = _path_steps(selector)
            if steps is None:
                if rename is None and not quoted:
                    raise ImportError_.at(
                        spot,
                        f"entry {_short(entry)!r}: a JSONata expression needs '| NAME' "
                        "(vault-action refuses it too)",
                    )
                result.notes.append(
                    Note(
                        spot,
                        f"JSONata selector {selector!r} is not supported: not carried over",
                        "error",
                    )
                )
                continue
            field_name = ".".join(steps)  # a nested key a.b: jobsecrets reads it too
        env_name = rename if rename is not None else normalize_output_key(selector, upper=True)
        result.outputs[rename if rename is not None else normalize_output_key(selector)] = env_name
        result.secrets.append(
            Secret(
                name=env_name,
                backend=backend,
                path=secret_path,
                field=field_name,
                where=spot,
                optional=optional,
                options=dict(extra),
            )
        )
    return result


# vault-action's PKI outputs: NAME_<suffix> <- the issue response's field.
PKI_FIELDS = (
    ("CERT", "certificate"),
    ("KEY", "private_key"),
    ("CA", "issuing_ca"),
    ("CA_CHAIN", "ca_chain"),
)


def _pki(
    raw: str,
    start: int | None,
    where: Where,
    find: Callable[[int | None, str], int | None],
    backend: Backend,
    result: StepResult,
) -> None:
    """``pki: PATH {JSON params} ;``: one certificate per entry, four variables each."""
    import json

    for entry in (e.strip() for e in raw.split(";")):
        if not entry:
            continue
        start = find(start, entry.split()[0])
        spot = Where(where.file, start)
        path, _, parameters = entry.partition(" ")
        try:
            params = json.loads(parameters)
        except ValueError:
            params = None
        if not path or not isinstance(params, dict):
            raise ImportError_.at(
                spot, f"pki entry {_short(entry)!r} is not 'PATH {{JSON parameters}}'"
            )
        name = normalize_output_key(path.strip("/").rsplit("/", 1)[-1])
        for suffix, field_name in PKI_FIELDS:
            result.secrets.append(
                Secret(
                    name=normalize_output_key(f"{name}_{suffix}", upper=True),
                    backend=backend,
                    path=path.strip("/"),
                    field=field_name,
                    where=spot,
                    options={"params": params},
                )
            )
        result.notes.append(
            Note(
                spot,
                f"{normalize_output_key(name + '_CA_CHAIN', upper=True)}: jobsecrets hands the "
                "chain over as a JSON list; vault-action joined it with newlines",
            )
        )


def _path_steps(selector: str) -> list[str] | None:
    """The keys of a simple JSONata path (``a.b``, ```api-key```), or None for an expression."""
    if not _PATH.match(selector):
        return None
    return [step.strip("`") for step in _STEP.findall(selector)]


def _kv_path(path: str) -> tuple[str, str | None]:
    """``secret/data/app`` -> (``secret/app``, ``secret``): vault-action GETs the API path, and
    jobsecrets adds ``data/`` on a KV v2 mount itself. The mount is what precedes the first
    ``/data/`` (a mount of several segments is then named with ``mount:``). A path without
    ``/data/`` is kept (KV v1, dynamic engines)."""
    head, sep, rest = path.partition("/data/")
    if sep and head and rest:
        return f"{head}/{rest}", head
    return path, None


def _label(prefix: str, path: str) -> str:
    from ..names import to_env_name

    label = prefix.rstrip("_") or to_env_name(path.rsplit("/", 1)[-1])
    return label if label[:1].isalpha() or label[:1] == "_" else "_" + label


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:77] + "..."
