"""Transport security: where credentials may travel, TLS that cannot be switched off, a sealed store.

* Plain http is refused except to loopback (the emulator); look-alike hosts are refused too.
* A redirect never carries the token request (and its client secret) anywhere.
* TLS verification is on in every client the package builds, no connection option or environment
  variable turns it off, and a certificate failure is an error (never a silent downgrade).
* The token state in the Airflow Variable (and the file) is unreadable without the connection's
  own refresh token, bound to its connection id, and tamper-evident.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from _support.reliability import credentials_for, token_client
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from airflow_provider_msads.connection.endpoints import check_url, resolve_endpoints
from airflow_provider_msads.errors import EndpointError, MicrosoftAdsError, ProtocolError
from airflow_provider_msads.token_store import FileTokenStore, MemoryTokenStore, TokenCipher, storage_key

# ------------------------------------------------------------------------------ plain http


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/common/oauth2/v2.0/token",
        "http://127.9.8.7/token",
        "http://localhost:1/token",
        "http://[::1]:8080/token",
        "https://login.microsoftonline.com/common/oauth2/v2.0/token",
    ],
)
def test_microsoft_or_loopback_and_plain_http_only_to_loopback(url: str):
    assert check_url(url, "token_url") == url


@pytest.mark.parametrize(
    ("field", "url"),
    [
        ("token_url", "https://login.example.com:8443/t"),
        ("token_url", "https://clientcenter.api.bingads.microsoft.com/token"),  # an API host is no login host
        ("authorize_url", "https://attacker.example.net/authorize"),
        ("customer_management_url", "https://attacker.example.net/CustomerManagement/v13"),
        ("customer_management_url", "https://login.microsoftonline.com/CustomerManagement/v13"),
        ("customer_management_url", "https://api.bingads.microsoft.com.evil.example/CustomerManagement/v13"),
    ],
)
def test_other_hosts_need_the_deployment_allow_list(field: str, url: str, monkeypatch: pytest.MonkeyPatch):
    """Editing a connection's extra must not be enough to send its secrets to a server of one's own."""
    monkeypatch.delenv("MSADS_ALLOWED_HOSTS", raising=False)
    with pytest.raises(EndpointError) as caught:
        check_url(url, field)
    assert caught.value.field == field
    assert "MSADS_ALLOWED_HOSTS" in str(caught.value)
    host = url.split("/")[2].split(":")[0]
    monkeypatch.setenv("MSADS_ALLOWED_HOSTS", f"other.example.org, {host.upper()}")
    assert check_url(url, field) == url
    monkeypatch.setenv("MSADS_ALLOWED_HOSTS", "*." + host.split(".", 1)[1])
    assert check_url(url, field) == url


def test_api_hosts_of_microsoft_are_accepted_for_api_urls():
    for url in (
        "https://clientcenter.api.bingads.microsoft.com/CustomerManagement/v13",
        "https://clientcenter.api.sandbox.bingads.microsoft.com/CustomerManagement/v13",
    ):
        assert check_url(url, "customer_management_url") == url


@pytest.mark.parametrize(
    "url",
    [
        "http://login.microsoftonline.com/common/oauth2/v2.0/token",
        "http://10.0.0.1/token",
        "http://192.168.1.10:8080/token",
        "http://169.254.169.254/latest/meta-data",  # cloud metadata endpoint
        "http://0.0.0.0:8080/token",
        "http://127.0.0.1.nip.io/token",
        "http://localhost.evil.example.com/token",
        "http://[::ffff:10.0.0.1]/token",
        "HTTP://10.0.0.1/token",
        "ws://127.0.0.1/token",
        "file:///etc/passwd",
        "//login.microsoftonline.com/token",
        "https://user:pw@login.microsoftonline.com/token",
        "https://login.microsoftonline.com/token#fragment",
        "https://login.microsoftonline.com/common/oauth2/v2.0/token?x=1",
        "https://login.microsoftonline.com/common/oauth2/v2.0/token?",
        "http://evil.localhost/token",  # *.localhost goes through DNS: not loopback
        "http://127.0.0.1.localhost/token",
    ],
)
def test_unsafe_urls_are_refused_naming_the_field(url: str):
    with pytest.raises(EndpointError) as caught:
        resolve_endpoints(token_url=url)
    assert caught.value.field == "token_url"
    assert "pw@" not in str(caught.value)


def _serve(handler: type[BaseHTTPRequestHandler], context: ssl.SSLContext | None = None):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server


@pytest.fixture
def capture() -> Iterator[tuple[str, list[bytes]]]:
    """A loopback server that records every request body it gets (none must arrive)."""
    seen: list[bytes] = []

    class Capture(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            seen.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    server = _serve(Capture)
    yield f"http://127.0.0.1:{server.server_address[1]}/capture", seen
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_from_the_token_endpoint_is_not_followed(msads_emulator, capture, status: int):
    target, seen = capture

    class Redirect(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = _serve(Redirect)
    try:
        credentials = credentials_for(msads_emulator)
        endpoints = resolve_endpoints(token_url=f"http://127.0.0.1:{server.server_address[1]}/common/oauth2/v2.0/token")
        client = token_client(credentials)
        client.endpoints = endpoints
        with pytest.raises(MicrosoftAdsError) as caught:
            client.refresh(credentials.refresh_token)
    finally:
        server.shutdown()
        server.server_close()
    assert seen == []  # the client secret and refresh token went nowhere else
    assert caught.value.retryable is False
    assert credentials.client_secret not in str(caught.value)


# ------------------------------------------------------------------------------ TLS


def _verifying(client: httpx.Client | httpx.AsyncClient) -> bool:
    pool = client._transport._pool  # type: ignore[union-attr]
    context: ssl.SSLContext = pool._ssl_context
    return context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_every_client_the_package_builds_verifies_tls(msads_emulator, msads_conn):
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

    hook = MicrosoftAdsHook(token_store=MemoryTokenStore())
    token_endpoint = hook.token_manager.client
    clients = [hook.get_conn(), hook.get_async_conn(), token_endpoint.client(), token_endpoint.async_client()]
    try:
        assert all(_verifying(c) for c in clients)
    finally:
        for c in clients:
            if isinstance(c, httpx.Client):
                c.close()


@pytest.mark.parametrize("option", ["verify", "verify_ssl", "ssl_verify", "insecure", "disable_ssl", "ca_bundle"])
def test_no_connection_option_turns_verification_off(msads_emulator, monkeypatch: pytest.MonkeyPatch, option: str):
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

    conn = msads_emulator.connection_dict()
    conn["extra"][option] = False if option != "ca_bundle" else "/dev/null"
    monkeypatch.setenv("AIRFLOW_CONN_MSADS_TLS", json.dumps(conn))
    with pytest.raises(MicrosoftAdsError) as caught:
        MicrosoftAdsHook(msads_conn_id="msads_tls", token_store=MemoryTokenStore()).get_conn()
    assert caught.value.field == option
    assert sum(msads_emulator.counters.values()) == 0


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def untrusted_https(self_signed) -> Iterator[tuple[str, list[bytes]]]:
    """An https token endpoint on loopback whose certificate nobody trusts; records what it gets."""
    cert_path, key_path = self_signed
    seen: list[bytes] = []

    class Token(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            seen.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            body = json.dumps({"access_token": "EwA-stolen", "expires_in": 3600}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server = _serve(Token, context)
    yield f"https://127.0.0.1:{server.server_address[1]}/common/oauth2/v2.0/token", seen
    server.shutdown()
    server.server_close()


# The classic ways other HTTP stacks are told to stop verifying; none may affect this package.
INSECURE_ENV = {"PYTHONHTTPSVERIFY": "0", "CURL_CA_BUNDLE": "", "REQUESTS_CA_BUNDLE": "", "HTTPX_VERIFY": "0"}


def _untrusted_credentials(msads_emulator, url: str):
    from airflow_provider_msads.connection.credentials import parse_credentials

    conn = msads_emulator.connection_dict()
    conn["extra"]["token_url"] = url
    return parse_credentials(conn_id="msads_tls", login=conn["login"], password=conn["password"], extra=conn["extra"])


def test_an_untrusted_certificate_is_refused_even_with_insecure_env(
    msads_emulator, untrusted_https, monkeypatch: pytest.MonkeyPatch
):
    url, seen = untrusted_https
    for name, value in INSECURE_ENV.items():
        monkeypatch.setenv(name, value)
    credentials = _untrusted_credentials(msads_emulator, url)
    with pytest.raises(MicrosoftAdsError) as caught:
        token_client(credentials, timeout=5.0).refresh(credentials.refresh_token)
    assert seen == []  # the handshake failed before a byte of the form (secret, token) was sent
    assert credentials.client_secret not in str(caught.value)


def test_a_certificate_failure_says_so_and_is_not_retried(msads_emulator, untrusted_https):
    url, _ = untrusted_https
    credentials = _untrusted_credentials(msads_emulator, url)
    with pytest.raises(MicrosoftAdsError) as caught:
        token_client(credentials, timeout=5.0).refresh(credentials.refresh_token)
    err = caught.value
    assert "certificate" in str(err).lower()
    assert err.retryable is False
    assert isinstance(err, ProtocolError)


# ------------------------------------------------------------------------------ the sealed store


def test_stored_variable_is_unreadable_without_the_connections_refresh_token(
    airflow_db, msads_emulator, msads_conn, monkeypatch: pytest.MonkeyPatch
):
    from airflow.models.variable import Variable

    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook
    from airflow_provider_msads.token_store import VariableTokenStore, default_token_store
    from airflow_provider_msads.tokens.auth import clear_process_cache

    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")  # a CLI / API-server process: metastore
    monkeypatch.delenv("MSADS_TOKEN_STORE", raising=False)
    store = default_token_store()
    assert isinstance(store, VariableTokenStore)
    key = storage_key("msads_default")
    Variable.delete(key)

    hook = MicrosoftAdsHook(token_store=store)
    access = hook.get_access_token()
    blob = Variable.get(key)
    conn_refresh = msads_conn["extra"]["refresh_token"]

    # Nothing readable in the stored value: no token, no secret, not even their halves.
    for secret in [
        msads_conn["password"],
        msads_conn["extra"]["developer_token"],
        conn_refresh,
        *msads_emulator.issued_access_tokens,
        *msads_emulator.issued_refresh_tokens,
    ]:
        assert secret not in blob
        assert secret[: len(secret) // 2] not in blob
        assert secret[len(secret) // 2 :] not in blob

    # Only the connection's own refresh token, with its own connection id, client id and token URL,
    # opens it: pointing token_url (or client id) elsewhere never opens the stored rotated token.
    def cipher(refresh: str = conn_refresh, conn_id: str = "msads_default", **changes: str) -> TokenCipher:
        options = {"client_id": msads_conn["login"], "token_url": msads_emulator.token_url(), **changes}
        return TokenCipher(refresh, conn_id, **options)

    assert cipher().open(blob) is not None
    assert cipher(conn_id="msads_other").open(blob) is None
    assert cipher(msads_emulator.issued_refresh_tokens[-1]).open(blob) is None
    assert cipher(msads_conn["password"]).open(blob) is None
    assert cipher(conn_refresh[:-1]).open(blob) is None
    assert cipher(token_url="https://gateway.example.com/common/oauth2/v2.0/token").open(blob) is None
    assert cipher(client_id="11111111-2222-3333-4444-555555555555").open(blob) is None

    # Tampering is detected, reported (not silently dropped), and the connection's own token takes over.
    prefix, fingerprint, payload = blob.split(".")
    flipped = payload[:20] + ("A" if payload[20] != "A" else "B") + payload[21:]
    assert cipher().open(f"{prefix}.{fingerprint}.{flipped}") is None
    assert "integrity" in (cipher().open_entry(f"{prefix}.{fingerprint}.{flipped}").problem or "")
    Variable.set(key, f"{prefix}.{fingerprint}.{flipped}")
    clear_process_cache()
    fresh = MicrosoftAdsHook(token_store=store).get_access_token()
    assert fresh != access
    assert fresh == msads_emulator.issued_access_tokens[-1]
    assert msads_emulator.token_requests[-1]["refresh_token"] == conn_refresh
    Variable.delete(key)


def test_file_store_is_private(msads_emulator, tmp_path: Path):
    credentials = credentials_for(msads_emulator, conn_id="msads_file")
    from airflow_provider_msads.tokens.auth import TokenManager

    store = FileTokenStore(tmp_path / "store")
    TokenManager(credentials, store=store).get_token()
    path = tmp_path / "store" / f"{storage_key('msads_file')}.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "store").stat().st_mode & 0o777 == 0o700
    text = path.read_text()
    for secret in msads_emulator.issued_access_tokens + msads_emulator.issued_refresh_tokens:
        assert secret not in text
