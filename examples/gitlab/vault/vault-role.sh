#!/bin/sh
# Create what the job signs in to: a jwt auth method trusting your GitLab, a policy and a role
# bound to one project's protected default branch. Run once, with an admin token.
set -eu
GITLAB=https://gitlab.example.com      # your GitLab URL: the id token's issuer
PROJECT=your-group/your-project        # the project whose jobs may sign in

vault auth enable jwt 2>/dev/null || true
vault write auth/jwt/config oidc_discovery_url="$GITLAB" bound_issuer="$GITLAB"

vault policy write gitlab-deploy - <<'HCL'
path "secret/data/app"    { capabilities = ["read"] }
path "database/creds/ci"  { capabilities = ["read"] }
# lets `jobsecrets revoke` end each lease at once (without it they end with the token, moments later)
path "sys/leases/revoke/database/creds/*" { capabilities = ["update"] }
HCL

vault write auth/jwt/role/gitlab-deploy - <<JSON
{
  "role_type": "jwt",
  "user_claim": "sub",
  "bound_audiences": ["https://vault.example.com"],
  "bound_claims_type": "glob",
  "bound_claims": {
    "project_path": "$PROJECT",
    "ref_type": "branch",
    "ref_protected": "true"
  },
  "token_policies": ["gitlab-deploy"],
  "token_type": "service",
  "token_ttl": "15m",
  "token_max_ttl": "1h"
}
JSON
