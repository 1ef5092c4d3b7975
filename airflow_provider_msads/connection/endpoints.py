"""Where credentials may be sent: Microsoft's URLs per environment, and the rules for overrides.

Overrides exist so that tests, demos and users' own DAG tests can point at the bundled emulator.
Two rules keep that door from becoming a way out for secrets. Transport: https everywhere, plain
http only to loopback. Destination: whoever may edit a connection's extra must not be able to
send its client secret and newest refresh token to a server of their own, so an override may
name only Microsoft's hosts, loopback, or a host the *deployment* lists in ``MSADS_ALLOWED_HOSTS``
(set on the workers, out of reach of connection editors).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from airflow_provider_msads.errors import EndpointError

LOGIN_HOST = "https://login.microsoftonline.com"
ENVIRONMENTS = ("production", "sandbox")
#: Comma-separated extra hosts (``host`` or ``*.domain``) that URL overrides may name.
ALLOWED_HOSTS_ENV = "MSADS_ALLOWED_HOSTS"
_LOGIN_HOSTS = frozenset({"login.microsoftonline.com"})
#: Microsoft Advertising's API hosts per environment: ``<service>.api[.sandbox].bingads.microsoft.com``.
_API_DOMAINS = {
    "production": ".api.bingads.microsoft.com",
    "sandbox": ".api.sandbox.bingads.microsoft.com",
}

_SCOPES = {
    "production": "https://ads.microsoft.com/msads.manage offline_access",
    "sandbox": "https://si.ads.microsoft.com/msads.manage offline_access",
}
_REPORTING = {
    "production": "https://reporting.api.bingads.microsoft.com/Reporting/v13",
    "sandbox": "https://reporting.api.sandbox.bingads.microsoft.com/Reporting/v13",
}
#: Bulk v13 (entity downloads; REST since the SDKs dropped SOAP): the extra ``bulk_url`` overrides it.
_BULK = {
    "production": "https://bulk.api.bingads.microsoft.com/Bulk/v13",
    "sandbox": "https://bulk.api.sandbox.bingads.microsoft.com/Bulk/v13",
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
    #: Bulk v13 (download requests, status); its result file links get no credentials either.
    bulk_url: str = _BULK["production"]

    def configured_urls(self) -> tuple[str, ...]:
        """The API URLs of this connection (defaults or overrides) that get Ads credentials."""
        return (self.customer_management_url, self.reporting_url, self.bulk_url)

    def sends_credentials_to(self, url: str) -> bool:
        """Whether a request to ``url`` may carry the access token and the developer token.

        Only Microsoft Advertising's API for this environment (https, default port) and the
        origins of the connection's configured API URLs; never a report download link or a
        redirect to another host.
        """
        origin = _origin(url)
        if origin is None:
            return False
        scheme, host, port = origin
        if scheme == "https" and port == 443 and host.endswith(_API_DOMAINS[self.environment]):
            return True
        return any(_origin(configured) == origin for configured in self.configured_urls())


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(str(url))
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host or parts.scheme not in ("http", "https"):
        return None
    return parts.scheme, host.lower().rstrip("."), port or (443 if parts.scheme == "https" else 80)


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and literal 127.0.0.0/8 or ::1 addresses: traffic that never leaves the machine.

    Not ``*.localhost``: such names go through DNS (and proxies), so they may resolve anywhere.
    """
    if not host:
        return False
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_microsoft_login_url(url: str) -> bool:
    """True for Microsoft's own identity platform over https (not an override to another host)."""
    origin = _origin(url)
    return origin is not None and origin[0] == "https" and origin[1] in _LOGIN_HOSTS and origin[2] == 443


def allowed_hosts() -> tuple[str, ...]:
    """The deployment's extra hosts from ``MSADS_ALLOWED_HOSTS`` (lower case, empty entries dropped)."""
    raw = os.environ.get(ALLOWED_HOSTS_ENV, "")
    return tuple(entry.strip().lower().rstrip(".") for entry in raw.split(",") if entry.strip())


def _host_listed(host: str) -> bool:
    host = host.lower().rstrip(".")
    for entry in allowed_hosts():
        if entry.startswith("*."):
            if host.endswith(entry[1:]):
                return True
        elif host == entry:
            return True
    return False


def _microsoft_host(host: str, kind: str) -> bool:
    host = host.lower().rstrip(".")
    if kind == "login":
        return host in _LOGIN_HOSTS
    return any(host.endswith(domain) for domain in _API_DOMAINS.values())


#: Which hosts an override may name: the identity platform's, or the Ads API's.
LOGIN_URL_FIELDS = frozenset({"token_url", "authorize_url"})


def check_url(url: str, field: str, kind: str | None = None) -> str:
    """Return ``url`` if credentials may be sent to it, else raise naming ``field``.

    https everywhere; plain http only to loopback (the emulator). The host must be Microsoft's
    (its identity platform for ``kind="login"``, its Ads API otherwise), loopback, or listed in
    ``MSADS_ALLOWED_HOSTS``. No userinfo (a password in a URL ends up in logs), no query or
    fragment (the URL is shown in reports and XCom), and TLS verification is never switched off.
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
    if parts.fragment or "#" in url:
        raise EndpointError(f"`{field}` has a #fragment.", field=field, remedy="Remove the #… part.")
    if parts.query or "?" in url:
        raise EndpointError(
            f"`{field}` has a ?query part; it would be shown wherever the URL is (reports, XCom).",
            field=field,
            remedy="Remove the ?… part; give the endpoint's plain URL.",
        )
    if parts.scheme == "http" and not is_loopback_host(host):
        raise EndpointError(
            f"`{field}` uses plain http to a non-loopback host; secrets would travel unencrypted.",
            field=field,
            remedy="Use https. Plain http is allowed only for 127.0.0.1/localhost (the emulator).",
        )
    kind = kind or ("login" if field in LOGIN_URL_FIELDS else "api")
    if not (is_loopback_host(host) or _microsoft_host(host, kind) or _host_listed(host)):
        owner = (
            "Microsoft's identity platform (login.microsoftonline.com)"
            if kind == "login"
            else ("Microsoft Advertising's API (*.api.bingads.microsoft.com, *.api.sandbox.bingads.microsoft.com)")
        )
        raise EndpointError(
            f"`{field}` names host {host}, which is neither {owner} nor loopback nor listed in "
            f"{ALLOWED_HOSTS_ENV}; the connection's secrets are never sent there.",
            field=field,
            remedy=f"Remove `{field}` to use Microsoft's default, or, if {host} is your own trusted gateway, add it "
            f"to the {ALLOWED_HOSTS_ENV} environment variable (comma separated) on every worker, triggerer and "
            "API server.",
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
    bulk_url: str | None = None,
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
    token = check_url(token_url, "token_url", "login") if token_url else f"{LOGIN_HOST}/{tenant}/oauth2/v2.0/token"
    if authorize_url:
        authorize = check_url(authorize_url, "authorize_url", "login")
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
        bulk_url=check_url(bulk_url, "bulk_url") if bulk_url else _BULK[environment],
    )
