"""Worker start-up: glibc's mmap threshold and the event loop (ccpulse/cli.py)."""

from __future__ import annotations

import platform

import pytest

from ccpulse.cli import fix_mmap_threshold


def test_glibc_takes_a_fixed_mmap_threshold() -> None:
    assert platform.libc_ver()[0] == "glibc", "the worker's machines (Debian, the image) run glibc"
    assert fix_mmap_threshold(128 * 1024) is True


def test_the_event_loop_setting_takes_uvloop_or_asyncio_only() -> None:
    from stream.settings import Settings, SettingsError

    assert Settings.from_env({}).event_loop == "uvloop"
    assert Settings.from_env({"CCPULSE_EVENT_LOOP": "asyncio"}).event_loop == "asyncio"
    with pytest.raises(SettingsError, match="CCPULSE_EVENT_LOOP"):
        Settings.from_env({"CCPULSE_EVENT_LOOP": "trio"})
