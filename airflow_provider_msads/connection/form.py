"""The connection form as wtforms fields, for the Airflow versions that ask the hook (2.11 to 3.1).

Airflow 3.2+ draws the form from provider info (``conn-fields``) and never imports this. Older
versions call the hook in the webserver (real FAB widgets) or, on 3.0/3.1, in the API server with
wtforms, flask_babel and FAB patched by mocks that accept only ``label, validators, description,
default, widget``: so every import happens at call time, and only those keywords are passed. The
fields are built from the same ``CONN_FIELDS`` (declared below, handed to Airflow by
:mod:`~airflow_provider_msads.get_provider_info`) as ``conn-fields``, so both forms agree.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_msads.connection.fields import FIELD_LABELS, OPTION_ORDER


def _text(name: str, description: str, *, secret: bool = False, pattern: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if secret:
        schema["format"] = "password"
    if pattern:
        schema["pattern"] = pattern
    return {"label": FIELD_LABELS[name], "description": description, "schema": schema}


CONN_FIELDS: dict[str, dict[str, Any]] = {
    "developer_token": _text(
        "developer_token",
        "From Microsoft Advertising: Settings > Developer settings > Request token (guide step 4).",
        secret=True,
    ),
    "refresh_token": _text(
        "refresh_token",
        "From `msads-authorize` or guide steps 5-6. Rotated automatically afterwards; paste a new one only "
        "after re-authorizing.",
        secret=True,
    ),
    "customer_id": _text(
        "customer_id",
        "The number after cid= in the Microsoft Advertising URL (guide step 3).",
        pattern=r"^\s*[0-9]+\s*$",
    ),
    "account_id": _text(
        "account_id",
        "The number after aid= in the Microsoft Advertising URL (guide step 3); not the account number like F1234ABC.",
        pattern=r"^\s*[0-9]+\s*$",
    ),
    "environment": {
        "label": FIELD_LABELS["environment"],
        "description": "production, or sandbox for Microsoft Advertising's sandbox accounts and developer token.",
        "schema": {"type": ["string", "null"], "enum": ["production", "sandbox"], "default": "production"},
    },
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["host", "schema", "port"],
    "relabeling": {"login": FIELD_LABELS["client_id"], "password": FIELD_LABELS["client_secret"]},
    "placeholders": {
        "login": "Application (client) ID of the app registration (guide step 2), a GUID",
        "password": "The client secret's Value, not its Secret ID (guide step 2)",
        "extra": '{"tenant": "common"}  (optional overrides: '
        + ", ".join(name for name in OPTION_ORDER if name not in CONN_FIELDS)
        + ")",
        "customer_id": "e.g. 251186883",
        "account_id": "e.g. 180535609",
    },
}


def airflow_2_field_behaviour() -> dict[str, Any]:
    """``UI_FIELD_BEHAVIOUR`` keyed as Airflow 2's hook method returns it (underscores, fresh copies)."""
    return {
        "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden-fields"]),
        "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
        "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
    }


def connection_form_widgets() -> dict[str, Any]:
    """The five extra fields, keyed as in ``conn-fields``."""
    from wtforms import PasswordField, StringField
    from wtforms.validators import Optional, Regexp, any_of

    try:
        from flask_babel import lazy_gettext
    except ImportError:  # Airflow 3 without the FAB provider: labels are plain strings
        lazy_gettext = str
    try:
        from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget

        text_widget: Any = BS3TextFieldWidget()
        password_widget: Any = BS3PasswordFieldWidget()
    except ImportError:  # no FAB: wtforms' own inputs (PasswordField's is still type=password)
        text_widget = password_widget = None

    widgets: dict[str, Any] = {}
    for name, spec in CONN_FIELDS.items():
        schema = spec["schema"]
        validators: list[Any] = [Optional()]
        if "pattern" in schema:
            validators.append(Regexp(schema["pattern"], message=f"{spec['label']}: digits only."))
        if "enum" in schema:
            validators.append(any_of(schema["enum"]))
        secret = schema.get("format") == "password"
        field_class = PasswordField if secret else StringField
        widget = password_widget if secret else text_widget
        kwargs: dict[str, Any] = {"validators": validators, "description": spec["description"]}
        if "default" in schema:
            kwargs["default"] = schema["default"]
        if widget is not None:
            kwargs["widget"] = widget
        widgets[name] = field_class(lazy_gettext(spec["label"]), **kwargs)
    return widgets
