"""`make demo`: apply the demo gateway, authorize it headlessly, show it Ready.

Runs after `make dev-up`; uses `.dev/env` for the endpoints. The browser leg is driven the way a
person would: the authorize link sets the browser-binding cookie, the demo authorization
server's login and consent forms are submitted, and the redirect goes back to the callback
service with that same cookie.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.oidc_login import complete_authorization  # noqa: E402

NAMESPACE, NAME = "demo", "demo-files"
DEMO_USER = "demo-user"


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def load_env() -> dict[str, str]:
    path = REPO / ".dev" / "env"
    if not path.exists():
        raise SystemExit("[demo] error: .dev/env is missing; run `make dev-up` first")
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = shlex.split(value)[0] if value else ""
    return env


def kubectl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    assets = env["PATH"].split(":", 1)[0]
    return subprocess.run(
        [f"{assets}/kubectl", "--kubeconfig", env["KUBECONFIG"], *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def condition(env: dict[str, str], kind: str) -> dict[str, str]:
    got = kubectl(env, "get", "mcpgateway", NAME, "-n", NAMESPACE, "-o", "json")
    if got.returncode != 0:
        return {}
    for cond in (json.loads(got.stdout).get("status") or {}).get("conditions", []):
        if cond["type"] == kind:
            return dict(cond)
    return {}


def wait_for(env: dict[str, str], kind: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: dict[str, str] = {}
    while time.monotonic() < deadline:
        last = condition(env, kind)
        if last.get("status") == "True":
            say(f"{kind}=True ({last.get('reason')})")
            return
        time.sleep(0.5)
    raise SystemExit(
        f"[demo] error: {kind} is not True after {timeout:.0f} s: "
        f"{last.get('reason')}: {last.get('message')}\n"
        f"  see `kubectl describe mcpgateway {NAME} -n {NAMESPACE}` and .dev/logs/operator.log"
    )


def authorize(env: dict[str, str]) -> None:
    header = env["CALLBACK_AUTH_HEADER"].partition(": ")[0]
    base = env["CALLBACK_URL"]
    with httpx.Client(follow_redirects=False, timeout=10, trust_env=False) as browser:
        start = browser.get(
            f"{base}/oauth/authorize/{NAMESPACE}/{NAME}", headers={header: DEMO_USER}
        )
        if start.status_code != 302:
            raise SystemExit(f"[demo] error: authorize answered {start.status_code}: {start.text}")
        say("authorize link opened; logging in at the demo authorization server")
        back = complete_authorization(start.headers["location"], username=DEMO_USER)
        done = browser.get(back, headers={"Accept": "application/json"})
        if done.status_code != 200:
            raise SystemExit(f"[demo] error: callback answered {done.status_code}: {done.text}")
        say("callback completed: tokens stored for demo-user")


def main() -> None:
    env = load_env()
    say("applying examples/demo-gateway.yaml")
    applied = kubectl(env, "apply", "-f", str(REPO / "examples" / "demo-gateway.yaml"))
    if applied.returncode != 0:
        raise SystemExit(f"[demo] error: kubectl apply failed: {applied.stderr}")
    wait_for(env, "Registered", 60)
    wait_for(env, "CallbackReady", 60)
    if condition(env, "Authorized").get("status") != "True":
        authorize(env)
    wait_for(env, "Authorized", 60)
    wait_for(env, "Ready", 60)
    print()
    print(kubectl(env, "get", "mcpgateways", "-A", "-o", "wide").stdout, end="")
    print(
        "\nExplore:\n"
        "  source .dev/env\n"
        f"  kubectl describe mcpgateway {NAME} -n {NAMESPACE}\n"
        f"  kubectl get secrets -n {NAMESPACE} -l mcpgw.dev/gateway={NAME}\n"
        f"  kubectl get mcpgateway {NAME} -n {NAMESPACE}"
        " -o jsonpath='{.status.authorization.authorizeURL}'\n"
        "  make dev-down      # stop everything\n"
    )


if __name__ == "__main__":
    main()
