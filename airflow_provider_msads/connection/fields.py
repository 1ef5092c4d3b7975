"""The vocabulary of an ``msads`` connection: its type, field names, labels, limits and setup steps.

One place for these facts: the credential checks, the validation report, the onboarding command and
the provider info (the connection form) all read them here. Kept import-light, since Airflow's
ProvidersManager imports the provider info at start-up.
"""

from __future__ import annotations

from airflow_provider_msads.errors.catalogue import STEP_APP, STEP_AUTHORIZE, STEP_DEVTOKEN, STEP_IDS, STEP_SECRET

CONN_TYPE = "msads"
#: Airflow 2's connection form stores custom fields as ``extra__<conn_type>__<name>``.
EXTRA_PREFIX = f"extra__{CONN_TYPE}__"

#: Fields whose values never appear in a message, a repr or a report.
SECRET_FIELDS = ("client_secret", "developer_token", "refresh_token")

#: The names users see in the connection form; messages say "Label (`key`)".
FIELD_LABELS: dict[str, str] = {
    "client_id": "Client ID",
    "client_secret": "Client Secret",
    "developer_token": "Developer Token",
    "refresh_token": "Refresh Token",
    "customer_id": "Customer ID",
    "account_id": "Account ID",
    "environment": "Environment",
    "tenant": "Tenant",
    "token_url": "Token URL",
    "authorize_url": "Authorize URL",
    "customer_management_url": "Customer Management URL",
    "reporting_url": "Reporting URL",
    "bulk_url": "Bulk URL",
    "client_secret_expires_on": "Client Secret expiry date",
    "extra": "Extra",
    "conn_type": "Connection type",
}

#: The extra keys every connection needs, in the order they are checked.
REQUIRED_EXTRAS = ("developer_token", "refresh_token", "customer_id", "account_id")
#: The optional extra keys, in the order they are checked.
OPTION_ORDER = (
    "environment",
    "tenant",
    "token_url",
    "authorize_url",
    "customer_management_url",
    "client_secret_expires_on",
    "reporting_url",
    "bulk_url",
)
#: Keys allowed in ``extra`` (plain or prefixed).
KNOWN_EXTRAS = frozenset((*REQUIRED_EXTRAS, *OPTION_ORDER))

#: Where in the credentials guide each value comes from.
FIELD_STEPS: dict[str, str] = {
    "client_id": STEP_SECRET,
    "client_secret": STEP_SECRET,
    "customer_id": STEP_IDS,
    "account_id": STEP_IDS,
    "developer_token": STEP_DEVTOKEN,
    "refresh_token": STEP_AUTHORIZE,
    "tenant": STEP_APP,
}

#: Longest accepted value per field, after stripping surrounding whitespace.
MAX_LENGTHS: dict[str, int] = {
    "client_id": 36,
    "client_secret": 256,
    "developer_token": 128,
    "refresh_token": 16384,
    "customer_id": 20,
    "account_id": 20,
    "environment": 32,
    "tenant": 253,
    "token_url": 2048,
    "authorize_url": 2048,
    "customer_management_url": 2048,
    "client_secret_expires_on": 64,
    "reporting_url": 2048,
    "bulk_url": 2048,
}

URL_FIELDS = ("token_url", "authorize_url", "customer_management_url", "reporting_url", "bulk_url")
ID_FIELDS = ("customer_id", "account_id")
#: The query parameter of the Microsoft Advertising web UI that carries each id.
URL_PARAM = {"account_id": "aid", "customer_id": "cid"}
