"""Test helpers for AWS: a moto server on 127.0.0.1, seeding, and real IAM denials.

How denials are made real: moto simulates IAM when ``settings.INITIAL_NO_AUTH_ACTION_COUNT`` is finite.
Once that many requests have been served without checks, every request must be SigV4-signed with an
access key moto's IAM knows (a user's key, or credentials moto's STS issued for an assumed role), the
signature is verified, and the identity's IAM policies are evaluated: an explicit ``Deny`` or a missing
``Allow`` answers HTTP 403 ``AccessDenied``. The server exposes the switch as
``POST /moto-api/reset-auth`` (body: the count), which :meth:`MotoServer.enforce_iam` uses; in-process
(``mock_aws``) :func:`iam_enforced` flips the same setting.

Limits of moto 5.x worth knowing: Secrets Manager requests are authorised against resource ``*``, so a
policy can deny an *action* (``secretsmanager:BatchGetSecretValue``, ``secretsmanager:GetSecretValue``)
for an identity, not one secret; and an unsigned call (``AssumeRoleWithWebIdentity``) crashes the check,
so web-identity tests let the first request through unchecked (``free_requests=1``).
"""

from __future__ import annotations

__all__ = [
    "ACCOUNT",
    "REGION",
    "MotoServer",
    "admin_session_kwargs",
    "allow",
    "create_user",
    "create_web_identity_role",
    "deny",
    "iam_enforced",
    "policy",
    "seed_secrets",
]

import contextlib
import json
import logging
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
OIDC_PROVIDER = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"


def admin_session_kwargs(endpoint: str | None = None) -> dict[str, Any]:
    """boto3 client kwargs for seeding (any key works while IAM is not enforced)."""
    kwargs: dict[str, Any] = {
        "region_name": REGION,
        "aws_access_key_id": "AKIASEEDSEEDSEEDSEED",
        "aws_secret_access_key": "seed-secret-key",
    }
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    return kwargs


class MotoServer:
    """``moto.server.ThreadedMotoServer`` on 127.0.0.1 and a free port; use as a context manager."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        # werkzeug logs every request line to stderr; tests only want failures.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint = ""

    def start(self) -> MotoServer:
        """Start serving, with nothing in it; sets :attr:`endpoint` (``http://127.0.0.1:PORT``).

        moto keeps its resources in this process, not in the server: a server a module starts
        would otherwise hold what an earlier module's server left (a secret of the same name, and
        CreateSecret fails). So they are forgotten here, in-process, as ``POST /moto-api/reset``
        does.
        """
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        """Stop the server thread (IAM enforcement is switched off first: it is process-global).

        Switched off in this process, not over HTTP: the server is a thread of this process, and a
        teardown request that the server answers with a reset (seen once in CI, after every test of
        the GitLab module had passed) must not turn a passed module into an error.
        """
        try:
            from moto import settings
            from moto.core.authorization import ActionAuthenticatorMixin

            settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
            ActionAuthenticatorMixin.request_count = 0
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        """``ThreadedMotoServer.stop``, woken up if the server is stuck in ``accept``.

        socketserver's loop polls its (blocking) listening socket and then accepts; a client that
        connected and went away in between leaves ``accept`` blocked until the next connection,
        and ``stop`` waits for the loop forever (seen once in a full run, after the GitLab job
        tests). A connection of our own unblocks it; the loop then sees the shutdown request.
        """
        host, port = self._server.get_host_and_port()
        stopper = threading.Thread(target=self._server.stop, name="moto-stop", daemon=True)
        stopper.start()
        stopper.join(2)
        for _ in range(30):
            if not stopper.is_alive():
                return
            with contextlib.suppress(OSError):
                socket.create_connection((host, port), timeout=1).close()
            stopper.join(1)
        raise RuntimeError(f"the moto server on port {port} did not stop")

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _post(self, path: str, body: bytes = b"") -> Any:
        # Our own http://127.0.0.1 URL, never user input.
        url = self.endpoint + path
        # text/plain: with urllib's default form type, flask parses the body away and moto sees "".
        headers = {"Content-Type": "text/plain"}
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
        # Every moto-api call made here sets state (reset, the auth count), so sending it again is
        # safe; one retry rides out a connection the server reset before reading it.
        for attempt in range(2):
            try:
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                    text = response.read().decode()
                break
            except (ConnectionResetError, urllib.error.URLError) as error:
                reason = getattr(error, "reason", error)
                if attempt or not isinstance(reason, ConnectionResetError):
                    raise
        return json.loads(text) if text.strip().startswith("{") else text

    def reset(self) -> None:
        """Forget every resource (all services, all accounts)."""
        self.set_free_requests(None)
        self._post("/moto-api/reset")

    def set_free_requests(self, count: int | None) -> None:
        """Enforce IAM after ``count`` more unchecked requests; ``None`` switches enforcement off."""
        self._post("/moto-api/reset-auth", b"inf" if count is None else str(count).encode())

    @contextmanager
    def enforce_iam(self, free_requests: int = 0) -> Iterator[None]:
        """IAM is enforced inside the block (after ``free_requests`` unchecked requests)."""
        self.set_free_requests(free_requests)
        try:
            yield
        finally:
            self.set_free_requests(None)

    def client(self, service: str) -> Any:
        """An admin boto3 client on this server (for seeding and inspection)."""
        import boto3

        return boto3.client(service, **admin_session_kwargs(self.endpoint))


@contextmanager
def iam_enforced(free_requests: int = 0) -> Iterator[None]:
    """The in-process (``mock_aws``) equivalent of :meth:`MotoServer.enforce_iam`."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    old_count = settings.INITIAL_NO_AUTH_ACTION_COUNT
    old_requests = ActionAuthenticatorMixin.request_count
    settings.INITIAL_NO_AUTH_ACTION_COUNT = free_requests
    ActionAuthenticatorMixin.request_count = 0
    try:
        yield
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = old_count
        ActionAuthenticatorMixin.request_count = old_requests


def seed_secrets(client: Any, secrets: Mapping[str, str | bytes]) -> dict[str, str]:
    """Create secrets (``str`` -> SecretString, ``bytes`` -> SecretBinary); returns name -> ARN."""
    arns = {}
    for name, value in secrets.items():
        field = "SecretBinary" if isinstance(value, bytes) else "SecretString"
        arns[name] = client.create_secret(Name=name, **{field: value})["ARN"]
    return arns


def policy(*statements: Mapping[str, Any]) -> str:
    """An IAM policy document."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(*actions: str, resource: str = "*") -> dict[str, Any]:
    """An Allow statement."""
    return {"Effect": "Allow", "Action": list(actions), "Resource": resource}


def deny(*actions: str, resource: str = "*") -> dict[str, Any]:
    """A Deny statement (wins over any Allow)."""
    return {"Effect": "Deny", "Action": list(actions), "Resource": resource}


def create_user(iam: Any, name: str, policy_document: str) -> dict[str, str]:
    """An IAM user with an inline policy; returns env-style credentials for it."""
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=policy_document)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
    }


def create_web_identity_role(iam: Any, name: str, policy_document: str) -> str:
    """A role trusting the GitHub OIDC provider, with an inline policy; returns its ARN."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": OIDC_PROVIDER},
                "Action": "sts:AssumeRoleWithWebIdentity",
            }
        ],
    }
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName=f"{name}-policy", PolicyDocument=policy_document)
    return str(arn)
