from __future__ import annotations

from collections.abc import Iterator

import pytest
from unit_support import FakeTokenEndpoint, make_credentials

from airflow_provider_msads.auth import clear_process_cache
from airflow_provider_msads.credentials import MicrosoftAdsCredentials


@pytest.fixture(autouse=True)
def _fresh_process_cache() -> Iterator[None]:
    clear_process_cache()
    yield
    clear_process_cache()


@pytest.fixture
def credentials() -> MicrosoftAdsCredentials:
    return make_credentials()


@pytest.fixture
def endpoint() -> FakeTokenEndpoint:
    return FakeTokenEndpoint()
