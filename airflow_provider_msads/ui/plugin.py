"""The provider's Airflow plugin: the UI pages on Airflow 3.1+, nothing elsewhere.

Airflow loads this module wherever it loads plugins (scheduler, workers, DAG processor, the
Airflow 2 webserver), so it imports no FastAPI/Starlette and builds nothing at import: the app
and the middleware below are plain ASGI callables that import :mod:`.app` on their first request.
Feature detection, not version numbers: the pages need ``AirflowPlugin.external_views`` (3.1+);
on Airflow 2.11 and 3.0 the plugin registers nothing and ``msads-authorize`` is the way.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_msads.ui.flow import CALLBACK_PATH, PREFIX

__all__ = ["EntryPointPlugin", "MicrosoftAdsPlugin", "RootCallbackMiddleware", "ui_supported"]

Scope = dict[str, Any]


def ui_supported() -> bool:
    """True on an Airflow whose plugins can add FastAPI apps and UI links (3.1+)."""
    return hasattr(AirflowPlugin, "fastapi_apps") and hasattr(AirflowPlugin, "external_views")


class _LazyApp:
    """ASGI app that builds the FastAPI app on the first request (and only in the API server)."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if self._app is None:
            from airflow_provider_msads.ui.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


def route_path(scope: Scope) -> str:
    """The request's path below Airflow's root: ``[api] base_url``'s sub-path (the ASGI
    ``root_path`` Airflow's app sets) removed when the path carries it, as Starlette routes."""
    path = str(scope.get("path") or "/")
    root = str(scope.get("root_path") or "").rstrip("/")
    if root and (path == root or path.startswith(root + "/")):
        path = path[len(root) :]
    return path or "/"


class RootCallbackMiddleware:
    """Takes Microsoft's redirect back to this Airflow; every other request passes untouched.

    The credentials guide registers ``http://localhost:8080``, where a local Airflow API server
    listens, so Microsoft may send the browser to the root ``/?code=…&state=…``. Only a GET on
    the root whose ``state`` this deployment issued is taken (and the plugin's own callback path);
    an answer of the plugin's shape whose state is no longer known (purged) is sent to the
    plugin's page that says so, without its code and state; anything else, Airflow's UI included,
    goes on as if this middleware did not exist. Under a sub-path (``[api] base_url =
    https://host/airflow``) the same paths below it are matched.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and scope.get("method") == "GET":
            path = route_path(scope)
            query = scope.get("query_string") or b""
            if path == CALLBACK_PATH:
                from airflow_provider_msads.ui.app import callback

                await callback(scope, receive, send)
                return
            if path == "/" and b"state=" in query:
                from airflow_provider_msads.ui.app import (
                    callback,
                    is_issued_state,
                    looks_like_an_answer,
                    unknown_answer,
                )

                if await is_issued_state(query):
                    await callback(scope, receive, send)
                    return
                if looks_like_an_answer(query):
                    await unknown_answer(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class MicrosoftAdsPlugin(AirflowPlugin):
    """Registered by the provider (``get_provider_info()["plugins"]``); no file goes into ``plugins/``."""

    name = "microsoft_advertising"
    if ui_supported():
        fastapi_apps = [{"name": "Microsoft Advertising", "app": _LazyApp(), "url_prefix": PREFIX}]
        fastapi_root_middlewares = [
            {"name": "Microsoft Advertising sign-in callback", "middleware": RootCallbackMiddleware}
        ]
        external_views = [
            {
                "name": "Microsoft Advertising: authorize",
                "href": f"{PREFIX}/",
                "destination": "nav",
                "category": "admin",
            },
            {
                "name": "Microsoft Advertising: token health",
                "href": f"{PREFIX}/health",
                "destination": "nav",
                "category": "admin",
            },
        ]


def _providers_load_lazily() -> bool:
    try:
        from airflow import settings

        return bool(getattr(settings, "LAZY_LOAD_PROVIDERS", True))
    except Exception:  # pragma: no cover - Airflow not configured
        return True


class _Inactive(AirflowPlugin):
    """Stands in when Airflow loads the provider's plugins itself: registers nothing."""

    name = "microsoft_advertising_entrypoint"


#: The ``airflow.plugins`` entry point. Airflow reads ``get_provider_info()["plugins"]`` only when
#: ``[core] lazy_discover_providers`` is False (its default is True), so the same plugin is also offered
#: here; when Airflow does load provider plugins this is an empty stand-in, never a duplicate.
EntryPointPlugin: type[AirflowPlugin] = MicrosoftAdsPlugin if _providers_load_lazily() else _Inactive
