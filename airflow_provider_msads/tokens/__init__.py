"""The tokens room: turning a rotating refresh token into access tokens, kept sealed and shared.

* :mod:`.client` (talks to the token endpoint) and :mod:`.manager` (decides when);
* :mod:`.store` (sealed state and its cipher), :mod:`.backends` (Variable, file, memory),
  :mod:`.locks` (single-flight per machine) and :mod:`.files` (owner-only atomic writes);
* :mod:`.flow`: the one retry loop with a sync and an async driver, used by every service room;
* :mod:`.auth`: the ``httpx.Auth`` face; :mod:`.masking`: hiding learnt tokens from logs;
* :mod:`.sdk`: Microsoft's ``bingads`` SDK on these tokens.

May import: ``errors``, ``connection``, and ``compat`` (the only way the Variable backend and the
masker reach Airflow, lazily). Importing this room imports no Airflow.
"""
