"""The Airflow glue room: what differs between the Airflow versions we support, in one place.

* :mod:`.versions`: process context, Variables, the port quirk, Airflow's ``mask_secret``;
* :mod:`.assets`: the Asset (Dataset on 2.11) a report task feeds.

Imports no other room of the package; imports Airflow only inside functions, so the core rooms
(``tokens`` for Variables and the masker) can call it without Airflow at import time.
"""
