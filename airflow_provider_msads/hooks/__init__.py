"""The Airflow shell's hooks: :class:`~.msads.MicrosoftAdsHook` builds the core from a Connection."""
