"""Where credentials may be sent: Microsoft's URLs per environment, and the https-or-loopback rule.

Overrides exist so that tests, demos and users' own DAG tests can point at the bundled emulator;
the rule below keeps that door from becoming a way to ship a client secret over plain http.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from airflow_provider_msads.errors import EndpointError

LOGIN_HOST = "https://login.microsoftonline.com"
ENVIRONMENTS = ("production", "sandbox")

_SCOPES = {
    "production": "https://ads.microsoft.com/msads.manage offline_access",
    "sandbox": "https://si.ads.microsoft.com/msads.manage offline_access",
}
_REPORTING = {
    "production": "https://reporting.api.bingads.microsoft.com/Reporting/v13",
    "sandbox": "https://reporting.api.sandbox.bingads.microsoft.com/Reporting/v13",
}
_CUSTOMER_MANAGEMENT = {
    "production": "https://clientcenter.api.bingads.microsoft.com/CustomerManagement/v13",
    "sandbox": "https://clientcenter.api.sandbox.bingads.microsoft.com/CustomerManagement/v13",
}


@dataclass(frozen=True)
class Endpoints:
    """The URLs and scope one connection talks to."""

    environment: str
    tenant: str
    token_url: str
    authorize_url: str
    customer_management_url: str
    scope: str
    #: Reporting v13 (submit, poll); its download links are elsewhere and get no credentials.
    reporting_url: str = _REPORTING["production"]


def is_loopback_host(host: str | None) -> bool:
    """True for localhost and any 127.0.0.0/8 or ::1 address: traffic that never leaves the machine."""
    if not host:
        return False
    if host.lower() in ("localhost", "localhost.") or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, field: str) -> str:
    """Return ``url`` if credentials may be sent to it, else raise naming ``field``.

    https everywhere; plain http only to loopback (the emulator). No userinfo (a password in a
    URL ends up in logs), no fragment, and TLS verification is never switched off by a URL.
    """
    if not isinstance(url, str) or not url.strip():
        raise EndpointError(f"`{field}` is empty.", field=field, remedy=f"Remove `{field}` or give a full https URL.")
    url = url.strip()
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise EndpointError(
            f"`{field}` contains whitespace or control characters.",
            field=field,
            remedy=f"Give `{field}` as one plain URL.",
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises on a bad port
    except ValueError as exc:
        raise EndpointError(f"`{field}` is not a valid URL.", field=field, remedy="Give a full https URL.") from exc
    if parts.scheme not in ("https", "http") or not host:
        raise EndpointError(
            f"`{field}` must be a full https URL (scheme and host).",
            field=field,
            remedy=f"Write `{field}` like https://host/path.",
        )
    if parts.username is not None or parts.password is not None:
        raise EndpointError(
            f"`{field}` carries credentials in the URL.",
            field=field,
            remedy="Remove the user:password@ part; credentials belong in the connection's fields.",
        )
    if parts.fragment:
        raise EndpointError(f"`{field}` has a #fragment.", field=field, remedy="Remove the #… part.")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise EndpointError(
            f"`{field}` uses plain http to a non-loopback host; secrets would travel unencrypted.",
            field=field,
            remedy="Use https. Plain http is allowed only for 127.0.0.1/localhost (the emulator).",
        )
    return url.rstrip("/")


def resolve_endpoints(
    environment: str = "production",
    tenant: str = "common",
    *,
    token_url: str | None = None,
    authorize_url: str | None = None,
    customer_management_url: str | None = None,
    reporting_url: str | None = None,
) -> Endpoints:
    """Defaults for the environment, with checked overrides.

    When only ``token_url`` is overridden, the authorize URL is derived from it (same path with
    ``/authorize``), since the emulator and Microsoft both keep them side by side.
    """
    if environment not in ENVIRONMENTS:
        raise EndpointError(
            f"Unknown environment {environment!r}.",
            field="environment",
            remedy="Set environment to 'production' or 'sandbox'.",
        )
    token = check_url(token_url, "token_url") if token_url else f"{LOGIN_HOST}/{tenant}/oauth2/v2.0/token"
    if authorize_url:
        authorize = check_url(authorize_url, "authorize_url")
    elif token.endswith("/token"):
        authorize = token[: -len("/token")] + "/authorize"
    else:
        authorize = f"{LOGIN_HOST}/{tenant}/oauth2/v2.0/authorize"
    cm = (
        check_url(customer_management_url, "customer_management_url")
        if customer_management_url
        else _CUSTOMER_MANAGEMENT[environment]
    )
    return Endpoints(
        environment=environment,
        tenant=tenant,
        token_url=token,
        authorize_url=authorize,
        customer_management_url=cm,
        scope=_SCOPES[environment],
        reporting_url=check_url(reporting_url, "reporting_url") if reporting_url else _REPORTING[environment],
    )
