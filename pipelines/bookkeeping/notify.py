"""Tell a running prediction service that the champion changed, so it does not wait for its next registry check."""

import json
import logging
import urllib.error
import urllib.request

from ...core.settings import ServiceSettings

log = logging.getLogger(__name__)


def request_reload(service: ServiceSettings, timeout: float = 30.0) -> str | None:
    """POST {service.url}/reload; returns the version the service now serves, or None if it could not be reached.

    A service that is down or refuses is logged as a warning: training succeeded, and the service will catch up on its
    next poll.
    """
    if not service.url:
        return None
    url = service.url.rstrip("/") + "/reload"
    headers = {"Content-Type": "application/json"}
    if service.auth_token is not None:
        headers["Authorization"] = f"Bearer {service.auth_token.get_secret_value()}"
    request = urllib.request.Request(url, data=b"{}", headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        log.warning(
            "the service at %s refused to reload (HTTP %s); it will pick up the champion on its next check",
            url,
            error.code,
        )
        return None
    except (urllib.error.URLError, OSError, ValueError) as error:
        log.warning(
            "could not reach the service at %s (%s); it will pick up the champion on its next check", url, error
        )
        return None
    version = answer.get("model_version")
    log.info("service at %s now serves version %s", service.url, version)
    return str(version) if version is not None else None
