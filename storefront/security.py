"""Cross-site request checks and the security headers on every response."""

from __future__ import annotations

from urllib.parse import urlsplit

from quart import Quart, Response, request

from storefront.errors import CrossSiteRequest

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Stripe calls the webhook from its own servers; its signature is its proof.
CSRF_EXEMPT = frozenset({"webhooks.webhook"})


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_same_origin(base_url: str) -> None:
    """Refuse a state-changing request that a browser says came from another site.

    Browsers send ``Sec-Fetch-Site`` (and ``Origin``) on every POST, so a
    forged cross-site form is recognised without a token; clients that send
    neither (curl, tests) are not browsers carrying a shopper's cookies.
    """
    if request.method in SAFE_METHODS or request.endpoint in CSRF_EXEMPT:
        return
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        if fetch_site not in ("same-origin", "none"):
            raise CrossSiteRequest()
        return
    origin = request.headers.get("Origin")
    if origin is None:
        return
    allowed = {_origin(base_url), f"{request.scheme}://{request.host}".lower()}
    if origin.lower() not in allowed:
        raise CrossSiteRequest()


class ImageOrigins:
    """The CSP, allowing the https origins the catalog's images come from, and no others."""

    def __init__(self, checkout_origin: str) -> None:
        self.checkout_origin = checkout_origin
        self.origins: tuple[str, ...] = ()
        self.policy = content_security_policy(checkout_origin)

    def update(self, images: list[str | None]) -> None:
        """Allow exactly the origins of these images (https URLs only)."""
        found = tuple(sorted({_origin(i) for i in images if i and i.startswith("https://")}))
        if found != self.origins:
            self.origins = found
            self.policy = content_security_policy(self.checkout_origin, found)


def content_security_policy(checkout_origin: str, image_origins: tuple[str, ...] = ()) -> str:
    """No inline script or style; forms may only go to us and to the payment page."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            " ".join(["img-src 'self' data:", *image_origins]),
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            # Chromium applies form-action to the 303 that follows our POST.
            f"form-action 'self' {checkout_origin}",
        ]
    )


class SecurityHeaders:
    """The headers every response carries unless it set its own: the CSP and the fixed ones."""

    def __init__(self, images: ImageOrigins, base_url: str) -> None:
        self.images = images
        self.fixed = [
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "same-origin"),
            ("X-Frame-Options", "DENY"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
        ]
        if base_url.startswith("https://"):
            self.fixed.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))

    def items(self) -> list[tuple[str, str]]:
        """Every header with its value now (the CSP follows the catalog's image origins)."""
        return [("Content-Security-Policy", self.images.policy), *self.fixed]


def install(app: Quart, base_url: str, checkout_origin: str) -> None:
    """Register the CSRF check and the security headers on ``app``."""
    images = ImageOrigins(checkout_origin)
    headers = SecurityHeaders(images, base_url)
    app.extensions["image_origins"] = images
    # The catalog's fast path (storefront.fastpath) sends the same headers.
    app.extensions["security_headers"] = headers

    @app.before_request
    async def _csrf() -> None:
        check_same_origin(base_url)

    @app.after_request
    async def _headers(response: Response) -> Response:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response
