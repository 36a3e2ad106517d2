"""The generator of docs/performance.md (``make perf``, ``python -m suites.perf``): studies
that measure this machine beyond a ``gdbench run``, and the document built from them."""
