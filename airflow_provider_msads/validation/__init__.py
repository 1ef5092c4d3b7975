"""The validation room: is this connection good enough to ingest with? One verdict per credential.

* :mod:`.steps`: the three calls (token refresh, GetUser, GetAccount) as one flow;
* :mod:`.report`: the verdicts, warnings and how they read for a person.

May import: ``errors``, ``connection``, ``tokens``, ``customer``. No Airflow.
"""
