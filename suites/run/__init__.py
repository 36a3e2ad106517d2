"""Who runs the suites: the ``gdbench`` command, run folders, the checks before a run,
the worker manager, and the JSON export of a run's records."""
