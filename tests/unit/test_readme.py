"""The README's API reference is the one the models generate."""

from __future__ import annotations

import subprocess
import sys

from tests.support.control_plane import REPO


def test_readme_api_reference_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "hack" / "readme_api.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
