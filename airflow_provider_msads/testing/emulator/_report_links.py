"""The report download link: minted at each Poll, served like an Azure blob SAS link.

``GET /download-reports/<token>/<id>.zip?sv=..&se=..&sig=..`` needs no credentials (and records
whether any were sent, since a client must never send them there), dies after
``report_link_lifetime`` seconds with Azure's 403 ``AuthenticationFailed`` XML, and streams the
zipped report that ``_report_files`` writes on the fly. In production this is another host with
another error shape (Azure Storage XML), its own faults to inject and no Ads headers: a room of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, BinaryIO, Final
from urllib.parse import parse_qsl

from airflow_provider_msads.testing.emulator._catalogues import _DOWNLOAD_PREFIX, _HTML
from airflow_provider_msads.testing.emulator._http import _Reply
from airflow_provider_msads.testing.emulator._injection import _FaultInjection
from airflow_provider_msads.testing.emulator._model import _Injection
from airflow_provider_msads.testing.emulator._report_files import (
    _AZURE_VERSION,
    _ZIP,
    EmulatorReport,
    _azure_error,
    _small_zip,
    _zip_bomb,
    _zip_report,
)

_CREDENTIAL_HEADERS: Final = ("authorization", "developertoken", "customerid", "customeraccountid", "password")


@dataclass
class _ReportLink:
    token: str
    signature: str
    report_id: str
    expires_at: float
    expired: bool = False


def refused_link(link: Any, params: Mapping[str, str], now: float, expired: Callable[[], _Reply]) -> _Reply | None:
    """What Azure answers a wrong signature (403) or a link past its time (the service's own reply);
    None when the link may be served. Report and Bulk result links are checked alike."""
    if params.get("sig") != link.signature:
        return _azure_error(
            403, "AuthenticationFailed", "Server failed to authenticate the request.", "Signature did not match."
        )
    if link.expired or now > link.expires_at:
        return expired()
    return None


class _ReportLinks(_FaultInjection):
    """Download links for the reports the Reporting service keeps (see the module docstring)."""

    report_link_lifetime: float
    reports: dict[str, EmulatorReport]  # kept by the Reporting service, read here
    download_credential_headers: list[list[str]]
    _report_links: dict[str, _ReportLink]

    def _init_report_links(self) -> None:
        self.report_link_lifetime = 300.0
        self.download_credential_headers = []
        self._report_links = {}

    # ---------------------------------------------------------------------- public controls

    def expire_report_links(self) -> None:
        """Every download link handed out so far answers 403 AuthenticationFailed from now on."""
        with self._lock:
            for link in self._report_links.values():
                link.expired = True

    @property
    def report_downloads(self) -> int:
        return self.counters["download"]

    @property
    def downloads_with_credentials(self) -> int:
        """Download requests that carried Authorization, DeveloperToken or other Ads headers (want 0)."""
        return self.counters["download.with_credentials"]

    # ---------------------------------------------------------------------- minting (at Poll)

    def _new_link(self, report: EmulatorReport) -> str:
        """A fresh pre-signed-looking link, valid ``report_link_lifetime`` seconds (each Poll mints one)."""
        token = self._rand.text("abcdef0123456789", 32)
        signature = self._rand.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 43) + "="
        expires_at = self.clock() + self.report_link_lifetime
        self._report_links[token] = _ReportLink(token, signature, report.id, expires_at)
        now = datetime.fromtimestamp(self.clock(), tz=timezone.utc)
        expiry = datetime.fromtimestamp(expires_at, tz=timezone.utc)
        query = (
            f"sv={_AZURE_VERSION}&st={now.strftime('%Y-%m-%dT%H:%M:%SZ')}&se={expiry.strftime('%Y-%m-%dT%H:%M:%SZ')}"
            f"&sr=b&sp=r&sig={signature.replace('=', '%3D')}"
        )
        return f"{self.base_url}{_DOWNLOAD_PREFIX}{token}/{report.id}.zip?{query}"

    # ---------------------------------------------------------------------- download

    def _download_endpoint(self, method: str, path: str, query: str, headers: Mapping[str, str]) -> _Reply:
        sent = sorted(name for name in _CREDENTIAL_HEADERS if name in headers)
        with self._lock:
            self.counters["download"] += 1
            if sent:
                self.counters["download.with_credentials"] += 1
            self.download_credential_headers.append(sent)
        return self._with_injection(
            "download", self._injected_download_reply, lambda: self._download_logic(method, path, query)
        )

    def _injected_download_reply(self, injection: _Injection) -> _Reply | None:
        """The download kinds; ``malformed`` and ``html`` mean a broken zip and a page served here."""
        kind = injection.kind
        reply: _Reply | None = None
        if kind == "expired_link":
            reply = self._link_expired_reply()
        elif kind == "xml_error":
            reply = _azure_error(
                injection.status or 404, injection.error or "BlobNotFound", "The specified blob does not exist."
            )
        elif kind == "two_entries":
            csv_text = '\ufeff"TimePeriod","Impressions"\r\n"2026-01-01","10"\r\n'.encode()
            reply = _Reply(injection.status or 200, _small_zip({"report.csv": csv_text, "extra.csv": csv_text}), _ZIP)
        elif kind == "zip_bomb":
            reply = _Reply(injection.status or 200, _zip_bomb(), _ZIP)
        elif kind == "not_zip":
            reply = _Reply(injection.status or 200, injection.body or b"This is not a zip archive.\r\n" * 64, _ZIP)
        elif kind == "malformed":
            whole = _small_zip({"report.csv": b'\xef\xbb\xbf"TimePeriod"\r\n"2026-01-01"\r\n'})
            reply = _Reply(injection.status or 200, injection.body or whole[: len(whole) // 2], _ZIP)
        elif kind == "html":
            status = injection.status if injection.status is not None else 500
            page = (
                injection.body
                or (
                    "<!DOCTYPE html><html><head><title>Service unavailable</title></head><body>"
                    f"<h1>{status}</h1><p>The page you requested is not available.</p></body></html>"
                ).encode()
            )
            reply = _Reply(status, page, _HTML)
        return reply

    @staticmethod
    def _link_expired_reply() -> _Reply:
        return _azure_error(
            403,
            "AuthenticationFailed",
            "Server failed to authenticate the request. Make sure the value of Authorization header is "
            "formed correctly including the signature.",
            "Signed expiry time must be after signed start time or the signature has expired.",
        )

    def _download_logic(self, method: str, path: str, query: str) -> _Reply:
        if method not in ("GET", "HEAD"):
            return _azure_error(405, "UnsupportedHttpVerb", "The resource doesn't support specified Http Verb.")
        parts = path.split("/")  # "", "download-reports", token, "<id>.zip"
        params = dict(parse_qsl(query, keep_blank_values=True))
        with self._lock:
            link = self._report_links.get(parts[2]) if len(parts) == 4 else None
            report = self.reports.get(link.report_id) if link is not None else None
            if link is None or report is None or parts[3] != f"{report.id}.zip":
                return _azure_error(404, "BlobNotFound", "The specified blob does not exist.")
            if (refused := refused_link(link, params, self.clock(), self._link_expired_reply)) is not None:
                return refused
            report.downloads += 1
            accounts = {a: self._accounts[a] for a in report.account_ids if a in self._accounts}
            now = datetime.fromtimestamp(self.clock(), tz=timezone.utc)

        def stream(out: BinaryIO) -> None:
            _zip_report(report, accounts, out, now)

        headers = [
            ("x-ms-request-id", str(uuid.uuid4())),
            ("x-ms-version", _AZURE_VERSION),
            ("x-ms-blob-type", "BlockBlob"),
            ("Content-Disposition", f'attachment; filename="{report.id}.zip"'),
        ]
        return _Reply(200, b"", _ZIP, headers, stream=stream)
