"""Microsoft's own SDK (``bingads``, the ``[sdk]`` extra) on this provider's tokens.

The SDK refreshes on its own when given a refresh token, which would fork the rotating
refresh-token chain the token store keeps. So it gets an authentication that asks the hook for
the access token on every call: one chain, one shared access token, whichever client is used.

The SDK (msads 13.0.30) also replaces pydantic's ``BaseModel.__getattr__`` and ``__setattr__``
for the whole process (``openapi_client.model_utils.enable_alias_support``, called by every
``ServiceClient``), so that its models answer to PascalCase aliases. Its versions skip pydantic's
private attributes, where Airflow 3's task runner keeps its state
(``RuntimeTaskInstance._ti_context_from_server``): after a task built a ``ServiceClient``, the
rest of that task process (XCom clearing, retry policy) and every later task of an in-process
``dag.test()`` failed with ``AttributeError``. :func:`make_alias_support_safe` keeps the aliases
and hands everything else back to pydantic's own methods.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from airflow_provider_msads.connection.credentials import MicrosoftAdsCredentials
from airflow_provider_msads.errors import CredentialsError

log = logging.getLogger(__name__)

#: pydantic's own BaseModel.__getattr__ / __setattr__, kept before the SDK replaces them.
_PYDANTIC: dict[str, Callable[..., Any]] = {}


def _alias_field(model: Any, item: str) -> str | None:
    for name, field in type(model).model_fields.items():
        if field.alias == item and name != item:
            return str(name)
    return None


def _safe_getattr(self: Any, item: str) -> Any:
    """Only reached when normal lookup failed: pydantic's private and extra attributes first, then
    the SDK's aliases (``campaign.DailyBudget`` for ``campaign.daily_budget``)."""
    try:
        return _PYDANTIC["__getattr__"](self, item)
    except AttributeError:
        name = _alias_field(self, item)
        if name is None:
            raise
        return getattr(self, name)


def _safe_setattr(self: Any, item: str, value: Any) -> None:
    _PYDANTIC["__setattr__"](self, _alias_field(self, item) or item, value)


def _install_safe(*_: Any) -> None:
    from pydantic import BaseModel

    BaseModel.__getattr__ = _safe_getattr  # type: ignore[attr-defined]
    BaseModel.__setattr__ = _safe_setattr  # type: ignore[method-assign]


def make_alias_support_safe() -> bool:
    """Give the SDK its aliases without breaking pydantic models elsewhere (see the module
    docstring): installs the safe pair now and makes the SDK's ``enable_alias_support`` install it
    too. False when the SDK had already replaced pydantic's methods in this process (a
    ``ServiceClient`` made before the hook's authorization): nothing can be restored then."""
    from pydantic import BaseModel

    for name in ("__getattr__", "__setattr__"):
        current = BaseModel.__dict__.get(name)
        if current is not None and str(getattr(current, "__module__", "")).startswith("pydantic"):
            _PYDANTIC.setdefault(name, current)
    if len(_PYDANTIC) < 2:
        log.warning(
            "Microsoft's SDK replaced pydantic's attribute access before this provider could make it safe; "
            "Airflow's task state may be unreadable for the rest of this task. Create SDK clients after "
            "hook.get_sdk_authorization_data()."
        )
        return False
    _install_safe()
    for module in ("openapi_client.model_utils", "bingads.service_client"):
        loaded: Any = sys.modules.get(module)
        if loaded is not None and hasattr(loaded, "enable_alias_support"):
            loaded.enable_alias_support = _install_safe
    return True


def authorization_data(credentials: MicrosoftAdsCredentials, access_token: Callable[[], str]) -> Any:
    """A ``bingads.AuthorizationData`` whose Bearer token is ``access_token()`` at each request."""
    try:
        from bingads.authorization import Authentication, AuthorizationData
        from bingads.service_client import ServiceClient  # noqa: F401 - loads the module make_alias_support_safe patches
    except ImportError as exc:
        raise CredentialsError(
            "Microsoft's SDK (bingads) is not installed.",
            remedy="pip install 'airflow-provider-msads[sdk]' (the msads package).",
        ) from exc
    make_alias_support_safe()

    class ProviderAuthentication(Authentication):  # type: ignore[misc]
        def enrich_headers(self, headers: dict[str, str]) -> None:
            headers["Authorization"] = "Bearer " + access_token()

    return AuthorizationData(
        account_id=int(credentials.account_id),
        customer_id=int(credentials.customer_id),
        developer_token=credentials.developer_token,
        authentication=ProviderAuthentication(),
    )
