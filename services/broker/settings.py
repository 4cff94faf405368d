"""How every Kafka client in the hub connects: one settings object, one way per client library.

The hub talks to Kafka through three libraries — kafka-python (administration), aiokafka
(producers and consumers outside Faust) and faust-streaming (the router). Each spells the same
connection settings differently; :class:`KafkaSettings` holds them once and renders them for
each library, so an external cluster with SASL/TLS is reached the same way by every client.

With no ``SCHAKEL_KAFKA_BOOTSTRAP`` in the environment :meth:`KafkaSettings.from_env` returns
``None`` and the hub starts its embedded broker on 127.0.0.1 (plain text: the broker is only
reachable from this machine). With it, the hub starts nothing and uses the external cluster:

=====================================  ======================================================
``SCHAKEL_KAFKA_BOOTSTRAP``            ``host:port[,host:port...]`` of the external cluster
``SCHAKEL_KAFKA_SECURITY_PROTOCOL``    ``PLAINTEXT`` (default), ``SSL``, ``SASL_PLAINTEXT``,
                                       ``SASL_SSL``
``SCHAKEL_KAFKA_SASL_MECHANISM``       ``PLAIN``, ``SCRAM-SHA-256`` or ``SCRAM-SHA-512``
``SCHAKEL_KAFKA_SASL_USERNAME``        SASL user name
``SCHAKEL_KAFKA_SASL_PASSWORD``        SASL password (or ``..._PASSWORD_FILE``: a file holding
                                       it, e.g. a mounted container secret)
``SCHAKEL_KAFKA_SSL_CAFILE``           PEM file of the CA(s) that signed the broker certificates
``SCHAKEL_KAFKA_SSL_CERTFILE``         client certificate (PEM) for mutual TLS
``SCHAKEL_KAFKA_SSL_KEYFILE``          its private key (PEM)
``SCHAKEL_KAFKA_SSL_CHECK_HOSTNAME``   ``true`` (default) or ``false``
``SCHAKEL_KAFKA_CLIENT_ID``            client id sent to the brokers (default ``schakel``)
=====================================  ======================================================
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from services.broker.errors import BrokerError

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

ENV_BOOTSTRAP = "SCHAKEL_KAFKA_BOOTSTRAP"
ENV_SECURITY_PROTOCOL = "SCHAKEL_KAFKA_SECURITY_PROTOCOL"
ENV_SASL_MECHANISM = "SCHAKEL_KAFKA_SASL_MECHANISM"
ENV_SASL_USERNAME = "SCHAKEL_KAFKA_SASL_USERNAME"
ENV_SASL_PASSWORD = "SCHAKEL_KAFKA_SASL_PASSWORD"  # noqa: S105 - the variable's name, not a secret
ENV_SASL_PASSWORD_FILE = "SCHAKEL_KAFKA_SASL_PASSWORD_FILE"  # noqa: S105 - a variable's name
ENV_SSL_CAFILE = "SCHAKEL_KAFKA_SSL_CAFILE"
ENV_SSL_CERTFILE = "SCHAKEL_KAFKA_SSL_CERTFILE"
ENV_SSL_KEYFILE = "SCHAKEL_KAFKA_SSL_KEYFILE"
ENV_SSL_CHECK_HOSTNAME = "SCHAKEL_KAFKA_SSL_CHECK_HOSTNAME"
ENV_CLIENT_ID = "SCHAKEL_KAFKA_CLIENT_ID"

#: Variables that only make sense together with ``SCHAKEL_KAFKA_BOOTSTRAP``.
_EXTERNAL_ONLY = (
    ENV_SECURITY_PROTOCOL,
    ENV_SASL_MECHANISM,
    ENV_SASL_USERNAME,
    ENV_SASL_PASSWORD,
    ENV_SASL_PASSWORD_FILE,
    ENV_SSL_CAFILE,
    ENV_SSL_CERTFILE,
    ENV_SSL_KEYFILE,
    ENV_SSL_CHECK_HOSTNAME,
)

DEFAULT_CLIENT_ID = "schakel"
_MAX_PORT = 65535
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class KafkaSettings:
    """Where the Kafka cluster is and how to authenticate to it; validated on construction.

    ``external`` tells whether the settings came from the environment (an operator-run cluster)
    or describe the hub's own embedded broker. The SASL password is kept out of ``repr``.
    """

    bootstrap_servers: tuple[str, ...]
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True
    client_id: str = DEFAULT_CLIENT_ID
    external: bool = False

    def __post_init__(self) -> None:
        if not self.bootstrap_servers:
            raise BrokerError(f"no Kafka bootstrap server given; set {ENV_BOOTSTRAP}=host:port")
        for server in self.bootstrap_servers:
            _check_server(server)
        if self.security_protocol not in get_args(SecurityProtocol):
            raise BrokerError(
                f"unknown Kafka security protocol {self.security_protocol!r}; use one of "
                f"{', '.join(get_args(SecurityProtocol))} in {ENV_SECURITY_PROTOCOL}"
            )
        if self.uses_sasl:
            self._check_sasl()
        elif self.sasl_mechanism or self.sasl_username or self.sasl_password:
            raise BrokerError(
                f"SASL settings are given but {ENV_SECURITY_PROTOCOL} is "
                f"{self.security_protocol}; set it to SASL_SSL (or SASL_PLAINTEXT)"
            )
        tls_files = (self.ssl_cafile, self.ssl_certfile, self.ssl_keyfile)
        if not self.uses_tls and any(tls_files):
            raise BrokerError(
                f"TLS files are given but {ENV_SECURITY_PROTOCOL} is {self.security_protocol}; "
                "set it to SSL or SASL_SSL"
            )
        if self.ssl_keyfile and not self.ssl_certfile:
            raise BrokerError(
                f"{ENV_SSL_KEYFILE} is set without {ENV_SSL_CERTFILE}; give the client "
                "certificate too, or neither"
            )
        for name, path in (
            (ENV_SSL_CAFILE, self.ssl_cafile),
            (ENV_SSL_CERTFILE, self.ssl_certfile),
            (ENV_SSL_KEYFILE, self.ssl_keyfile),
        ):
            if path is not None and not path.is_file():
                raise BrokerError(f"{name} points at {path}, which is not a readable file")

    def _check_sasl(self) -> None:
        if self.sasl_mechanism is None:
            raise BrokerError(
                f"{ENV_SECURITY_PROTOCOL}={self.security_protocol} needs "
                f"{ENV_SASL_MECHANISM} ({', '.join(get_args(SaslMechanism))})"
            )
        if self.sasl_mechanism not in get_args(SaslMechanism):
            raise BrokerError(
                f"unsupported SASL mechanism {self.sasl_mechanism!r}; use one of "
                f"{', '.join(get_args(SaslMechanism))} in {ENV_SASL_MECHANISM}"
            )
        if not self.sasl_username or not self.sasl_password:
            raise BrokerError(
                f"SASL needs a user name and a password: set {ENV_SASL_USERNAME} and "
                f"{ENV_SASL_PASSWORD} (or {ENV_SASL_PASSWORD_FILE})"
            )

    @classmethod
    def local(cls, bootstrap: str) -> KafkaSettings:
        """Settings for the hub's own embedded broker at ``bootstrap`` (loopback, plain text)."""
        return cls(bootstrap_servers=(bootstrap,))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KafkaSettings | None:
        """The external cluster named by the environment, or ``None`` to run an embedded broker.

        Security variables without ``SCHAKEL_KAFKA_BOOTSTRAP`` are an error rather than being
        ignored: an operator who configured credentials expects them to be used.
        """
        env = os.environ if environ is None else environ
        bootstrap = env.get(ENV_BOOTSTRAP, "").strip()
        if not bootstrap:
            stray = [name for name in _EXTERNAL_ONLY if env.get(name)]
            if stray:
                raise BrokerError(
                    f"{', '.join(stray)} set but {ENV_BOOTSTRAP} is not; set {ENV_BOOTSTRAP} "
                    "to use an external cluster, or unset them to use the embedded broker"
                )
            return None
        servers = tuple(s.strip() for s in bootstrap.split(",") if s.strip())
        protocol = env.get(ENV_SECURITY_PROTOCOL, "PLAINTEXT").strip().upper() or "PLAINTEXT"
        mechanism = env.get(ENV_SASL_MECHANISM, "").strip().upper() or None
        return cls(
            bootstrap_servers=servers,
            security_protocol=cast(SecurityProtocol, protocol),
            sasl_mechanism=cast(SaslMechanism | None, mechanism),
            sasl_username=env.get(ENV_SASL_USERNAME) or None,
            sasl_password=_password(env),
            ssl_cafile=_path(env, ENV_SSL_CAFILE),
            ssl_certfile=_path(env, ENV_SSL_CERTFILE),
            ssl_keyfile=_path(env, ENV_SSL_KEYFILE),
            ssl_check_hostname=_flag(env, ENV_SSL_CHECK_HOSTNAME, default=True),
            client_id=env.get(ENV_CLIENT_ID, "").strip() or DEFAULT_CLIENT_ID,
            external=True,
        )

    @property
    def bootstrap(self) -> str:
        """The bootstrap servers as one comma-separated string."""
        return ",".join(self.bootstrap_servers)

    @property
    def uses_sasl(self) -> bool:
        """Whether clients authenticate with SASL."""
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def uses_tls(self) -> bool:
        """Whether connections are encrypted with TLS."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        """A TLS context verifying the brokers (system CAs unless a CA file is given), or None.

        Built fresh on each call, so certificate files rotated on disk are picked up by the
        next client that connects.
        """
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(
            cafile=str(self.ssl_cafile) if self.ssl_cafile else None
        )
        context.check_hostname = self.ssl_check_hostname
        if self.ssl_certfile is not None:
            context.load_cert_chain(
                str(self.ssl_certfile), str(self.ssl_keyfile) if self.ssl_keyfile else None
            )
        return context

    def _common_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "bootstrap_servers": list(self.bootstrap_servers),
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
        }
        context = self.ssl_context()
        if context is not None:
            kwargs["ssl_context"] = context
        if self.uses_sasl:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        return kwargs

    def client_kwargs_kafka_python(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python's KafkaAdminClient, KafkaProducer, KafkaConsumer."""
        return self._common_kwargs()

    def client_kwargs_aiokafka(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's AIOKafkaProducer, AIOKafkaConsumer and admin."""
        return self._common_kwargs()

    def faust_broker_url(self) -> str:
        """The ``broker`` setting of a Faust app: ``kafka://host:port;kafka://...``."""
        return ";".join(f"kafka://{server}" for server in self.bootstrap_servers)

    def faust_credentials(self) -> CredentialsT | None:
        """The ``broker_credentials`` setting of a Faust app (None for plain text)."""
        from faust.auth import SASLCredentials, SSLCredentials  # noqa: PLC0415 - heavy import

        context = self.ssl_context()
        if self.uses_sasl:
            return SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password,
                ssl_context=context,
                mechanism=self.sasl_mechanism,
            )
        if context is not None:
            return SSLCredentials(context)
        return None


