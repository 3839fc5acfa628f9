"""The worker fixes glibc's mmap threshold at start (ccpulse/cli.py ``fix_mmap_threshold``)."""

from __future__ import annotations

import platform

import pytest

from ccpulse.cli import fix_mmap_threshold


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_takes_a_fixed_mmap_threshold() -> None:
    assert fix_mmap_threshold(128 * 1024) is True
