from __future__ import annotations

import pytest
from _support.fakes import FakeTokenEndpoint, make_credentials

from airflow_provider_msads.connection.credentials import MicrosoftAdsCredentials


@pytest.fixture
def credentials() -> MicrosoftAdsCredentials:
    return make_credentials()


@pytest.fixture
def endpoint() -> FakeTokenEndpoint:
    return FakeTokenEndpoint()
