"""The Airflow shell's triggers: the async waits that run in the triggerer."""