def _check_server(server: str) -> None:
    host, sep, port = server.rpartition(":")
    if (
        not sep
        or not host
        or not (port.isascii() and port.isdigit())
        or not 0 < int(port) <= _MAX_PORT
    ):
        raise BrokerError(
            f"Kafka bootstrap server {server!r} is not host:port; "
            f"write {ENV_BOOTSTRAP} as host:port[,host:port...]"
        )


def _password(env: Mapping[str, str]) -> str | None:
    password = env.get(ENV_SASL_PASSWORD)
    password_file = env.get(ENV_SASL_PASSWORD_FILE)
    if password and password_file:
        raise BrokerError(f"set {ENV_SASL_PASSWORD} or {ENV_SASL_PASSWORD_FILE}, not both")
    if password_file:
        try:
            return Path(password_file).read_text(encoding="utf-8").rstrip("\r\n") or None
        except OSError as exc:
            raise BrokerError(
                f"{ENV_SASL_PASSWORD_FILE} points at {password_file}, which cannot be read "
                f"({exc.strerror})"
            ) from None
    return password or None


def _path(env: Mapping[str, str], name: str) -> Path | None:
    value = env.get(name, "").strip()
    return Path(value) if value else None


def _flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise BrokerError(f"{name}={value!r} is not a boolean; use true or false")
