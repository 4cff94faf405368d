"""The Faust app hosting the router: no port on 0.0.0.0, no Faust consumer, no auto-created topics."""

from __future__ import annotations

from datetime import UTC, datetime

from services.audit.testing import MemoryAuditStore
from services.broker.settings import KafkaSettings
from services.router.app import create_app
from services.router.loop import LoopConfig
from tests.router.helpers import policy_source


def make(tmp_path, web_port=None):
    return create_app(
        KafkaSettings.local("127.0.0.1:9"),
        MemoryAuditStore(),
        policy_source(),
        LoopConfig(topics=["signals.liander"]),
        clock=lambda: datetime.now(UTC),
        datadir=tmp_path,
        web_port=web_port,
    )


def test_web_is_off_by_default_and_loopback_only_when_on(tmp_path):
    app, _ = make(tmp_path)
    assert app.conf.web_enabled is False
    app_on, _ = make(tmp_path, web_port=6099)
    assert app_on.conf.web_enabled is True
    assert str(app_on.conf.web_bind) == "127.0.0.1"
    assert app_on.conf.web_port == 6099


def test_faust_consumer_is_off_and_topics_are_never_declared_by_faust(tmp_path):
    app, loop = make(tmp_path)
    assert app.producer_only is True
    assert app.conf.topic_allow_declare is False
    assert app.conf.broker_session_timeout == 10.0
    assert loop.stats.signals == 0
