"""The connection form as wtforms fields, for the Airflow versions that ask the hook (2.11 to 3.1).

Airflow 3.2+ draws the form from provider info (``conn-fields``) and never imports this. Older
versions call the hook in the webserver (real FAB widgets) or, on 3.0/3.1, in the API server with
wtforms, flask_babel and FAB patched by mocks that accept only ``label, validators, description,
default, widget``: so every import happens at call time, and only those keywords are passed. The
fields are built from the same ``CONN_FIELDS`` as ``conn-fields``, so both forms agree.
"""

from __future__ import annotations

from typing import Any


def connection_form_widgets() -> dict[str, Any]:
    """The five extra fields, keyed as in ``conn-fields``."""
    from wtforms import PasswordField, StringField
    from wtforms.validators import Optional, Regexp, any_of

    from airflow_provider_msads.get_provider_info import CONN_FIELDS

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
