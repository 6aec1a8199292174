"""``jobsecrets init``: a first spec for GitHub Actions, GitLab CI or the local machine.

The scaffold is a working spec (``jobsecrets plan`` accepts it as written) whose comments hold what
the stores need on their side: the Vault role and policy, the AWS trust policy. Every name in it is
a placeholder to replace; nothing is read from a store.
"""

from __future__ import annotations

__all__ = ["TARGETS", "detect_target", "init_command", "scaffold"]

import os
import stat
import sys

from ..errors import ConfigError

TARGETS = ("github", "gitlab", "local")

_HEAD = """\
# yaml-language-server: $schema=https://raw.githubusercontent.com/jobsecrets/jobsecrets/main/schema/jobsecrets.schema.json
# jobsecrets spec ({target}), made by `jobsecrets init`. Check it with `jobsecrets plan`
# (reads no value) and `jobsecrets plan --check` (signs in, checks every path, reads no value).
# Outside CI the same file works unchanged: jwt falls back to $VAULT_TOKEN / ~/.vault-token and
# role_arn to your AWS profile, and jobsecrets says so on stderr.
version: 1
"""

_VAULT_ROLE = {
    "github": """\
# Vault/OpenBao side (once, by an admin):
#   vault auth enable jwt
#   vault write auth/jwt/config oidc_discovery_url=https://token.actions.githubusercontent.com \\
#       bound_issuer=https://token.actions.githubusercontent.com
#   vault policy write ci-deploy - <<'HCL'
#   path "secret/data/app"                { capabilities = ["read"] }
#   path "secret/metadata/app"            { capabilities = ["read"] }   # plan --check, policy max_age
#   path "sys/internal/ui/mounts/*"       { capabilities = ["read"] }   # KV version detection
#   HCL
#   vault write auth/jwt/role/ci-deploy role_type=jwt user_claim=repository \\
#       bound_audiences=vault bound_claims='{"repository":"OWNER/REPO","ref":"refs/heads/main"}' \\
#       token_policies=ci-deploy token_ttl=15m token_max_ttl=1h
# The workflow needs `permissions: id-token: write`.
""",
    "gitlab": """\
# Vault/OpenBao side (once, by an admin):
#   vault auth enable jwt
#   vault write auth/jwt/config oidc_discovery_url=https://gitlab.example.com \\
#       bound_issuer=https://gitlab.example.com
#   vault policy write ci-deploy - <<'HCL'
#   path "secret/data/app"                { capabilities = ["read"] }
#   path "secret/metadata/app"            { capabilities = ["read"] }   # plan --check, policy max_age
#   path "sys/internal/ui/mounts/*"       { capabilities = ["read"] }   # KV version detection
#   HCL
#   vault write auth/jwt/role/ci-deploy role_type=jwt user_claim=project_path \\
#       bound_audiences=vault bound_claims='{"project_path":"GROUP/PROJECT","ref_protected":"true"}' \\
#       token_policies=ci-deploy token_ttl=15m token_max_ttl=1h
# The job needs `id_tokens: {VAULT_ID_TOKEN: {aud: vault}}` (the include's default variable).
""",
}

_AWS_TRUST = {
    "github": ("token.actions.githubusercontent.com", "repo:OWNER/REPO:ref:refs/heads/main"),
    "gitlab": ("gitlab.example.com", "project_path:GROUP/PROJECT:ref_type:branch:ref:main"),
}

_AWS_TRUST_TEXT = """\
# AWS side: an IAM OIDC provider for {issuer} and a role whose trust policy is
#   {{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow",
#     "Principal": {{"Federated": "arn:aws:iam::123456789012:oidc-provider/{issuer}"}},
#     "Action": "sts:AssumeRoleWithWebIdentity",
#     "Condition": {{"StringEquals": {{"{issuer}:aud": "sts.amazonaws.com",
#                                    "{issuer}:sub": "{subject}"}}}}}}]}}
# and whose permissions allow secretsmanager:GetSecretValue and secretsmanager:DescribeSecret
# on arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/payments-*
"""

_CI_BACKENDS = """\
backends:
  vault:
    type: vault
    address: https://vault.example.com:8200
    auth: {method: jwt, role: ci-deploy, audience: vault}
  aws:
    type: aws
    region: eu-west-1
    role_arn: arn:aws:iam::123456789012:role/ci-deploy
"""

_LOCAL = """\
# Local use: the token from $VAULT_TOKEN, $BAO_TOKEN or ~/.vault-token (`vault login`), and the
# default AWS credential chain (AWS_PROFILE picks a profile). The token needs this Vault policy:
#   path "secret/data/app"           { capabilities = ["read"] }
#   path "sys/internal/ui/mounts/*"  { capabilities = ["read"] }
# and the AWS identity secretsmanager:GetSecretValue on prod/payments.
backends:
  vault:
    type: vault                  # address from $VAULT_ADDR (or $BAO_ADDR)
  aws:
    type: aws                    # region from $AWS_REGION or the profile
"""

_SECRETS = """\
secrets:
  DB_PASSWORD: vault:secret/app#password       # KV v2 or v1: mount and version detected
  STRIPE_KEY: aws:prod/payments#stripe_key     # a JSON key of a SecretString
"""


def detect_target(directory: str) -> str:
    """``github`` or ``gitlab`` when the repository has that CI's files, else ``local``."""
    if os.path.isdir(os.path.join(directory, ".github", "workflows")):
        return "github"
    if os.path.isfile(os.path.join(directory, ".gitlab-ci.yml")):
        return "gitlab"
    return "local"


def scaffold(target: str) -> str:
    """The spec text for ``target`` (one of :data:`TARGETS`)."""
    if target not in TARGETS:
        raise ConfigError(f"init: unknown target {target!r} (one of {', '.join(TARGETS)})")
    text = _HEAD.format(target=target)
    if target == "local":
        return text + _LOCAL + _SECRETS
    issuer, subject = _AWS_TRUST[target]
    return (
        text
        + _VAULT_ROLE[target]
        + _AWS_TRUST_TEXT.format(issuer=issuer, subject=subject)
        + _CI_BACKENDS
        + _SECRETS
    )


def init_command(target: str | None, output: str, force: bool) -> None:
    """Write the scaffold to ``output`` (``-``: stdout); an existing file is kept unless ``force``."""
    chosen = target or detect_target(os.path.dirname(os.path.abspath(output)) or ".")
    text = scaffold(chosen)
    if output == "-":
        sys.stdout.write(text)
        return
    if os.path.lexists(output) and not force:
        raise ConfigError(
            f"init: {output} already exists", hint="use --force to replace it, or -o another path"
        )
    if os.path.lexists(output) and not stat.S_ISREG(os.lstat(output).st_mode):
        # --force replaces a file of ours: a FIFO blocked the open, a device or a link's
        # target would have been written to.
        raise ConfigError(
            f"init: refusing to replace {output}: not a regular file", hint="use -o another path"
        )
    try:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as error:
        # A directory that does not exist, an empty name, no permission: FileNotFoundError
        # was an internal error.
        raise ConfigError(
            f"init: cannot write {output or repr(output)}: {error.strerror or error}",
            hint="use -o with a path in an existing directory",
        ) from None
    print(
        f"jobsecrets: wrote {output} (for {chosen}); next: jobsecrets plan -c {output}",
        file=sys.stderr,
    )
