"""What a test does when a tool it needs (chromium, nginx, coturn, a PostgreSQL server) is
missing: skip with the reason, or fail where the run must test everything
(``MOODLENS_REQUIRE_TOOLS=1``, which CI sets: a green CI then means those tests ran)."""

from __future__ import annotations

import os

import pytest


def tool_missing(reason: str, flag: str = "MOODLENS_REQUIRE_TOOLS") -> None:
    """Skip with `reason`, or fail with it when `flag` (or MOODLENS_REQUIRE_TOOLS) is "1"."""
    if "1" in (os.environ.get(flag), os.environ.get("MOODLENS_REQUIRE_TOOLS")):
        pytest.fail(f"{reason} (required here: {flag}=1)", pytrace=False)
    pytest.skip(reason)
