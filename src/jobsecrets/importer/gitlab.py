"""GitLab CI files: ``secrets:`` in jobs and hidden jobs (through ``extends:``), read as GitLab does.

GitLab's ``secrets:`` (Premium) reads, for each variable:

- ``vault: PATH/FIELD@MOUNT`` (short form; mount ``kv-v2`` when left out) or ``vault: {engine:
  {name, path}, path, field}``; signing in with the job's ID token (``token: $ID_TOKEN``, or the
  job's only ``id_tokens:`` entry) to ``$VAULT_SERVER_URL`` with role ``$VAULT_AUTH_ROLE`` on the
  JWT mount ``$VAULT_AUTH_PATH`` (default ``jwt``), namespace ``$VAULT_NAMESPACE``;
- ``aws_secrets_manager: {secret_id, field, region, role_arn}``;
- ``file: true`` by default: the variable holds the path of a file with the value.

Each job that asks for secrets extends the jobsecrets include's ``.jobsecrets`` instead, and says
which variables it wants (``JOBSECRETS_ONLY``).
"""

from __future__ import annotations

__all__ = ["GitLabNode", "read_gitlab", "rewrite_gitlab"]

from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.tag import Tag

from .exprs import gitlab_variable
from .model import Backend, ImportError_, Job, Note, Secret, Where
from .yamlio import Document, key_line, last_comment, move_trailing_comment, value_line

# Top-level keys that are not jobs.
RESERVED = frozenset(
    {
        "default",
        "include",
        "stages",
        "variables",
        "workflow",
        "image",
        "services",
        "cache",
        "before_script",
        "after_script",
        "spec",
        "pages:deploy",
    }
)
UNSUPPORTED = {
    "gcp_secret_manager": "GCP Secret Manager",
    "azure_key_vault": "Azure Key Vault",
    "akeyless": "Akeyless",
    "gitlab_secrets_manager": "GitLab Secrets Manager",
}
DEFAULT_TOKEN_VARIABLE = "VAULT_ID_TOKEN"  # noqa: S105 - a variable name
ROLE_PLACEHOLDER = "SET-VAULT_AUTH_ROLE"


@dataclass
class GitLabNode:
    """A job or hidden job that defines ``secrets:`` itself (what gets rewritten)."""

    name: str
    body: Any
    job: Job
    token_variable: str | None
    address_from_env: bool
    top: bool  # no job it extends defines secrets: it is the one that extends .jobsecrets
    names: list[str] = field(default_factory=list)


def _extends(body: Any) -> list[str]:
    value = body.get("extends") if isinstance(body, dict) else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


