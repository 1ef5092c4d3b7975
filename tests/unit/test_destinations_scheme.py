"""Object-store destinations the core recognises without the store's packages: the Azure SDK's 403
(issue 29), a scheme no installed provider serves (``wasb://``) refused before anything is
submitted, and the block IDs of an Azure upload."""

from __future__ import annotations

import pytest

from airflow_provider_msads.errors import ReportRequestError
from airflow_provider_msads.reporting import azure, destinations


def _sdk_error(status: int) -> Exception:
    """An exception shaped like azure-core's HttpResponseError (module and ``status_code``)."""
    error_type = type("HttpResponseError", (Exception,), {"__module__": "azure.core.exceptions"})
    error = error_type("Server failed to authenticate the request.")
    error.status_code = status  # type: ignore[attr-defined]
    return error


def test_the_azure_sdks_403_is_access_denied_and_nothing_else_is():
    assert destinations.is_forbidden(_sdk_error(403))
    assert not destinations.is_forbidden(_sdk_error(404))
    assert not destinations.is_forbidden(_sdk_error(500))
    # A 403-carrying error from anywhere else is not taken for Azure's.
    other = type("HttpError", (Exception,), {"__module__": "somelib.errors", "status_code": 403})("x")
    assert not destinations.is_forbidden(other)


@pytest.mark.parametrize("url", ["wasb://wasb_default@lake/x.csv", "wasbs://lake@account/x.csv"])
def test_a_scheme_no_provider_serves_is_refused_with_the_abfs_spelling(url: str):
    with pytest.raises(ReportRequestError, match="cannot be opened") as caught:
        destinations.check_destination(url)
    assert caught.value.field == "destination"
    assert "abfs://<conn_id>@<container>/<path>" in caught.value.remedy


def test_block_ids_have_one_length_and_differ_between_uploads():
    first, second = "a" * 24, "b" * 24
    ids = [azure.block_id(first, n) for n in (0, 1, 49_999)] + [azure.block_id(second, 0)]
    assert {len(block) for block in ids} == {32}  # Azure: one length for every block of a blob
    assert len(set(ids)) == len(ids)
