#!/usr/bin/env bash
# The Vault/OpenBao side of examples/github/.github/workflows/deploy-vault.yml (run once, as an admin).
# Jobs of acme/app on main sign in with their GitHub OIDC token; nothing is stored in GitHub.
set -euo pipefail
VAULT="${VAULT:-vault}"   # or: VAULT=bao

"$VAULT" auth enable jwt 2>/dev/null || true
"$VAULT" write auth/jwt/config \
  oidc_discovery_url=https://token.actions.githubusercontent.com \
  bound_issuer=https://token.actions.githubusercontent.com

"$VAULT" policy write gha-deploy - <<'HCL'
path "secret/data/app" { capabilities = ["read"] }
path "database/creds/deploy" { capabilities = ["read"] }
# Lets the post step revoke each lease at once (without it, revoking the token ends them moments later).
path "sys/leases/revoke" { capabilities = ["update"] }
HCL

# Only this repository's main branch; the audience must match the spec's auth.audience.
"$VAULT" write auth/jwt/role/gha-deploy - <<'JSON'
{
  "role_type": "jwt",
  "user_claim": "sub",
  "bound_audiences": ["https://vault.example.com"],
  "bound_claims": {"repository": "acme/app", "ref": "refs/heads/main"},
  "token_policies": ["gha-deploy"],
  "token_ttl": "15m",
  "token_max_ttl": "1h"
}
JSON
