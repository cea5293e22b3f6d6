"""Reading an error answer: the one function that turns it into jobport.errors' class for it."""

from __future__ import annotations

import httpx2

from jobport.errors import APIError, for_status


def error_from(response: httpx2.Response) -> APIError:
    """The error for an error answer (read), from its JSON `{error, message, details}`.

    Its class is the one the server raised for that status (jobport.errors.for_status).
    """
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        # The token endpoint says `invalid_client` (RFC 6749) and, in `reason`, which of ours.
        code = body["reason"] if isinstance(body.get("reason"), str) else body["error"]
        message = str(body.get("message") or body.get("error_description") or code)
        details = body.get("details")
    else:  # not from jobport itself: a proxy, a load balancer
        code = f"http_{status}"
        message = response.text.strip()[:500] or response.reason_phrase or code
        details = None
    kind = for_status(status)
    return kind(message, status=status, code=code, details=details, response=response)
