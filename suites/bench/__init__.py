"""The two pytest suites a worker runs (convergence, per-epoch cost), their conftest, and
what a case uses to time and measure itself."""
