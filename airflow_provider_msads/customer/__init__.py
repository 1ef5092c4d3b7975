"""The Customer Management room: the REST calls that prove credentials, and the accounts under a customer.

* :mod:`.api`: GetUser / GetAccount and their faults;
* :mod:`.accounts`: ``GetAccountsInfo`` as typed values ("report on every account" starts here).

May import: ``errors``, ``connection``, ``tokens``. No Airflow.
"""
