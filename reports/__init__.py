"""Reports: a run's records -> pandas DataFrames -> CSV, Markdown and plots.

``reports.records`` is the record format and its reader; ``reports.read`` pools a run's
records (or reads a pytest-benchmark JSON with gdbench's section); ``reports.frame``
turns them into tidy DataFrames (the one source of every number); ``reports.write`` and
``reports.plots`` format them; ``reports.compare`` compares two runs. No framework is
imported here.
"""
