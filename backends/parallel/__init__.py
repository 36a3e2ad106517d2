"""Data-parallel variants: the rows split over K devices or processes.

``ranks`` is framework-free (shards, cores, launch environment); ``peer`` is the one
entry point of a peer process (``python -m backends.parallel.peer FRAMEWORK``), the only
module that imports each framework's ``serve``; ``torch_parallel`` and ``jax_parallel``
hold the sessions of each framework.
"""
