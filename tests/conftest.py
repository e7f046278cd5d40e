"""Fixtures shared by several test modules."""

from __future__ import annotations

import os
import shutil

import pytest

# LiteLLM fetches its model price map over the network at import unless told not to;
# tests have no network (and agent_usage prices LiteLLM calls itself).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture
def unprivileged() -> list[str]:
    """A command prefix under which file modes bind, even for root (else empty).

    Root reads and writes files whatever their mode; `setpriv` drops the
    capabilities that let it, so permission errors can be tested as root too.
    """
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


# The headless-Chromium fixture for the dashboard's and the docs site's browser tests.
from chromium import browser  # noqa: E402, F401