def _merge(base: dict[str, Any], over: Any) -> dict[str, Any]:
    """GitLab's ``extends`` merge: mappings deep-merged, anything else replaced."""
    out = dict(base)
    if not isinstance(over, dict):
        # GitLab refuses a job whose variables: (or body) is no mapping; what it would merge
        # is nothing (hypothesis: 'variables: aws' was an AttributeError here).
        return out
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def read_gitlab(doc: Document) -> tuple[list[Job], list[Note], list[GitLabNode]]:
    """Jobs with their secrets, the notes, and the nodes to rewrite, of one GitLab CI file."""
    data = doc.data
    if not isinstance(data, dict):
        raise ImportError_.at(doc.where(1), "not a GitLab CI file (the top level is not a mapping)")
    notes: list[Note] = []
    default: dict[str, Any] = data["default"] if isinstance(data.get("default"), dict) else {}
    if "secrets" in default:
        notes.append(
            Note(
                doc.where(key_line(default, "secrets")),
                "'secrets:' under 'default:' is not a GitLab default keyword (GitLab refuses it): "
                "not carried over",
                "error",
            )
        )
    global_vars: dict[str, Any] = (
        data["variables"] if isinstance(data.get("variables"), dict) else {}
    )
    bodies = {str(k): v for k, v in data.items() if isinstance(v, dict) and str(k) not in RESERVED}

    # Each job's merged body once: 'extends' may form diamonds, and following every path again
    # was exponential (20 levels of two parents each: 41 s, 40 levels: never).
    merged_bodies: dict[str, dict[str, Any]] = {}

    def effective(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        body = bodies.get(name)
        if body is None:
            return {}
        if name in seen:
            raise ImportError_.at(
                doc.where(key_line(data, name)), f"'extends' loop through {name!r}"
            )
        if name not in merged_bodies:
            merged_bodies[name] = _effective_of(name, body, seen)
        return merged_bodies[name]

    def _effective_of(name: str, body: dict[str, Any], seen: tuple[str, ...]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for parent in _extends(body):
            if parent not in bodies:
                notes.append(
                    Note(
                        doc.where(value_line(body, "extends")),
                        f"{name!r} extends {parent!r}, which is not in this file: its secrets "
                        "(if any) are not seen; import that file too",
                    )
                )
            merged = _merge(merged, effective(parent, (*seen, name)))
        return _merge(merged, body)

    def defines_secrets_above(name: str) -> bool:
        return any(
            isinstance(bodies.get(parent), dict) and "secrets" in bodies[parent]
            for parent in _walk_parents(name, bodies)
        )

    jobs: list[Job] = []
    nodes: list[GitLabNode] = []
    for name, body in bodies.items():
        if "secrets" not in body and not any(
            "secrets" in (bodies.get(p) or {}) for p in _walk_parents(name, bodies)
        ):
            continue
        merged = effective(name)
        secrets_map = merged.get("secrets")
        if not isinstance(secrets_map, dict) or not secrets_map:
            continue
        job = Job(doc.path, name, doc.where(key_line(data, name)))
        variables = _merge(dict(global_vars), merged.get("variables"))
        id_tokens = merged.get("id_tokens") or default.get("id_tokens") or {}
        if not isinstance(id_tokens, dict):
            # GitLab's id_tokens: is a mapping of names; anything else names no token (it
            # was a TypeError here, found by hypothesis).
            notes.append(
                Note(job.where, f"job {name!r}: 'id_tokens' is not a mapping: ignored", "error")
            )
            id_tokens = {}
        token_names: set[str] = set()
        group: list[Secret] = []
        address_from_env = False
        for var, entry in secrets_map.items():
            where = _where(doc, bodies, name, str(var))
            secret, token, from_env = _secret(str(var), entry, where, variables, id_tokens, notes)
            address_from_env = address_from_env or from_env
            if token:
                token_names.add(token)
            if secret is not None:
                group.append(secret)
        if len(token_names) > 1:
            notes.append(
                Note(
                    job.where,
                    f"job {name!r} signs in with several ID tokens ({', '.join(sorted(token_names))}): "
                    "jobsecrets uses one per job; give the roles one audience",
                )
            )
        if group:
            job.groups.append(group)
            jobs.append(job)
        if "secrets" in body:
            nodes.append(
                GitLabNode(
                    name,
                    body,
                    job,
                    min(token_names) if token_names else None,
                    address_from_env,
                    top=not defines_secrets_above(name),
                    names=[s.name for s in group],
                )
            )
    return jobs, notes, nodes


def _walk_parents(name: str, bodies: dict[str, Any]) -> list[str]:
    """Every job ``name`` extends, directly or not, each once, nearest first (depth first)."""
    out: dict[str, None] = {}
    stack = list(reversed(_extends(bodies.get(name))))
    while stack:
        parent = stack.pop()
        if parent in out or parent == name:
            continue  # met by another path (a diamond), or a loop back
        out[parent] = None
        stack.extend(reversed(_extends(bodies.get(parent))))
    return list(out)


def _where(doc: Document, bodies: dict[str, Any], job: str, var: str) -> Where:
    """The line of ``var`` under the ``secrets:`` that defines it (the job's own, else a parent's)."""
    for name in (job, *_walk_parents(job, bodies)):
        secrets_map = bodies.get(name, {}).get("secrets")
        if isinstance(secrets_map, dict) and var in secrets_map:
            return doc.where(key_line(secrets_map, var))
    return doc.where(None)


def _literal(variables: dict[str, Any], key: str) -> str | None:
    value = variables.get(key)
    if isinstance(value, dict):  # variables: {NAME: {value: ..., description: ...}}
        value = value.get("value")
    if value is None:
        return None
    text = str(value).strip()
    return text if text and "$" not in text else None


def _secret(
    var: str,
    entry: Any,
    where: Where,
    variables: dict[str, Any],
    id_tokens: dict[str, Any],
    notes: list[Note],
) -> tuple[Secret | None, str | None, bool]:
    """One ``secrets:`` entry -> (secret, ID token variable, address left to $VAULT_ADDR)."""
    if not isinstance(entry, dict):
        raise ImportError_.at(where, f"secret {var!r} must be a mapping (vault:, file:, token:)")
    for key, label in UNSUPPORTED.items():
        if key in entry:
            notes.append(
                Note(
                    where, f"{var}: {label} is not a jobsecrets backend: not carried over", "error"
                )
            )
            return None, None, False
    known = {"vault", "aws_secrets_manager", "file", "token"}
    unknown = sorted(str(k) for k in entry if k not in known)
    if unknown:
        raise ImportError_.at(
            where,
            f"secret {var!r}: unknown key {unknown[0]!r} (GitLab knows: "
            + ", ".join(sorted(known | set(UNSUPPORTED)))
            + ")",
        )
    file = entry.get("file", True)
    if not isinstance(file, bool):
        raise ImportError_.at(where, f"secret {var!r}: 'file' must be true or false")
    token = None
    if entry.get("token") is not None:
        token = gitlab_variable(str(entry["token"]))
        if token is None:
            raise ImportError_.at(
                where, f"secret {var!r}: 'token' must be $VARIABLE (an id_tokens name)"
            )
    elif len(id_tokens) == 1:
        token = str(next(iter(id_tokens)))
    if "vault" in entry:
        if token is None:
            notes.append(
                Note(
                    where,
                    f"{var}: no ID token (token: or a single id_tokens: entry): add id_tokens",
                    "error",
                )
            )
        backend, from_env = _vault_backend(variables, where, notes)
        path, field, mount = _vault_path(var, entry["vault"], where)
        mount_option: dict[str, Any] = {"mount": mount} if "/" in mount else {}
        return (
            Secret(var, backend, f"{mount}/{path}", field, where, file=file, options=mount_option),
            token,
            from_env,
        )
    aws = entry.get("aws_secrets_manager")
    if not isinstance(aws, dict) or not aws.get("secret_id"):
        raise ImportError_.at(
            where, f"secret {var!r}: needs 'vault:' or 'aws_secrets_manager: {{secret_id: ...}}'"
        )
    options: dict[str, Any] = {}
    region = str(aws.get("region") or "").strip() or _literal(variables, "AWS_REGION")
    role = str(aws.get("role_arn") or "").strip() or _literal(variables, "AWS_ROLE_ARN")
    if region and "$" not in region:
        options["region"] = region
    if role and "$" not in role:
        options["role_arn"] = role
    secret_options: dict[str, Any] = {}
    for key in ("version_id", "version_stage"):
        if aws.get(key):
            secret_options[key] = str(aws[key])
    aws_field = str(aws["field"]) if aws.get("field") else None
    return (
        Secret(
            var,
            Backend.of("aws", options),
            str(aws["secret_id"]),
            aws_field,
            where,
            file=file,
            options=secret_options,
        ),
        token,
        False,
    )


def _vault_backend(
    variables: dict[str, Any], where: Where, notes: list[Note]
) -> tuple[Backend, bool]:
    options: dict[str, Any] = {}
    address = _literal(variables, "VAULT_SERVER_URL")
    if address:
        options["address"] = address
    namespace = _literal(variables, "VAULT_NAMESPACE")
    if namespace:
        options["namespace"] = namespace
    role = _literal(variables, "VAULT_AUTH_ROLE")
    if not role:
        role = ROLE_PLACEHOLDER
        notes.append(
            Note(
                where,
                "VAULT_AUTH_ROLE is not set in this file (CI/CD settings?): the spec says "
                f"role: {ROLE_PLACEHOLDER}; put the role's name there (jobsecrets needs it)",
                "error",
            )
        )
    auth = {"method": "jwt", "role": role}
    mount = _literal(variables, "VAULT_AUTH_PATH")
    if mount and mount.strip("/") != "jwt":
        auth["mount"] = mount.strip("/")
    options["auth"] = auth
    return Backend.of("vault", options), address is None


def _vault_path(var: str, value: Any, where: Where) -> tuple[str, str, str]:
    """(path under the mount, field, mount) of a ``vault:`` value, short or long form."""
    if isinstance(value, str):
        text = value.strip()
        rest, at, mount = text.rpartition("@")
        if not at:
            rest, mount = text, "kv-v2"
        path, slash, field = rest.rpartition("/")
        if not slash or not path or not field or not mount.strip("/"):
            raise ImportError_.at(
                where, f"secret {var!r}: vault: {text!r} is not PATH/FIELD[@MOUNT]"
            )
        return path.strip("/"), field, mount.strip("/")
    if isinstance(value, dict):
        engine = value.get("engine") or {}
        mount = str((engine.get("path") if isinstance(engine, dict) else None) or "kv-v2")
        long_path, long_field = value.get("path"), value.get("field")
        if not long_path or not long_field:
            raise ImportError_.at(where, f"secret {var!r}: vault: needs 'path' and 'field'")
        return str(long_path).strip("/"), str(long_field), mount.strip("/")
    raise ImportError_.at(where, f"secret {var!r}: vault: must be a string or a mapping")


def rewrite_gitlab(
    doc: Document, nodes: list[GitLabNode], include: str, configs: dict[str, str]
) -> list[Note]:
    """Make each node extend ``.jobsecrets`` and name its variables; add the include."""
    notes: list[Note] = []
    if not nodes:
        return notes
    data = doc.data
    for node in nodes:
        body = node.body
        old = body["secrets"]
        last = list(body)[-1] == "secrets"
        trailing = last_comment(old)  # before any entry goes
        for name in node.names:
            old.pop(name, None)
        if not old:  # what was not carried over (a GCP secret) stays for GitLab to fetch
            del body["secrets"]
        variables = body.get("variables")
        if not isinstance(variables, dict):
            variables = CommentedMap()
            body["variables"] = variables
        config = configs.get(node.job.name, "jobsecrets.yml")
        if config != "jobsecrets.yml":
            variables["JOBSECRETS_CONFIG"] = config
        variables["JOBSECRETS_ONLY"] = ",".join(node.names)
        if node.token_variable and node.token_variable != DEFAULT_TOKEN_VARIABLE:
            variables["JOBSECRETS_ID_TOKEN_VARIABLE"] = node.token_variable
        if node.address_from_env:
            variables["VAULT_ADDR"] = "$VAULT_SERVER_URL"
        if node.top:
            parents = _extends(body)
            if ".jobsecrets" not in parents:
                body["extends"] = [*parents, ".jobsecrets"] if parents else ".jobsecrets"
        for script in ("before_script", "after_script"):
            own = body.get(script)
            if isinstance(own, list):
                reference = CommentedSeq([".jobsecrets", script])
                reference.fa.set_flow_style()
                reference.yaml_set_ctag(Tag(suffix="!reference"))
                own.insert(0, reference)
                notes.append(
                    Note(
                        doc.where(key_line(body, script)),
                        f"{node.name}: its own {script} replaces the include's: "
                        f"!reference [.jobsecrets, {script}] put first",
                    )
                )
        if last and "secrets" not in body:
            move_trailing_comment(old, body, trailing)
    _add_include(data, include)
    return notes


def _add_include(data: Any, include: str) -> None:
    entry = CommentedMap()
    if "@" in include:
        entry["component"] = include
    else:
        entry["local"] = include
    current = data.get("include")
    if current is None:
        data.insert(0, "include", CommentedSeq([entry]))
        return
    if not isinstance(current, list):
        # `include: 'ci/common.yml'` becomes a list; what followed the scalar follows the list.
        held = data.ca.items.pop("include", None)
        current = CommentedSeq([current])
        data["include"] = current
        current.append(entry)
        if held is not None:
            entry.ca.items[list(entry)[-1]] = held
        return
    if not any(
        isinstance(i, dict) and include in (i.get("local"), i.get("component")) for i in current
    ):
        last = current[-1] if current else None
        current.append(entry)
        if isinstance(last, CommentedMap) and last:
            # A blank line or comment after the last include belongs after the new one.
            held = last.ca.items.pop(list(last)[-1], None)
            if held is not None:
                entry.ca.items[list(entry)[-1]] = held
