"""Helpers of the AWS backend that need no boto3: option checks, error mapping, retry timing.

Kept apart from :mod:`jobsecrets.backends.aws` so the backend module stays about *what* it asks AWS,
while this one holds the rules (which codes mean "denied", which are worth a retry, what a valid
session name is). Nothing here imports boto3 or botocore at module level.
"""

from __future__ import annotations

__all__ = [
    "AUTH_CODES",
    "DENIED_CODES",
    "NOT_FOUND_CODES",
    "RETRYABLE_CODES",
    "UNSUPPORTED_CODES",
    "Failure",
    "backoff_delay",
    "chain_source",
    "classify_client_error",
    "credentials_problem",
    "default_session_name",
    "resolve_endpoint",
    "resolve_region",
    "validate_backend_options",
    "validate_secret_options",
]

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ...addresses import address_problem, header_problem, shown_address
from ...durations import parse_duration
from ...errors import ConfigError
from ...names import clean_text
from ...platforms import session_name
from ..retry import backoff_delay  # one backoff rule for every backend (retry.py)

# Error codes, as botocore parses them from the response. moto's IAM simulation answers JSON-protocol
# calls with an XML body that botocore cannot parse, so there the code is just the HTTP status ("403"):
# classification therefore also looks at the status.
DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied", "AuthorizationError"})
NOT_FOUND_CODES = frozenset({"ResourceNotFoundException"})
AUTH_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "ExpiredTokenException",
        "ExpiredToken",
        "InvalidIdentityToken",
        "IDPRejectedClaim",
        "MissingAuthenticationToken",
        "IncompleteSignature",
    }
)
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "LimitExceededException",
        "InternalServiceError",
        "InternalServiceErrorException",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "IDPCommunicationError",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
# Answers meaning "this endpoint does not know BatchGetSecretValue" (older emulators, proxies):
# like a denial, they send us to GetSecretValue per secret.
UNSUPPORTED_CODES = frozenset(
    {"UnknownOperationException", "InvalidAction", "NotImplemented", "UnsupportedOperation"}
)

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")
_SESSION_CHAR = re.compile(r"[^\w+=,.@-]")
_REGION = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_SECRET_ID = re.compile(r"^[A-Za-z0-9/_+=.@!:-]+\*?$")
_MIN_DURATION, _MAX_DURATION = 15 * 60, 12 * 3600


@dataclass(frozen=True)
class Failure:
    """What an AWS error means for us: a kind (``not_found``, ``denied``, ``auth``, ``retry``,
    ``unsupported``, ``invalid``, ``other``) and the code to show. Never carries AWS's message text.
    """

    kind: str
    code: str
    attempts: int = 1


def classify_client_error(response: Mapping[str, Any]) -> Failure:
    """Classify a botocore ``ClientError.response`` by its error code and HTTP status."""
    error = response.get("Error") or {}
    code = str(error.get("Code") or "")
    status = int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
    if code in NOT_FOUND_CODES:
        return Failure("not_found", code)
    if code in DENIED_CODES or status == 403 or code == "403":
        # A bare 403 (moto's IAM simulation, some proxies) is a denial; show a meaningful code.
        return Failure("denied", code if code in DENIED_CODES else "AccessDenied")
    if code in AUTH_CODES:
        return Failure("auth", code)
    if code in RETRYABLE_CODES or status >= 500 or status == 429:
        return Failure("retry", code or f"HTTP {status}")
    if code in UNSUPPORTED_CODES:
        return Failure("unsupported", code)
    if code in {"InvalidRequestException", "DecryptionFailure"}:
        return Failure("invalid", code)
    return Failure("other", code or f"HTTP {status}")


def default_session_name(env: Mapping[str, str]) -> str:
    """A RoleSessionName that shows up in CloudTrail as the CI job that asked.

    The CI platform names the job (:func:`jobsecrets.platforms.session_name`); characters STS
    refuses become ``-`` and the result is cut to 64 characters.
    """
    return _SESSION_CHAR.sub("-", session_name(env))[:64]


