"""Writing a user's token Secret from the callback service (the manifest lives in mcpgw_core).

The Secret's name, labels, data keys and parsing are the shared contract in
`mcpgw_core.token_secrets`; only the Kubernetes write, with its HTTP-facing error, is here.
"""

from __future__ import annotations

from typing import Any, Final

from callback_service.errors import ServiceError
from callback_service.gateways import KubeApi, kube_failure
from mcpgw_core.api import Reason
from mcpgw_core.kube import KubeError, core_path

JSON = dict[str, Any]
# A replace can race the operator's refresh of the same Secret; a fresh authorization wins, so
# re-read and replace again (a refresh never overwrites us: it writes with resourceVersion).
_REPLACE_ATTEMPTS: Final = 3


async def store_tokens(kube: KubeApi, manifest: JSON) -> str:
    """Create the Secret, or replace the one a previous authorization left; return its name."""
    meta = manifest["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    try:
        for _ in range(_REPLACE_ATTEMPTS):
            try:
                await kube.create(core_path("secrets", namespace), manifest)
                return str(name)
            except KubeError as exc:
                if not exc.conflict:
                    raise
            existing = await kube.get(core_path("secrets", namespace, name))
            if existing is None:
                continue
            replacement = {
                **manifest,
                "metadata": {**meta, "resourceVersion": existing["metadata"]["resourceVersion"]},
            }
            try:
                await kube.replace(core_path("secrets", namespace, name), replacement)
                return str(name)
            except KubeError as exc:
                if not exc.conflict:
                    raise
        raise KubeError(409, "Conflict", "the token Secret kept changing while it was replaced")
    except KubeError as exc:
        failure = kube_failure(exc, "writing the token Secret")
        raise ServiceError(503, Reason.TOKEN_STORE_FAILED, failure.message) from None
