"""``[core] hostname_callable`` of the Celery deployment test: each worker names itself as a host."""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("MSADS_DEPLOY_HOST") or socket.getfqdn()
