"""Stripe-shaped API errors and the JSON they render to."""

from __future__ import annotations

from typing import Any

DOC_URL = "https://stripe.com/docs/error-codes/"


class StripeApiError(Exception):
    """An error answered in Stripe's ``{"error": {...}}`` format."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        """The JSON body Stripe sends for this error."""
        error: dict[str, Any] = {"message": self.message, "type": self.type}
        if self.param is not None:
            error["param"] = self.param
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = DOC_URL + self.code.replace("_", "-")
        return {"error": error}


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeApiError:
    """A 400 ``invalid_request_error``."""
    return StripeApiError(400, message, param=param, code=code)


def missing_param(param: str) -> StripeApiError:
    """A 400 for a required parameter that was not sent."""
    return invalid(f"Missing required param: {param}.", param, "parameter_missing")


def unknown_param(param: str) -> StripeApiError:
    """A 400 for a parameter Stripe does not know."""
    return invalid(f"Received unknown parameter: {param}", param, "parameter_unknown")


def no_such(kind: str, object_id: str, param: str = "id") -> StripeApiError:
    """A 404 for an object that does not exist."""
    return StripeApiError(
        404, f"No such {kind}: '{object_id}'", param=param, code="resource_missing"
    )


def unrecognized_url(method: str, path: str) -> StripeApiError:
    """A 404 for a route the API does not have."""
    return StripeApiError(
        404,
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
        "or we can help at https://support.stripe.com/.",
    )


def api_error() -> StripeApiError:
    """A 500 ``api_error`` like the ones Stripe answers on an internal failure."""
    return StripeApiError(
        500,
        "An unknown error occurred (injected by the sandbox's failure_rate).",
        type="api_error",
    )
