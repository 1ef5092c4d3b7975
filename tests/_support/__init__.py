"""Support code of the test suite, one module per concern (see each module's docstring)."""
