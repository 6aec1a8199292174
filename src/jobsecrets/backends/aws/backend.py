"""AWS Secrets Manager backend (botocore), signed in with the CI job's identity through STS.

How it talks to AWS:

- Sign-in: with ``role_arn``, one unsigned ``AssumeRoleWithWebIdentity`` with the CI job's OIDC token
  (``context.identity(audience)``); otherwise the default AWS credential chain. Credentials are
  static for the backend's lifetime: reads happen at the start of a job, and ``duration`` (default
  15m, or 1h when ``credentials: true`` hands them to the job) bounds how long they are worth stealing.
- Reads: ``BatchGetSecretValue`` (20 ids a call, calls run concurrently) when more than one secret is
  wanted; per-secret ``Errors`` map to that secret's request. When the batch API itself is denied or
  unknown to the endpoint, and for reads pinned to a ``version_stage``/``version_id`` (which the batch
  API cannot express), ``GetSecretValue`` per secret, concurrently and bounded.
- Retries: botocore's own retries are off (``total_max_attempts: 1``) and this module retries throttling,
  5xx and connection failures itself, with full-jitter exponential backoff that never sleeps past the
  overall deadline, so one retry policy applies and it knows the deadline.
- Messages: built here from the variable names, the secret id and the AWS error *code*; AWS's message
  text and botocore's exception text are never shown, and botocore exceptions are not chained.

botocore is imported only inside methods: ``jobsecrets plan`` loads this class without it. botocore,
not boto3: boto3 adds resources and the S3 transfer manager, none of which a Secrets Manager or STS
client uses, and importing it (s3transfer, concurrent.futures) cost ~40 ms of every AWS run on a
2-core runner (whole processes, `import boto3` + a client against `import botocore.session` + the
same client: 0.445 s against 0.40 s), and 141 files of every install.
"""

from __future__ import annotations

__all__ = ["AwsBackend"]

import contextlib
import dataclasses
import logging
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from ... import unshown
from ...addresses import shown_address
from ...durations import parse_duration
from ...errors import (
    AccessDenied,
    AuthError,
    BackendError,
    ConfigError,
    IdentityError,
    JobSecretsError,
    SecretNotFound,
    StoreUnavailable,
)
from ..base import AccessCheck, Backend, BackendContext, Document, ReadRequest, ResultHook
from .support import (
    Failure,
    backoff_delay,
    chain_source,
    classify_client_error,
    credentials_problem,
    default_session_name,
    resolve_endpoint,
    resolve_region,
    validate_backend_options,
    validate_secret_options,
)

log = logging.getLogger("jobsecrets")

if TYPE_CHECKING:
    import botocore.session
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sts import STSClient

T = TypeVar("T")

_SAFE_CODE = re.compile(r"[^A-Za-z0-9._ -]")


def _new_session(
    *,
    region: str | None = None,
    profile: str | None = None,
    credentials: tuple[str, str, str | None] | None = None,
    loader_from: botocore.session.Session | None = None,
) -> botocore.session.Session:
    """A botocore session, as ``boto3.session.Session(...)`` makes one for a client.

    ``credentials``: access key id, secret key and session token (``None``: the default chain).
    ``loader_from``: a session whose data loader (endpoints.json, the service models, already
    parsed) the new one shares. Nothing is read or checked here: a missing profile surfaces at the
    first look at the configuration.
    """
    import botocore.session

    from .models import register_loader

    session = botocore.session.Session()
    if loader_from is not None:
        session.register_component("data_loader", loader_from.get_component("data_loader"))
    else:
        # botocore's loader, but a client's model is found without listing all ~445 services.
        register_loader(session)
    if profile is not None:
        session.set_config_variable("profile", profile)
    if credentials is not None:
        session.set_credentials(*credentials)
    if region is not None:
        session.set_config_variable("region", region)
    return session


def _later_credentials(arrived: Mapping[str, Any]) -> Any:
    """A botocore credential resolver whose credentials are ``arrived``, read at the first call.

    For a client made before its credentials exist (the role's, while STS still answers): what
    botocore's own web-identity provider returns, deferred refreshable credentials. ``arrived``
    is filled before any call of the client; a "refresh" (botocore asks again as they near their
    end) gets the same credentials, since a CI job's token is not asked for twice.
    """
    from botocore.credentials import (
        CredentialProvider,
        CredentialResolver,
        DeferredRefreshableCredentials,
    )

    def current() -> dict[str, Any]:
        if not arrived:
            raise RuntimeError("the role's credentials were used before they arrived")
        return dict(arrived)

    class _Later(CredentialProvider):
        METHOD = "assume-role-with-web-identity"

        def load(self) -> Any:
            return DeferredRefreshableCredentials(refresh_using=current, method=self.METHOD)

    return CredentialResolver(providers=[_Later()])


class _UnreadableTime:
    """A time in an answer that botocore could not read; its text is not kept (it may be a
    credential, sent where the time belongs)."""

    def __repr__(self) -> str:
        return "<unreadable time>"


_UNREADABLE_TIME = _UnreadableTime()


