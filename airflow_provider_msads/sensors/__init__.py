"""The Airflow shell's sensors: wait for valid credentials, deferring to the triggers."""
