"""A GitHub App for tests: its RSA key pair and the local GitHub REST server that knows its public half."""

from __future__ import annotations

__all__ = ["APP_ID", "AppKey", "private_pem", "server_for"]

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from jobsecrets.testing.github_api import GithubApiServer

from .oidc import generate_key, public_pem

APP_ID = 4242
PERMISSIONS = {"contents": "write", "issues": "write", "pull_requests": "write", "metadata": "read"}


def private_pem(key: rsa.RSAPrivateKey) -> str:
    """The private key as the PKCS#1 PEM GitHub hands out (BEGIN RSA PRIVATE KEY)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode("ascii")


class AppKey:
    """A key pair; ``pem`` is the private key as stored in Vault / Secrets Manager."""

    def __init__(self) -> None:
        self.key = generate_key()
        self.pem = private_pem(self.key)
        self.public = public_pem(self.key)


def server_for(app: AppKey, *, prefix: str = "", install: bool = True) -> GithubApiServer:
    """A server for ``app`` with the App installed on acme/{app,other} (not started)."""
    server = GithubApiServer(APP_ID, app.public, prefix=prefix)
    if install:
        server.install("acme", ["app", "other"], PERMISSIONS)
    return server
