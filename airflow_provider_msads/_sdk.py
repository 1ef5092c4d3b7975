"""Microsoft's own SDK (``bingads``, the ``[sdk]`` extra) on this provider's tokens.

The SDK refreshes on its own when given a refresh token, which would fork the rotating
refresh-token chain the token store keeps. So it gets an authentication that asks the hook for
the access token on every call: one chain, one shared access token, whichever client is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow_provider_msads.credentials import MicrosoftAdsCredentials
from airflow_provider_msads.errors import CredentialsError


def authorization_data(credentials: MicrosoftAdsCredentials, access_token: Callable[[], str]) -> Any:
    """A ``bingads.AuthorizationData`` whose Bearer token is ``access_token()`` at each request."""
    try:
        from bingads.authorization import Authentication, AuthorizationData
    except ImportError as exc:
        raise CredentialsError(
            "Microsoft's SDK (bingads) is not installed.",
            remedy="pip install 'airflow-provider-msads[sdk]' (the msads package).",
        ) from exc

    class ProviderAuthentication(Authentication):  # type: ignore[misc]
        def enrich_headers(self, headers: dict[str, str]) -> None:
            headers["Authorization"] = "Bearer " + access_token()

    return AuthorizationData(
        account_id=int(credentials.account_id),
        customer_id=int(credentials.customer_id),
        developer_token=credentials.developer_token,
        authentication=ProviderAuthentication(),
    )
