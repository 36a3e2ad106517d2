"""Reports: pytest-benchmark JSON -> pandas DataFrames -> CSV, Markdown and plots.

``reports.frame`` reads the files a run wrote into tidy DataFrames (the one source of
every number); ``reports.write`` formats them. No framework is imported here.
"""
