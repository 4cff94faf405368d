"""KafkaSettings from the environment, and how each client library gets them; no broker."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from faust.auth import SASLCredentials, SSLCredentials

from services.broker import (
    DEFAULT_BROKER,
    BrokerError,
    KafkaSettings,
    broker_kind_from_env,
    make_broker,
)
from services.broker.noida import NoidaBroker, glibc_version
from services.broker.tansu import TansuBroker

SASL_ENV = {
    "SCHAKEL_KAFKA_BOOTSTRAP": "kafka-1.example.org:9093, kafka-2.example.org:9093",
    "SCHAKEL_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
    "SCHAKEL_KAFKA_SASL_MECHANISM": "scram-sha-512",
    "SCHAKEL_KAFKA_SASL_USERNAME": "schakel-hub",
    "SCHAKEL_KAFKA_SASL_PASSWORD": "s3cret-test-password",
}


def test_no_bootstrap_means_embedded_broker():
    assert KafkaSettings.from_env({}) is None
    assert KafkaSettings.from_env({"SCHAKEL_KAFKA_BOOTSTRAP": "  "}) is None


def test_plain_external_bootstrap():
    settings = KafkaSettings.from_env({"SCHAKEL_KAFKA_BOOTSTRAP": "10.1.2.3:9092"})
    assert settings is not None
    assert settings.external
    assert settings.bootstrap_servers == ("10.1.2.3:9092",)
    assert settings.security_protocol == "PLAINTEXT"
    assert settings.client_kwargs_kafka_python() == {
        "bootstrap_servers": ["10.1.2.3:9092"],
        "client_id": "schakel",
        "security_protocol": "PLAINTEXT",
    }
    assert settings.client_kwargs_aiokafka() == settings.client_kwargs_kafka_python()
    assert settings.faust_broker_url() == "kafka://10.1.2.3:9092"
    assert settings.faust_credentials() is None


def test_sasl_ssl_fields_reach_every_client():
    settings = KafkaSettings.from_env(SASL_ENV)
    assert settings is not None
    assert settings.bootstrap_servers == ("kafka-1.example.org:9093", "kafka-2.example.org:9093")
    assert settings.security_protocol == "SASL_SSL"
    assert settings.sasl_mechanism == "SCRAM-SHA-512"
    for kwargs in (settings.client_kwargs_kafka_python(), settings.client_kwargs_aiokafka()):
        assert kwargs["security_protocol"] == "SASL_SSL"
        assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
        assert kwargs["sasl_plain_username"] == "schakel-hub"
        assert kwargs["sasl_plain_password"] == "s3cret-test-password"
        assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
        assert kwargs["ssl_context"].check_hostname
        assert kwargs["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert settings.faust_broker_url() == (
        "kafka://kafka-1.example.org:9093;kafka://kafka-2.example.org:9093"
    )
    credentials = settings.faust_credentials()
    assert isinstance(credentials, SASLCredentials)
    assert credentials.username == "schakel-hub"
    assert credentials.password == "s3cret-test-password"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.protocol.value == "SASL_SSL"
    assert isinstance(credentials.ssl_context, ssl.SSLContext)


def test_password_never_in_repr():
    settings = KafkaSettings.from_env(SASL_ENV)
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str(settings)


def test_password_from_file(tmp_path: Path):
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n", encoding="utf-8")
    env = {k: v for k, v in SASL_ENV.items() if k != "SCHAKEL_KAFKA_SASL_PASSWORD"}
    settings = KafkaSettings.from_env({**env, "SCHAKEL_KAFKA_SASL_PASSWORD_FILE": str(secret)})
    assert settings is not None
    assert settings.sasl_password == "from-a-file"


def test_ssl_without_sasl_gives_faust_ssl_credentials():
    env = {
        "SCHAKEL_KAFKA_BOOTSTRAP": "kafka.example.org:9093",
        "SCHAKEL_KAFKA_SECURITY_PROTOCOL": "SSL",
        "SCHAKEL_KAFKA_SSL_CHECK_HOSTNAME": "false",
    }
    settings = KafkaSettings.from_env(env)
    assert settings is not None
    context = settings.ssl_context()
    assert context is not None
    assert not context.check_hostname
    assert isinstance(settings.faust_credentials(), SSLCredentials)
    assert "sasl_mechanism" not in settings.client_kwargs_aiokafka()


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"SCHAKEL_KAFKA_BOOTSTRAP": "no-port"}, "host:port"),
        ({"SCHAKEL_KAFKA_BOOTSTRAP": "h:99999"}, "host:port"),
        (
            {"SCHAKEL_KAFKA_BOOTSTRAP": "h:9092", "SCHAKEL_KAFKA_SECURITY_PROTOCOL": "TLS"},
            "SCHAKEL_KAFKA_SECURITY_PROTOCOL",
        ),
        (
            {"SCHAKEL_KAFKA_BOOTSTRAP": "h:9092", "SCHAKEL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
            "SCHAKEL_KAFKA_SASL_MECHANISM",
        ),
        (
            {k: v for k, v in SASL_ENV.items() if k != "SCHAKEL_KAFKA_SASL_PASSWORD"},
            "SCHAKEL_KAFKA_SASL_PASSWORD",
        ),
        ({**SASL_ENV, "SCHAKEL_KAFKA_SASL_MECHANISM": "GSSAPI"}, "SCRAM-SHA-256"),
        (
            {"SCHAKEL_KAFKA_BOOTSTRAP": "h:9092", "SCHAKEL_KAFKA_SASL_USERNAME": "u"},
            "SASL_SSL",
        ),
        (
            {"SCHAKEL_KAFKA_BOOTSTRAP": "h:9092", "SCHAKEL_KAFKA_SSL_CAFILE": "/nonexistent"},
            "SSL or SASL_SSL",
        ),
        (
            {
                "SCHAKEL_KAFKA_BOOTSTRAP": "h:9092",
                "SCHAKEL_KAFKA_SECURITY_PROTOCOL": "SSL",
                "SCHAKEL_KAFKA_SSL_CAFILE": "/nonexistent/ca.pem",
            },
            "not a readable file",
        ),
        (
            {
                "SCHAKEL_KAFKA_BOOTSTRAP": "h:9092",
                "SCHAKEL_KAFKA_SECURITY_PROTOCOL": "SSL",
                "SCHAKEL_KAFKA_SSL_CHECK_HOSTNAME": "maybe",
            },
            "true or false",
        ),
        ({"SCHAKEL_KAFKA_SASL_USERNAME": "u"}, "SCHAKEL_KAFKA_BOOTSTRAP is not"),
        (
            {**SASL_ENV, "SCHAKEL_KAFKA_SASL_PASSWORD_FILE": "/nonexistent"},
            "not both",
        ),
    ],
)
def test_invalid_settings_name_the_fix(env: dict[str, str], fragment: str):
    with pytest.raises(BrokerError, match=fragment) as caught:
        KafkaSettings.from_env(env)
    assert "s3cret" not in str(caught.value)


def test_local_settings_are_plain_loopback():
    settings = KafkaSettings.local("127.0.0.1:40001")
    assert not settings.external
    assert settings.bootstrap == "127.0.0.1:40001"
    assert settings.faust_credentials() is None


def test_embedded_broker_choice_from_env(tmp_path: Path):
    assert broker_kind_from_env({}) == DEFAULT_BROKER
    assert broker_kind_from_env({"SCHAKEL_EMBEDDED_BROKER": "Noida"}) == "noida"
    with pytest.raises(BrokerError, match="tansu, noida"):
        broker_kind_from_env({"SCHAKEL_EMBEDDED_BROKER": "redpanda"})
    assert isinstance(make_broker("tansu", tmp_path), TansuBroker)
    assert isinstance(make_broker("noida", tmp_path), NoidaBroker)
    with pytest.raises(BrokerError, match="unknown embedded broker"):
        make_broker("kraft", tmp_path)  # type: ignore[arg-type]


def test_unstarted_broker_describes_itself(tmp_path: Path):
    tansu = make_broker("tansu", tmp_path / "t", port=40123)
    assert tansu.bootstrap == "127.0.0.1:40123"
    assert tansu.data_dir == (tmp_path / "t").resolve()
    assert not tansu.persistent
    assert not tansu.supports_transactions
    assert not tansu.is_healthy()
    assert tansu.pid is None
    noida = make_broker("noida", tmp_path / "n")
    assert noida.persistent
    assert noida.supports_transactions
    with pytest.raises(BrokerError, match="start it first"):
        _ = noida.bootstrap


def test_glibc_is_new_enough_for_noida():
    version = glibc_version()
    assert version is not None
    assert version >= (2, 34)
