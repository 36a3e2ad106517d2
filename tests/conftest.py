"""Shared helpers for the unit tests."""

from __future__ import annotations

import pytest

from backends import BackendUnavailable, get_backend


def backend_or_skip(variant: str, device: str = "cpu"):
    """The backend, or skip with the reason it cannot run on this machine."""
    try:
        return get_backend(variant, device)
    except BackendUnavailable as err:
        pytest.skip(str(err))