def resolve_region(options: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    """The region: the spec's ``region``, else ``AWS_REGION``, else ``AWS_DEFAULT_REGION``."""
    for source, value in (
        ("the spec's 'region'", options.get("region")),
        ("$AWS_REGION", env.get("AWS_REGION")),
        ("$AWS_DEFAULT_REGION", env.get("AWS_DEFAULT_REGION")),
    ):
        if value:
            # The spec's is checked at plan time; the environment's only here (botocore raised
            # InvalidRegionError from deep inside: an internal error).
            if not _REGION.fullmatch(str(value)):
                raise ConfigError(
                    f"{source} {clean_text(str(value), 60)!r} does not look like an AWS region "
                    "(e.g. eu-west-1)"
                )
            return str(value)
    return None


def chain_source(env: Mapping[str, str]) -> str:
    """Where the default credential chain will find credentials, named (never shown), for ``plan``."""
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return "default AWS credential chain: $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY"
    if env.get("AWS_PROFILE"):
        return f"default AWS credential chain: profile {env['AWS_PROFILE']!r} ($AWS_PROFILE)"
    return "default AWS credential chain (~/.aws config and credentials, SSO, instance role)"


def resolve_endpoint(
    options: Mapping[str, Any], env: Mapping[str, str], service_env: str
) -> str | None:
    """The endpoint for one service.

    The spec's ``endpoint_url`` wins (it was written on purpose, for this backend), then the
    service-specific ``AWS_ENDPOINT_URL_<SERVICE>``, then ``AWS_ENDPOINT_URL`` — the order boto3
    itself uses for the two variables.
    """
    if env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return str(options["endpoint_url"]) if options.get("endpoint_url") else None
    for source, value in (
        ("the spec's 'endpoint_url'", options.get("endpoint_url")),
        (f"$AWS_ENDPOINT_URL_{service_env}", env.get(f"AWS_ENDPOINT_URL_{service_env}")),
        ("$AWS_ENDPOINT_URL", env.get("AWS_ENDPOINT_URL")),
    ):
        if value:
            why = address_problem(str(value))
            if why:
                raise ConfigError(f"{source}: {why} (got {shown_address(str(value), 60)!r})")
            return str(value)
    return None


#: The fields of an STS answer's ``Credentials`` the role's session is made of.
CREDENTIAL_KEYS = ("AccessKeyId", "SecretAccessKey", "SessionToken")


def credentials_problem(credentials: object) -> str | None:
    """Why an STS answer's ``Credentials`` cannot sign requests; None when they can.

    STS always sends the three fields; an answer without them (a stand-in, a proxy, a broken
    endpoint) was a KeyError, "internal error". Each must be text an HTTP header carries (the
    key id and the session token travel in headers, all three are exported with
    ``credentials: true``). An ``Expiration``, when there is one, must be a time with its zone,
    still to come: one botocore could not read was its ValueError, "failed unexpectedly"; one
    without a zone a TypeError at the first read (botocore compares it with the time now), one
    past a RuntimeError there (credentials "still expired" after a refresh). Says which field,
    never its value.
    """
    if not isinstance(credentials, Mapping):
        return "no Credentials in the answer"
    for key in CREDENTIAL_KEYS:
        value = credentials.get(key)
        if not isinstance(value, str) or not value:
            return f"no {key}"
        if any(c.isspace() for c in value) or header_problem(value):
            return f"{key} holds spaces, control or non-ASCII characters"
    expiration = credentials.get("Expiration")
    if expiration is not None:
        if not isinstance(expiration, datetime):
            return "Expiration is no date and time"
        if expiration.utcoffset() is None:
            return "Expiration has no time zone"
        if expiration <= datetime.now(timezone.utc):
            return "Expiration has passed already: is this machine's clock right?"
    return None


def _duration_problem(value: object) -> str | None:
    try:
        seconds = parse_duration(value)
    except ValueError as error:
        return f"duration: {error}"
    if not _MIN_DURATION <= seconds <= _MAX_DURATION:
        return f"duration: {value!r} is outside what STS allows (15m to 12h)"
    return None


def validate_backend_options(options: Mapping[str, Any]) -> list[str]:
    """Type and value problems of an ``aws`` backend's options."""
    problems: list[str] = []

    def text(key: str) -> str | None:
        value = options.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{key}: must be a non-empty string")
            return None
        return value

    region = text("region")
    if region is not None and not _REGION.fullmatch(region):
        problems.append(f"region: {region!r} does not look like an AWS region (e.g. eu-west-1)")
    endpoint = text("endpoint_url")
    if endpoint is not None and (why := address_problem(endpoint)):
        problems.append(f"endpoint_url: {why} (got {shown_address(endpoint, 60)!r})")
    role_arn = text("role_arn")
    if role_arn is not None and not _ROLE_ARN.fullmatch(role_arn):
        problems.append(
            f"role_arn: {role_arn!r} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)"
        )
    text("audience")
    session_name = text("session_name")
    if session_name is not None and not _SESSION_NAME.fullmatch(session_name):
        problems.append(
            f"session_name: {session_name!r} must be 2 to 64 characters of letters, digits and +=,.@_-"
        )
    if "duration" in options:
        problem = _duration_problem(options["duration"])
        if problem:
            problems.append(problem)
    for key in ("credentials", "batch"):
        if key in options and not isinstance(options[key], bool):
            problems.append(f"{key}: must be true or false")
    if "max_attempts" in options:
        value = options["max_attempts"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 20:
            problems.append("max_attempts: must be a whole number from 1 to 20")
    if options.get("credentials") is True and not options.get("role_arn"):
        # Exporting whatever the default chain holds could hand a long-lived key to the job.
        problems.append(
            "credentials: true needs role_arn (only short-lived role credentials are exported)"
        )
    for key in ("audience", "session_name", "duration"):
        if key in options and not options.get("role_arn"):
            problems.append(f"{key}: only meaningful with role_arn")
    return problems


def validate_secret_options(path: str, options: Mapping[str, Any]) -> list[str]:
    """Problems of one secret id and its per-secret options."""
    problems: list[str] = []
    if not isinstance(path, str) or not path:
        problems.append("the secret id is empty")
    elif len(path) > 2048 or not _SECRET_ID.fullmatch(path):
        problems.append(
            f"{path!r} is not a Secrets Manager name or ARN (letters, digits and /_+=.@-)"
        )
    stage = options.get("version_stage")
    version_id = options.get("version_id")
    if stage is not None and (not isinstance(stage, str) or not 1 <= len(stage) <= 256):
        problems.append("version_stage: must be a string of 1 to 256 characters (e.g. AWSPREVIOUS)")
    if version_id is not None and (
        not isinstance(version_id, str) or not 32 <= len(version_id) <= 64
    ):
        problems.append("version_id: must be a version id string of 32 to 64 characters")
    if stage is not None and version_id is not None:
        problems.append("version_stage and version_id are mutually exclusive")
    if (
        (stage is not None or version_id is not None)
        and isinstance(path, str)
        and path.endswith("*")
    ):
        problems.append("version_stage/version_id cannot be used with a prefix selection")
    return problems
