"""Realistic CI log text and realistic structured secrets, generated from templates.

:func:`ci_log` writes what pip, npm, pytest, ``docker build`` and ``kubectl apply`` (with the
manifests it was given) print, plus other people's service-account JSON and kubeconfigs: text
that shares its *structure* with the secrets of :func:`structured_secrets` but holds none of
their values. Masking those secrets must change zero bytes of it. Seeded, so a failure repeats.
"""

from __future__ import annotations

__all__ = ["ci_log", "structured_secrets"]

import base64
import json
import random
import string


def _token(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _pem(rng: random.Random, kind: str = "PRIVATE KEY", lines: int = 26) -> str:
    body = base64.b64encode(rng.randbytes(48 * lines)).decode()
    wrapped = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {kind}-----\n{wrapped}\n-----END {kind}-----\n"


def _service_account(rng: random.Random, project: str, *, key: bool = True) -> str:
    # Another account's key as a log shows it: its private key is not ordinary text (it is a
    # leak of its own), so it appears as tools print it when they hide it.
    return json.dumps(
        {
            "type": "service_account",
            "project_id": project,
            "private_key_id": rng.randbytes(20).hex(),
            "private_key": _pem(rng) if key else "<hidden>",
            "client_email": f"deployer@{project}.iam.gserviceaccount.com",
            "client_id": str(rng.getrandbits(64)),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": "https://oauth2.googleapis.com/token",
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "universe_domain": "googleapis.com",
        },
        indent=2,
    )


def _kubeconfig(rng: random.Random, name: str) -> str:
    ca = base64.b64encode(_pem(rng, "CERTIFICATE", 10).encode()).decode()
    return (
        "apiVersion: v1\n"
        "kind: Config\n"
        "clusters:\n"
        "- cluster:\n"
        f"    certificate-authority-data: {ca}\n"
        f"    server: https://10.{rng.randint(0, 255)}.0.1:6443\n"
        f"  name: {name}\n"
        "contexts:\n"
        "- context:\n"
        f"    cluster: {name}\n"
        "    namespace: default\n"
        "    user: deployer\n"
        f"  name: {name}\n"
        f"current-context: {name}\n"
        "preferences: {}\n"
        "users:\n"
        "- name: deployer\n"
        "  user:\n"
        f"    token: {_token(rng, 40)}\n"
    )


def structured_secrets(seed: int = 7) -> list[bytes]:
    """Secrets shaped like real ones: a kubeconfig, a pretty-printed service-account key, a PEM
    key, a docker config, a multi-line value with an indented and a whitespace-only line."""
    rng = random.Random(seed)
    docker = json.dumps(
        {
            "auths": {
                "registry.example.com": {
                    "auth": base64.b64encode(f"ci:{_token(rng, 24)}".encode()).decode()
                }
            }
        },
        indent=4,
    )
    multi = f"first-{_token(rng, 12)}\n    \n    indented-{_token(rng, 12)}\n\n  - item\n"
    return [
        _kubeconfig(rng, "prod").encode(),
        _service_account(rng, "secret-project").encode(),
        _pem(rng).encode(),
        docker.encode(),
        multi.encode(),
    ]


_PIP = [
    "Collecting {pkg}=={ver}",
    "  Downloading {pkg}-{ver}-py3-none-any.whl ({size} kB)",
    "     ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ {size}.0/{size}.0 kB {speed} MB/s eta 0:00:00",
    "Requirement already satisfied: {pkg}>={ver} in ./.venv/lib/python3.12/site-packages",
    "Successfully installed {pkg}-{ver}",
]
_NPM = [
    "npm WARN deprecated {pkg}@{ver}: This package is no longer supported.",
    "added {n} packages, and audited {m} packages in {s}s",
    "",
    "{n} packages are looking for funding",
    "  run `npm fund` for details",
    "found 0 vulnerabilities",
]
_PYTEST = [
    "============================= test session starts ==============================",
    "platform linux -- Python 3.12.1, pytest-8.0.0, pluggy-1.4.0",
    "collected {n} items",
    "",
    "tests/test_{pkg}.py ....................................                 [ {p}%]",
    "    def test_{pkg}():",
    '        assert result == {{"status": "ok"}}',
    "E       AssertionError: assert 1 == 2",
    "======================== {n} passed, 1 warning in {s}s =========================",
]
_DOCKER = [
    "#{n} [internal] load build definition from Dockerfile",
    "#{n} transferring dockerfile: {size}B done",
    "#{n} [{m}/9] RUN pip install --no-cache-dir -r requirements.txt",
    "#{n} sha256:{sha} {size}MB / {size}MB {s}s done",
    "#{n} DONE {s}s",
    "Step {m}/12 : COPY . /app",
    " ---> Using cache",
    " ---> {short}",
]
_KUBECTL = [
    "deployment.apps/{pkg} configured",
    "service/{pkg} unchanged",
    "configmap/{pkg}-config created",
    "secret/{pkg}-tls configured",
]
_MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {pkg}
  namespace: default
  labels:
    app: {pkg}
spec:
  replicas: 3
  selector:
    matchLabels:
      app: {pkg}
  template:
    spec:
      containers:
        - name: {pkg}
          image: registry.example.com/{pkg}:{ver}
          ports:
            - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: {pkg}
spec:
  type: ClusterIP
"""


def ci_log(size: int, seed: int = 11) -> bytes:
    """About ``size`` bytes of CI log text from many tools (no value of the structured secrets)."""
    rng = random.Random(seed)
    packages = ["requests", "urllib3", "pytest", "click", "react", "lodash", "webpack", "api"]
    parts: list[str] = []
    total = 0
    while total < size:
        pkg = rng.choice(packages)
        fields = {
            "pkg": pkg,
            "ver": f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}",
            "size": rng.randint(10, 9999),
            "speed": rng.randint(1, 90),
            "n": rng.randint(1, 900),
            "m": rng.randint(1, 9),
            "s": rng.randint(1, 99),
            "p": rng.randint(1, 100),
            "sha": rng.randbytes(32).hex(),
            "short": rng.randbytes(6).hex(),
        }
        kind = rng.randrange(9)
        if kind == 0:
            block = "\n".join(line.format(**fields) for line in _PIP)
        elif kind == 1:
            block = "\n".join(line.format(**fields) for line in _NPM)
        elif kind == 2:
            block = "\n".join(line.format(**fields) for line in _PYTEST)
        elif kind == 3:
            block = "\n".join(line.format(**fields) for line in _DOCKER)
        elif kind == 4:
            block = "$ kubectl apply -f k8s/\n" + "\n".join(
                line.format(**fields) for line in _KUBECTL
            )
        elif kind == 5:
            block = "+ cat k8s/deploy.yaml\n" + _MANIFEST.format(**fields)
        elif kind == 6:
            # Somebody else's service-account key and kubeconfig, printed while debugging.
            block = (
                _service_account(rng, f"other-{pkg}", key=False)
                + "\n"
                + _kubeconfig(rng, "staging")
            )
        elif kind == 7:
            block = json.dumps({"name": pkg, "version": fields["ver"], "private": True}, indent=4)
        else:
            block = "    " + "\n    ".join(
                f"at {pkg}.Module.run (src/{pkg}.js:{n}:17)" for n in range(5)
            )
        parts.append(block + "\n")
        total += len(parts[-1])
    return "".join(parts).encode("utf-8")
