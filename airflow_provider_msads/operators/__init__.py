"""The Airflow shell's operators: thin, each builds the hook in ``execute``; light to import."""
