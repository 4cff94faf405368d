from __future__ import annotations

import pytest

from services.metrics.errors import MetricsError
from services.metrics.settings import MetricsSettings

ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - a setting under test, nothing binds it here


def test_defaults_serve_nothing_and_bind_loopback():
    settings = MetricsSettings.from_env({})
    assert settings.port is None
    assert settings.host == "127.0.0.1"
    assert settings.verify_every_s == 900.0


def test_values_from_the_environment():
    settings = MetricsSettings.from_env(
        {
            "SCHAKEL_METRICS_PORT": "9464",
            "SCHAKEL_METRICS_HOST": ANY_ADDRESS,
            "SCHAKEL_AUDIT_VERIFY_EVERY_S": "60",
        }
    )
    assert (settings.host, settings.port, settings.verify_every_s) == (ANY_ADDRESS, 9464, 60.0)
    assert MetricsSettings.from_env({"SCHAKEL_METRICS_PORT": "0"}).port is None


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SCHAKEL_METRICS_PORT": "http"}, "SCHAKEL_METRICS_PORT"),
        ({"SCHAKEL_METRICS_PORT": "70000"}, "SCHAKEL_METRICS_PORT"),
        ({"SCHAKEL_AUDIT_VERIFY_EVERY_S": "soon"}, "SCHAKEL_AUDIT_VERIFY_EVERY_S"),
        ({"SCHAKEL_AUDIT_VERIFY_EVERY_S": "-1"}, "SCHAKEL_AUDIT_VERIFY_EVERY_S"),
    ],
)
def test_bad_values_name_the_variable(env, named):
    with pytest.raises(MetricsError, match=named):
        MetricsSettings.from_env(env)
