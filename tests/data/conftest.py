import pytest
from hypothesis import HealthCheck, settings

# Small and deadline-free: the suite shares 2 cores with other work.
settings.register_profile("toolkit-data", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("toolkit-data")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: exports or processes a full dataset (seconds to minutes)")
