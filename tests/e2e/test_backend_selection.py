"""`--cluster=kind` on a machine that cannot run kind: every scenario is skipped, and the skip
reason is exactly what the probe found missing (so CI here exercises the kind code path up to
cluster selection, and a user reading the report knows what to install)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.e2e.conftest import SKIP_PREFIX
from tests.e2e.kind_probe import unavailable_here
from tests.support.control_plane import REPO

pytestmark = pytest.mark.e2e
SCENARIOS = "tests/e2e/test_scenarios.py"


def _scenario_count() -> int:
    text = (REPO / SCENARIOS).read_text()
    return len(re.findall(r"^def test_", text, flags=re.MULTILINE))


def test_the_kind_backend_is_skipped_with_the_precise_reason() -> None:
    expected = unavailable_here()
    if expected is None:
        pytest.skip("kind can run on this machine: `pytest tests/e2e --cluster=kind` is the test")
    env = {k: v for k, v in os.environ.items() if k != "MCPGW_E2E_CLUSTER"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", SCENARIOS, "--cluster=kind", "-rs", "-q",
         "-p", "no:cacheprovider"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:]
    skips = [line for line in run.stdout.splitlines() if line.startswith("SKIPPED")]
    print("\n".join(skips))
    total = sum(int(m) for m in re.findall(r"^SKIPPED \[(\d+)\]", run.stdout, flags=re.MULTILINE))
    assert total == _scenario_count(), run.stdout[-3000:]
    assert all(line.endswith(f": {SKIP_PREFIX}{expected}") for line in skips), skips
    assert re.search(rf"\b{total} skipped\b", run.stdout), run.stdout[-500:]
    # Cluster selection happened before anything local started: no control plane, no peer.
    assert "passed" not in run.stdout
