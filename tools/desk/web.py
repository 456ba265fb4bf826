"""What every response of the desk shares: the session cookie's name and the headers that
keep a page out of caches and frames."""

from __future__ import annotations

from starlette.responses import Response

COOKIE = "pieton_desk"


def private(response: Response) -> Response:
    """Nothing the desk shows is kept by the browser or framed by another page."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    return response