@contextlib.contextmanager
def _lenient_times(session: botocore.session.Session) -> Iterator[None]:
    """While a client of ``session`` is made: a botocore response parser factory whose parsers
    make a time they cannot read :data:`_UNREADABLE_TIME` instead of raising (ValueError,
    RuntimeError, OverflowError). An STS answer's ``Expiration`` is then refused by name
    (:func:`.support.credentials_problem`), not an error that says nothing of which field, or
    quotes it; a Secrets Manager ``CreatedDate`` is unknown. Made the session's only while the
    client is made (clients take their parser then): the session's other clients keep
    botocore's. The clients of one session are made one after another (``login``)."""
    from botocore.parsers import ResponseParserFactory
    from botocore.utils import parse_timestamp

    def timestamp(value: Any) -> Any:
        try:
            return parse_timestamp(value)
        except Exception:
            return _UNREADABLE_TIME

    factory = ResponseParserFactory()
    factory.set_parser_defaults(timestamp_parser=timestamp)
    usual = session.get_component("response_parser_factory")
    session.register_component("response_parser_factory", factory)
    try:
        yield
    finally:
        session.register_component("response_parser_factory", usual)


_DEFAULT_AUDIENCE = "sts.amazonaws.com"
_VERSION_KEYS = ("version_stage", "version_id")
# Marker for "read this id with GetSecretValue instead" in batch outcomes.
_INDIVIDUAL = None
#: What a batch call made of one id: its entry, a failure, an exception that is one, or
#: :data:`_INDIVIDUAL`.
_Outcome = Mapping[str, Any] | Failure | Exception | None


class AwsBackend(Backend):
    """Secrets from AWS Secrets Manager; ``Document.data`` is the SecretString (``str``) or the
    SecretBinary (exact ``bytes``). JSON parsing and field selection are the resolver's job.
    """

    type_name: ClassVar[str] = "aws"
    OPTIONS: ClassVar[Mapping[str, str]] = {
        "region": "AWS region (default: $AWS_REGION, then $AWS_DEFAULT_REGION, then the AWS profile)",
        "endpoint_url": "Secrets Manager and STS endpoint (default: $AWS_ENDPOINT_URL_SECRETS_MANAGER / "
        "$AWS_ENDPOINT_URL_STS, then $AWS_ENDPOINT_URL)",
        "role_arn": "IAM role to assume with the CI job's OIDC token (AssumeRoleWithWebIdentity); "
        "without it, the default AWS credential chain",
        "audience": f"audience of the OIDC token requested for role_arn (default {_DEFAULT_AUDIENCE})",
        "session_name": "RoleSessionName for role_arn (default: derived from the CI run or job id)",
        "duration": "lifetime of the role credentials, 15m to 12h "
        "(default 15m, or 1h with credentials: true)",
        "credentials": "true: export the role's short-lived AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY "
        "and AWS_SESSION_TOKEN to the job (needs role_arn)",
        "batch": "use BatchGetSecretValue for several secrets (default true)",
        "max_attempts": "attempts per AWS call when throttled or failing with 5xx (default 5, 1-20)",
    }
    #: The read's CreatedDate is the version's; LastRotatedDate needs DescribeSecret (policy max_age).
    EXPORTED_NAMES: ClassVar[tuple[str, ...]] = ("AWS_*",)
    SECRET_OPTIONS: ClassVar[Mapping[str, str]] = {
        "version_stage": "read the version with this staging label (e.g. AWSPREVIOUS)",
        "version_id": "read this exact version id (exclusive with version_stage)",
    }

    #: STS credentials cannot be revoked and nothing here is renewed: once resolution ends, only a
    #: ``max_age`` rule's DescribeSecret still talks to AWS. So botocore's import (~0.2 s of CPU
    #: with the client) may run on the other core (backends/forked.py).
    RUNS_APART: ClassVar[str] = "botocore"
    #: Secret ids per BatchGetSecretValue call: the API's maximum.
    BATCH_SIZE: ClassVar[int] = 20
    #: MaxResults for ListSecrets pages (the API's maximum is 100).
    LIST_PAGE_SIZE: ClassVar[int] = 100
    #: Upper bound on concurrent AWS calls (and so on pooled connections).
    MAX_CONCURRENCY: ClassVar[int] = 8
    #: First backoff step and cap, in seconds.
    RETRY_BASE: ClassVar[float] = 0.2
    RETRY_CAP: ClassVar[float] = 5.0

    def __init__(self, name: str, options: Mapping[str, Any], context: BackendContext) -> None:
        super().__init__(name, options, context)
        self.region: str | None = None
        self.api_calls: Counter[str] = Counter()
        self.batch_fallback: str | None = None
        self._max_attempts = int(self.options.get("max_attempts", 5))
        self._lock = threading.Lock()
        self._session: botocore.session.Session | None = None
        self._sm: SecretsManagerClient | None = None
        self._endpoint: str | None = None
        self._role_credentials: Mapping[str, Any] | None = None
        self._assumed_user: Mapping[str, Any] | None = None
        self._session_name: str | None = None
        self._caller: Mapping[str, Any] | None = None
        #: The local fallback's line when it was used instead of ``role_arn``.
        self._fallback: str | None = None
        #: The CI identity token being fetched while botocore loads (``login``), taken once.
        self._identity: Callable[[], str] | None = None
        # Paths resolution will read (expect_reads): connections to open while signing in.
        self._reads_ahead = 0

    # ---- static description -------------------------------------------------------------

    def location(self) -> str:
        """The Secrets Manager endpoint, else the region (once signed in)."""
        return self._endpoint or self.region or ""

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> list[str]:
        """Type and value problems of the backend options (no network, no botocore)."""
        return validate_backend_options(options)

    @classmethod
    def validate_secret(cls, path: str, options: Mapping[str, Any]) -> list[str]:
        """Problems of a secret id (name, ARN or ``prefix/*``) and its version options."""
        return validate_secret_options(path, options)

    @classmethod
    def describe_target(cls, options: Mapping[str, Any], env: Mapping[str, str]) -> str:
        """The region and, when one is set, the endpoint (a local moto, a VPC endpoint)."""
        region = resolve_region(options, env) or "from the AWS profile"
        endpoint = resolve_endpoint(options, env, "SECRETS_MANAGER")
        return f"region {region}" + (f", endpoint {shown_address(endpoint)}" if endpoint else "")

    @classmethod
    def describe_credentials(
        cls, options: Mapping[str, Any], env: Mapping[str, str], local: bool
    ) -> str:
        """The role and the CI identity, or where the default chain finds its credentials."""
        if options.get("role_arn") and not local:
            return cls.describe_auth(options)
        return cls.local_fallback(options, env) or chain_source(env)

    @classmethod
    def local_fallback(cls, options: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
        """``role_arn`` needs a CI identity: off CI, the default chain (``AWS_PROFILE`` picks a
        profile) instead; the role is not assumed and ``credentials: true`` exports nothing."""
        if not options.get("role_arn"):
            return None
        return f"{chain_source(env)} instead of role_arn (local run: no CI identity)"

    @classmethod
    def describe_auth(cls, options: Mapping[str, Any]) -> str:
        """``web identity (role ARN, audience AUD)`` or ``default AWS credential chain``."""
        role_arn = options.get("role_arn")
        if role_arn:
            audience = options.get("audience") or _DEFAULT_AUDIENCE
            return f"web identity (role {role_arn}, audience {audience})"
        return "default AWS credential chain"

    # ---- sign-in ------------------------------------------------------------------------

    @property
    def client(self) -> SecretsManagerClient:
        """The Secrets Manager client (after :meth:`login`); thread-safe, shared by every read."""
        if self._sm is None:
            raise BackendError(f"backend {self.name!r}: login() was not called")
        return self._sm

    def _duration(self) -> int:
        if "duration" in self.options:
            return parse_duration(self.options["duration"])
        # Only jobsecrets uses the credentials unless they are exported: 15m (the STS minimum) is
        # plenty for that; exported ones must outlive the job's steps.
        return 3600 if self.options.get("credentials") else 900

    def _config(self, **extra: Any) -> Any:
        from botocore.config import Config

        timeout = self.context.timeout
        return Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            # Room for every concurrent call plus the occasional STS call, so no connection is dropped.
            max_pool_connections=self.MAX_CONCURRENCY + 2,
            # Retries are ours (deadline-aware, see module docstring); botocore must not multiply them.
            retries={"mode": "standard", "total_max_attempts": 1},
            user_agent_extra="jobsecrets",
            **extra,
        )

    def _chain_kwargs(self) -> dict[str, Any]:
        """Credentials from ``context.env`` (the environment jobsecrets was given, which may not be
        ``os.environ``); empty to let botocore's default chain look further (profile, SSO, IMDS,
        ...). Keys: those of :func:`_new_session`.
        """
        env = self.context.env
        if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            token = env.get("AWS_SESSION_TOKEN") or None
            unshown.remember(env["AWS_SECRET_ACCESS_KEY"])
            unshown.remember(token)
            return {"credentials": (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], token)}
        if env.get("AWS_PROFILE"):
            return {"profile": env["AWS_PROFILE"]}
        return {}

    def login(self) -> None:
        """Create the session and client; with ``role_arn``, assume the role with the CI identity."""
        env = self.context.env
        region = resolve_region(self.options, env)
        role_arn = self.options.get("role_arn")
        fallback = self.local_fallback(self.options, env)
        if self.context.local and fallback:
            # A CI spec run on a laptop: the user's own credentials instead of the role.
            log.warning("backend %r: %s", self.name, fallback)
            self._fallback = fallback
            role_arn = None
        if role_arn and self.context.identity is not None:
            # The CI identity token's round trips overlap botocore's import and the STS client's
            # construction (~0.3 s of CPU) instead of following them.
            self._identity = self.identity_soon(self._audience())
        from botocore.exceptions import ProfileNotFound

        base = _new_session(region=region, **({} if role_arn else self._chain_kwargs()))
        try:
            # A missing profile is found here (reading the shared config), not in the first call.
            base.get_scoped_config()
            region = region or base.get_config_variable("region")
        except ProfileNotFound:
            raise ConfigError(
                f"backend {self.name!r}: AWS profile {env.get('AWS_PROFILE')!r} does not exist"
            ) from None
        if not region:
            raise ConfigError(
                f"backend {self.name!r}: no AWS region",
                hint="set 'region' in the spec, or AWS_REGION in the environment",
            )
        self.region = region
        self._endpoint = resolve_endpoint(self.options, env, "SECRETS_MANAGER")
        if not role_arn:
            self._set_client(base, self._new_client(base))
            return
        # The role's session and its Secrets Manager client exist before the role does: their
        # credentials are those AssumeRoleWithWebIdentity returns, taken at the first call. So
        # the reads' connections open while STS answers (jobsecrets.backends.preconnect).
        # STS's client first, with its connection opened ahead: it connects while the Secrets
        # Manager client is built (~50 ms of CPU, its service model), so AssumeRoleWithWebIdentity
        # goes out on an open connection, one round trip instead of two.
        from botocore import UNSIGNED

        self._preflight_identity()
        # AssumeRoleWithWebIdentity is unsigned by design: the OIDC token is the credential, and
        # a CI runner has no AWS credentials to sign with.
        sts = self._sts_client(base, signature_version=UNSIGNED)
        self._open_ahead(sts, 1)
        role = _new_session(region=region, loader_from=base)
        arrived: dict[str, Any] = {}
        role.register_component("credential_provider", _later_credentials(arrived))
        try:
            client = self._new_client(role)
        except BaseException:
            sts.close()
            raise
        if self._reads_ahead:
            ahead = self._reads_ahead
            if self.options.get("batch", True):
                ahead = -(-ahead // self.BATCH_SIZE)  # one connection per batch of ids
            self._open_ahead(client, min(ahead, self.MAX_CONCURRENCY))
            self._reads_ahead = 0
        try:
            arrived.update(self._assume_role(sts, str(role_arn)))
        except BaseException:
            client.close()  # never signed in: nothing may call it
            raise
        self._set_client(role, client)

    def expect_reads(self, paths: int) -> None:
        """Remember how many reads follow: with ``role_arn`` their connections open during STS."""
        self._reads_ahead = max(0, paths)

    def _new_client(self, session: botocore.session.Session) -> SecretsManagerClient:
        """A Secrets Manager client of ``session`` in this backend's region and endpoint, its
        answers read up to a size (:mod:`.bounded`)."""
        from .bounded import bound_answers

        # A CreatedDate botocore cannot read is an unknown date, not a failed read of the value
        # (the date feeds only the audit log and a policy's max_age).
        with _lenient_times(session):
            client = session.create_client(
                "secretsmanager",
                region_name=self.region,
                endpoint_url=self._endpoint,
                config=self._config(),
            )
        bound_answers(client)
        return cast("SecretsManagerClient", client)

    def _set_client(self, session: botocore.session.Session, client: SecretsManagerClient) -> None:
        """Signed in: ``session`` and its ``client`` are this backend's from now on."""
        with self._lock:
            self._session = session
            self._sm = client

    def _open_ahead(self, client: Any, count: int) -> None:
        """Open ``count`` connections in the pool ``client``'s calls will take theirs from.

        botocore has no public way to its pools: this follows what its ``URLLib3Session.send``
        does for a request, and does nothing if that ever changes (or through a proxy).
        """
        from ..preconnect import open_ahead

        try:
            url = client.meta.endpoint_url
            http = client._endpoint.http_session
            if http._proxy_config.proxy_url_for(url):
                return
            pool = http._get_connection_manager(url, None).connection_from_url(url)
            http._setup_ssl_cert(pool, url, http._verify)
        except Exception:
            return
        open_ahead(pool, count, self.context.timeout)

    def _sts_client(self, session: botocore.session.Session, **config: Any) -> STSClient:
        """An STS client of ``session`` in this backend's region and endpoint (``config``: extra
        ``botocore.config.Config`` settings, e.g. an unsigned client), its answers read up to a
        size (:mod:`.bounded`)."""
        from .bounded import bound_answers

        with _lenient_times(session):
            client = session.create_client(
                "sts",
                region_name=self.region,
                endpoint_url=resolve_endpoint(self.options, self.context.env, "STS"),
                config=self._config(**config),
            )
        bound_answers(client)
        return cast("STSClient", client)

    def _audience(self) -> str:
        return str(self.options.get("audience") or _DEFAULT_AUDIENCE)

    def _identity_token(self, audience: str) -> str:
        if self._identity is not None:
            identity, self._identity = self._identity, None
            return identity()
        if self.context.identity is None:
            raise IdentityError(
                f"backend {self.name!r}: role_arn needs the CI job's identity token, "
                "and no CI identity is available here",
                hint="run in a CI job with OIDC enabled, or drop role_arn to use the default AWS chain",
            )
        return self.context.identity(audience)

    def _preflight_identity(self) -> None:
        """Raise now when there is no CI identity to assume a role with, before building anything."""
        if self._identity is None and self.context.identity is None:
            self._identity_token(self._audience())  # raises IdentityError

    def _assume_role(self, sts: STSClient, role_arn: str) -> dict[str, Any]:
        """AssumeRoleWithWebIdentity with the CI identity through ``sts`` (an unsigned client,
        closed here); the role's credentials, as botocore's refreshable credentials take them
        (see :func:`_later_credentials`)."""
        audience = self._audience()
        session_name = str(
            self.options.get("session_name") or default_session_name(self.context.env)
        )
        try:
            # Taken only now: the fetch started in login() ran while the client was built.
            token = self._identity_token(audience)
        except BaseException:
            sts.close()
            raise
        try:
            response = self._call(
                "AssumeRoleWithWebIdentity",
                lambda: sts.assume_role_with_web_identity(
                    RoleArn=role_arn,
                    RoleSessionName=session_name,
                    WebIdentityToken=token,
                    DurationSeconds=self._duration(),
                ),
            )
        except Exception as exc:
            raise self._login_error(exc, role_arn, audience) from None
        finally:
            sts.close()
        answer: object = response.get("Credentials") if isinstance(response, Mapping) else None
        why = credentials_problem(answer)
        if why:
            raise AuthError(
                f"backend {self.name!r}: AssumeRoleWithWebIdentity for role {role_arn} "
                f"returned no usable credentials ({why})",
                hint="the STS endpoint (or a proxy before it) answered with something AWS "
                "never sends: check AWS_ENDPOINT_URL / 'endpoint_url:' if set",
            )
        credentials = cast("Mapping[str, Any]", answer)  # checked just above
        # Credentials: never printed, whatever an error text quotes (jobsecrets.unshown).
        unshown.remember(credentials.get("SecretAccessKey"))
        unshown.remember(credentials.get("SessionToken"))
        expiration = credentials.get("Expiration")
        if not isinstance(expiration, datetime):
            # STS always says; an answer that does not gets the duration asked for.
            expiration = datetime.now(timezone.utc) + timedelta(seconds=self._duration())
        self._role_credentials = {**credentials, "Expiration": expiration}
        assumed = response.get("AssumedRoleUser")
        self._assumed_user = dict(assumed) if isinstance(assumed, Mapping) else {}
        self._session_name = session_name
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": expiration.isoformat(),
        }

    def _login_error(self, exc: Exception, role_arn: str, audience: str) -> JobSecretsError:
        from botocore.exceptions import ClientError

        what = f"backend {self.name!r}: AssumeRoleWithWebIdentity for role {role_arn}"
        if isinstance(exc, ClientError):
            failure = classify_client_error(exc.response)
            if failure.kind in {"denied", "auth", "invalid", "not_found"} or failure.code in {
                "InvalidParameterValue",
                "MalformedPolicyDocument",
            }:
                return AuthError(
                    f"{what} was refused ({_safe(failure.code)})",
                    hint="check the role's trust policy: the OIDC provider, the audience "
                    f"{audience!r} and the subject conditions must match this CI job",
                )
        return self._map_exception(exc, what, None, "AssumeRoleWithWebIdentity")

    # ---- calls, retries and error mapping -------------------------------------------------

    def _deadline_left(self) -> float:
        if self.context.deadline is None:
            return math.inf
        return self.context.deadline - time.monotonic()

    def _call(self, operation: str, call: Callable[[], T]) -> T:
        """Run one AWS call, retrying throttling, 5xx and connection failures within the deadline."""
        from botocore.exceptions import (
            ClientError,
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            ReadTimeoutError,
        )

        attempt = 0
        while True:
            if self._deadline_left() <= 0:
                # Past the overall deadline nothing new starts (the resolver gave up already).
                raise StoreUnavailable.about(
                    f"backend {self.name!r}: {operation}", "abandoned: the overall deadline passed"
                )
            with self._lock:
                self.api_calls[operation] += 1
            try:
                return call()
            except ClientError as error:
                if classify_client_error(error.response).kind != "retry":
                    raise
                failure: Exception = error
            except (
                EndpointConnectionError,
                ConnectionClosedError,
                ConnectTimeoutError,
                ReadTimeoutError,
            ) as error:
                failure = error
            attempt += 1
            delay = backoff_delay(attempt - 1, self.RETRY_BASE, self.RETRY_CAP)
            if attempt >= self._max_attempts or delay >= self._deadline_left():
                failure.jobsecrets_attempts = attempt  # type: ignore[attr-defined]
                raise failure
            self.context.sleep(delay)

    def _map_exception(
        self, exc: BaseException, what: str, secret_id: str | None, operation: str
    ) -> JobSecretsError:
        """Turn any exception of an AWS call into our error, naming ``what`` and the secret id."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            ParamValidationError,
            ReadTimeoutError,
        )

        from .bounded import AnswerTooLarge

        if isinstance(exc, JobSecretsError):
            return exc
        attempts = getattr(exc, "jobsecrets_attempts", 1)
        if isinstance(exc, ClientError):
            return self._failure_error(
                classify_client_error(exc.response), what, secret_id, operation, attempts
            )
        target = f" for AWS secret {secret_id!r}" if secret_id else ""
        if isinstance(exc, AnswerTooLarge):
            # Exit 6, as Vault's: the endpoint's failure, not retried (it would send it again).
            return BackendError(f"{what}: {operation}{target}: {exc}: not read")
        if isinstance(exc, NoCredentialsError):
            return AuthError(
                f"{what}: no AWS credentials found{target}",
                hint="set role_arn to use the CI identity, or provide credentials "
                "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, instance role)",
            )
        if isinstance(
            exc,
            (EndpointConnectionError, ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError),
        ):
            where = self._endpoint or f"the {self.region} endpoint"
            return BackendError(
                f"{what}: {operation}{target} could not reach AWS at {where} "
                f"({type(exc).__name__}, {attempts} attempt(s))"
            )
        if isinstance(exc, ParamValidationError):
            # botocore's text would quote the parameters; say which call instead.
            return ConfigError(f"{what}: AWS rejected the parameters of {operation}{target}")
        if isinstance(exc, BotoCoreError):
            return BackendError(f"{what}: {operation}{target} failed ({type(exc).__name__})")
        return BackendError(
            f"{what}: {operation}{target} failed unexpectedly ({type(exc).__name__})"
        )

    def _failure_error(
        self,
        failure: Failure,
        what: str,
        secret_id: str | None,
        operation: str,
        attempts: int = 1,
    ) -> JobSecretsError:
        code = _safe(failure.code)
        secret = f"AWS secret {secret_id!r}" if secret_id else "AWS"
        if failure.kind == "not_found":
            return SecretNotFound(
                f"{what}: {secret} was not found (backend {self.name!r}, region {self.region})",
                hint="check the name or ARN, the region and the version options",
            )
        if failure.kind == "denied":
            return AccessDenied(
                f"{what}: {operation} on {secret} was denied ({code})",
                hint=f"allow secretsmanager:{operation} on it for this identity "
                "(and kms:Decrypt if it uses a customer managed key)",
            )
        if failure.kind == "auth":
            return AuthError(f"{what}: AWS rejected the credentials ({code}) on {operation}")
        if failure.kind == "invalid" and failure.code == "DecryptionFailure":
            return AccessDenied(
                f"{what}: {secret} could not be decrypted ({code})",
                hint="allow kms:Decrypt on the secret's KMS key for this identity",
            )
        if failure.kind == "invalid":
            return SecretNotFound(
                f"{what}: {secret} cannot be read ({code}): it may be scheduled for deletion"
            )
        if failure.kind == "retry":
            return BackendError(
                f"{what}: {operation} on {secret} kept failing ({code}) after {attempts} attempt(s)"
            )
        return BackendError(f"{what}: {operation} on {secret} failed ({code})")

    # ---- reads --------------------------------------------------------------------------

    @staticmethod
    def _versioned(request: ReadRequest) -> bool:
        return any(request.options.get(key) is not None for key in _VERSION_KEYS)

    def _document(self, entry: Mapping[str, Any], request: ReadRequest) -> Document:
        if entry.get("SecretString") is not None:
            data: str | bytes = entry["SecretString"]
        elif entry.get("SecretBinary") is not None:
            data = bytes(entry["SecretBinary"])
        else:
            raise SecretNotFound(
                f"{request.describe()}: AWS secret {request.path!r} has no value in that version"
            )
        updated = entry.get("CreatedDate")
        return Document(
            data=data,
            version=entry.get("VersionId"),
            # CreatedDate of the version read is when this value was last set (rotated or changed).
            updated=updated if isinstance(updated, datetime) else None,
            age_source="version created" if isinstance(updated, datetime) else "",
            dynamic=False,
            details={
                "arn": entry.get("ARN", ""),
                "name": entry.get("Name", ""),
                "version_stages": list(entry.get("VersionStages") or []),
            },
        )

    def read(self, request: ReadRequest) -> Document:
        """``GetSecretValue`` for one secret, honouring ``version_stage``/``version_id``."""
        client = self.client
        kwargs: dict[str, Any] = {"SecretId": request.path}
        if request.options.get("version_stage") is not None:
            kwargs["VersionStage"] = request.options["version_stage"]
        if request.options.get("version_id") is not None:
            kwargs["VersionId"] = request.options["version_id"]
        try:
            response = self._call("GetSecretValue", lambda: client.get_secret_value(**kwargs))
        except Exception as exc:
            raise self._map_exception(
                exc, request.describe(), request.path, "GetSecretValue"
            ) from None
        return self._document(response, request)

    def _pool_map(self, fn: Callable[[Any], T], items: Sequence[Any], workers: int) -> list[T]:
        if len(items) <= 1 or workers <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
            return list(pool.map(fn, items))

    def _batch_chunk(self, ids: Sequence[str]) -> dict[str, _Outcome]:
        """One ``BatchGetSecretValue`` for up to 20 ids: per id, the value entry, a failure (or
        the exception that is one), or ``None`` (read it with ``GetSecretValue``: batch
        denied/unsupported, or no answer for it).
        """
        from botocore.exceptions import ClientError

        from .bounded import AnswerTooLarge

        client = self.client
        entries: list[Mapping[str, Any]] = []
        errors: dict[str, Failure] = {}
        kwargs: dict[str, Any] = {"SecretIdList": list(ids)}
        try:
            while True:
                response = self._call(
                    "BatchGetSecretValue", lambda: client.batch_get_secret_value(**kwargs)
                )
                entries.extend(response.get("SecretValues") or [])
                for error in response.get("Errors") or []:
                    failure = classify_client_error({"Error": {"Code": error.get("ErrorCode")}})
                    errors[str(error.get("SecretId"))] = failure
                token = response.get("NextToken")
                if not token or token == kwargs.get("NextToken"):
                    break
                kwargs["NextToken"] = token
        except ClientError as exc:
            failure = classify_client_error(exc.response)
            if failure.kind in {"denied", "unsupported"}:
                self.batch_fallback = failure.code
                return dict.fromkeys(ids, _INDIVIDUAL)
            attempts = getattr(exc, "jobsecrets_attempts", 1)
            return dict.fromkeys(ids, Failure(failure.kind, failure.code, attempts))
        except AnswerTooLarge as exc:
            # Each id read again on its own would be sent as much again: the batch's failure.
            return dict.fromkeys(ids, exc)
        except Exception:
            # Connection trouble after retries and the like: let each id try on its own.
            return dict.fromkeys(ids, _INDIVIDUAL)
        by_name = {str(e.get("Name")): e for e in entries}
        by_arn = {str(e.get("ARN")): e for e in entries}
        outcome: dict[str, _Outcome] = {}
        for sid in ids:
            entry = by_name.get(sid) or by_arn.get(sid) or _partial_arn_match(sid, entries)
            if entry is not None:
                outcome[sid] = entry
            elif sid in errors and errors[sid].kind != "retry":
                outcome[sid] = errors[sid]
            else:
                outcome[sid] = _INDIVIDUAL
        return outcome

    def read_many(
        self,
        requests: Sequence[ReadRequest],
        max_workers: int = 8,
        on_result: ResultHook | None = None,
    ) -> list[Document | JobSecretsError]:
        """Read every request: batched by 20 where possible, the rest one by one; in order.

        ``on_result`` hears of each result once all are read: nothing of Secrets Manager's is
        leased, so nothing gains from hearing earlier.
        """
        workers = max(1, min(max_workers, self.MAX_CONCURRENCY))
        results: list[Document | JobSecretsError | None] = [None] * len(requests)
        plain: dict[str, list[int]] = {}
        single: list[int] = []
        for index, request in enumerate(requests):
            if self._versioned(request):
                single.append(index)
            else:
                plain.setdefault(request.path, []).append(index)
        use_batch = self.options.get("batch", True) and self.batch_fallback is None
        if use_batch and len(plain) > 1:
            ids = list(plain)
            chunks = [ids[i : i + self.BATCH_SIZE] for i in range(0, len(ids), self.BATCH_SIZE)]
            for outcome in self._pool_map(self._batch_chunk, chunks, workers):
                for sid, got in outcome.items():
                    if got is _INDIVIDUAL:
                        single.extend(plain[sid])
                        continue
                    for index in plain[sid]:
                        results[index] = self._finish(got, requests[index])
        else:
            for indexes in plain.values():
                single.extend(indexes)
        single.sort()
        done = self._pool_map(self.read_safely, [requests[i] for i in single], workers)
        for index, result in zip(single, done, strict=True):
            results[index] = result
        done_all = [r if r is not None else BackendError("internal: no result") for r in results]
        for request, result in zip(requests, done_all, strict=True):
            if on_result is not None:
                on_result(request, result)
        return done_all

    def _finish(
        self, got: Mapping[str, Any] | Failure | Exception, request: ReadRequest
    ) -> Document | JobSecretsError:
        if isinstance(got, Exception):
            return self._map_exception(got, request.describe(), request.path, "BatchGetSecretValue")
        if isinstance(got, Failure):
            return self._failure_error(
                got, request.describe(), request.path, "BatchGetSecretValue", got.attempts
            )
        try:
            return self._document(got, request)
        except JobSecretsError as error:
            return error

    # ---- listing, access checks, identity -------------------------------------------------

    def list_prefix(self, prefix: str) -> list[str]:
        """Every secret name starting with ``prefix``, through all ``ListSecrets`` pages.

        The ``name`` filter narrows the listing server-side but matches words, not a strict prefix,
        so names are filtered again here. Secrets scheduled for deletion are left out.
        """
        client = self.client
        kwargs: dict[str, Any] = {"MaxResults": self.LIST_PAGE_SIZE}
        if prefix and not prefix.startswith("!"):  # a leading '!' would negate the filter
            kwargs["Filters"] = [{"Key": "name", "Values": [prefix]}]
        names: set[str] = set()
        seen_tokens: set[str] = set()
        what = f"prefix selection {prefix + '*'!r}"
        while True:
            try:
                response = self._call("ListSecrets", lambda: client.list_secrets(**kwargs))
            except Exception as exc:
                raise self._map_exception(exc, what, None, "ListSecrets") from None
            for entry in response.get("SecretList") or []:
                name = entry.get("Name") or ""
                if name.startswith(prefix) and not entry.get("DeletedDate"):
                    names.add(name)
            token = response.get("NextToken")
            if not token or token in seen_tokens:
                break
            seen_tokens.add(token)
            kwargs["NextToken"] = token
        return sorted(names)

    def check_access(self, request: ReadRequest) -> AccessCheck:
        """``DescribeSecret`` (no value is read): exists, not deleted, and has the version asked for."""
        client = self.client
        try:
            response = self._call(
                "DescribeSecret", lambda: client.describe_secret(SecretId=request.path)
            )
        except Exception as exc:
            error = self._map_exception(exc, request.describe(), request.path, "DescribeSecret")
            if isinstance(error, (SecretNotFound, AccessDenied)):
                return AccessCheck(False, error.message, missing=isinstance(error, SecretNotFound))
            raise error from None
        if response.get("DeletedDate"):
            return AccessCheck(
                False, f"AWS secret {request.path!r} is scheduled for deletion", missing=True
            )
        versions = response.get("VersionIdsToStages") or {}
        stage = request.options.get("version_stage")
        version_id = request.options.get("version_id")
        if stage is not None and not any(stage in stages for stages in versions.values()):
            return AccessCheck(
                False, f"AWS secret {request.path!r} has no version staged {stage!r}", missing=True
            )
        if version_id is not None and version_id not in versions:
            return AccessCheck(
                False, f"AWS secret {request.path!r} has no version {version_id!r}", missing=True
            )
        return AccessCheck(
            True, "DescribeSecret allowed; GetSecretValue not tried (it would read the value)"
        )

    def metadata(self, request: ReadRequest) -> Document | None:
        """``DescribeSecret`` only: last set = ``LastRotatedDate``, else ``LastChangedDate``/``CreatedDate``."""
        client = self.client
        try:
            response = self._call(
                "DescribeSecret", lambda: client.describe_secret(SecretId=request.path)
            )
        except Exception as exc:
            raise self._map_exception(
                exc, request.describe(), request.path, "DescribeSecret"
            ) from None
        updated, source = None, ""
        for key in ("LastRotatedDate", "LastChangedDate", "CreatedDate"):
            if isinstance(response.get(key), datetime):
                updated, source = response[key], key
                break
        stage = request.options.get("version_stage") or "AWSCURRENT"
        versions = response.get("VersionIdsToStages") or {}
        version = request.options.get("version_id") or next(
            (vid for vid, stages in versions.items() if stage in stages), None
        )
        return Document(
            data={},
            version=version,
            updated=updated,
            age_source=source,
            dynamic=False,
            details={"arn": response.get("ARN", "")},
        )

    def dated(self, request: ReadRequest, document: Document) -> Document:
        """A read only says when its version was created: ``LastRotatedDate`` needs DescribeSecret."""
        try:
            meta = self.metadata(request)
        except JobSecretsError as error:
            # Denied DescribeSecret: the version's own creation time (from the read) still dates it.
            log.info(
                "%s: metadata not available (%s); using the read's version time",
                request.describe(),
                error.message,
            )
            return document
        if meta is None or meta.updated is None:
            return document
        return dataclasses.replace(
            document, updated=meta.updated, age_source=meta.age_source or "metadata"
        )

    @classmethod
    def exports_credentials(cls, options: Mapping[str, Any]) -> bool:
        """``credentials: true`` hands the role's credentials to the job."""
        return options.get("credentials") is True

    def exported_variables(self) -> Mapping[str, str]:
        """With ``credentials: true``, the role's short-lived credentials for the job.

        The region is deliberately not exported: everything exported is masked, and masking
        ``eu-west-1`` would blank it out of every log line. Jobs set their region themselves.
        """
        if not self.options.get("credentials") or self._role_credentials is None:
            return {}
        creds = self._role_credentials
        return {
            "AWS_ACCESS_KEY_ID": str(creds["AccessKeyId"]),
            "AWS_SECRET_ACCESS_KEY": str(creds["SecretAccessKey"]),
            "AWS_SESSION_TOKEN": str(creds["SessionToken"]),
        }

    def identity_info(self) -> Mapping[str, Any]:
        """Who we are: the assumed role session, or ``sts:GetCallerIdentity`` for the default chain."""
        info: dict[str, Any] = {
            "backend": self.name,
            "auth": self._fallback or self.describe_auth(self.options),
            "region": self.region,
        }
        if self._assumed_user is not None and self._role_credentials is not None:
            arn = str(self._assumed_user.get("Arn", ""))
            expiration = self._role_credentials.get("Expiration")
            info.update(
                role_arn=self.options.get("role_arn"),
                assumed_role_arn=arn,
                account=arn.split(":")[4] if arn.count(":") >= 5 else None,
                session_name=self._session_name,
                expiration=expiration.isoformat()
                if isinstance(expiration, datetime)
                else expiration,
            )
            return info
        if self._session is None:
            return info
        if self._caller is None:
            sts = self._sts_client(self._session)
            try:
                response = self._call("GetCallerIdentity", sts.get_caller_identity)
                self._caller = {k: response.get(k) for k in ("Arn", "Account", "UserId")}
            except Exception as exc:
                info["error"] = self._map_exception(
                    exc, f"backend {self.name!r}", None, "GetCallerIdentity"
                ).message
                return info
            finally:
                sts.close()
        info.update(
            arn=self._caller.get("Arn"),
            account=self._caller.get("Account"),
            user_id=self._caller.get("UserId"),
        )
        return info

    def close(self) -> None:
        """Close the client's connection pool."""
        with self._lock:
            client, self._sm = self._sm, None
        if client is not None:
            client.close()


def _partial_arn_match(
    secret_id: str, entries: Iterable[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """A partial ARN (without the 6-character random suffix AWS appends) names the same secret."""
    if not secret_id.startswith("arn:"):
        return None
    for entry in entries:
        if str(entry.get("ARN", "")).startswith(secret_id + "-"):
            return entry
    return None


def _safe(code: str) -> str:
    """An AWS error code, reduced to characters that cannot carry anything but a code."""
    return _SAFE_CODE.sub("", code)[:64] or "unknown error"
