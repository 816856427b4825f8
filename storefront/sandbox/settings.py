"""Settings of the sandbox: every test knob, validated, from code, environment or CLI."""

from __future__ import annotations

import argparse
import dataclasses
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .versions import KNOWN_API_VERSIONS, PINNED_API_VERSION

DEFAULT_RETRY_SCHEDULE = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


def generate_webhook_secret() -> str:
    """Return a fresh ``whsec_`` secret for one run."""
    return "whsec_" + secrets.token_hex(24)


def mask_secret(secret: str) -> str:
    """Show a secret's prefix and last four characters only."""
    prefix, _, rest = secret.partition("_")
    if not rest:
        return "****"
    return f"{prefix}_****{rest[-4:]}"


def _parse_schedule(text: str) -> tuple[float, ...]:
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        return tuple(float(part) for part in parts)
    except ValueError:
        raise ValueError(
            f"retry_schedule must be comma-separated seconds like 1,2,4; got {text!r}"
        ) from None


def _check_rate(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1; got {value!r}")


def _check_non_negative(name: str, value: float) -> None:
    if value < 0:
        raise ValueError(f"{name} must be >= 0; got {value!r}")


@dataclass(frozen=True)
class SandboxSettings:
    """Everything the sandbox can be told; every field has a usable default."""

    public_url: str = "http://127.0.0.1:12111"
    webhook_url: str | None = "http://127.0.0.1:5000/webhook"
    webhook_secret: str = field(default_factory=generate_webhook_secret)
    latency_ms: int = 0
    # Each call's latency drawn uniformly from latency_ms ± this (Stripe's is never constant).
    latency_jitter_ms: int = 0
    duplicate_rate: float = 0.0
    shuffle_window: int = 0
    # Longest time an event waits in an unfilled shuffle window.
    shuffle_max_wait: float = 0.5
    failure_rate: float = 0.0
    drop_first_rate: float = 0.0
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    delivery_timeout: float = 10.0
    seed: int | None = None
    # Seconds between a bank debit's session completion and its settlement event.
    async_payment_delay: float = 3.0
    # How often the expiry sweeper looks for sessions past expires_at.
    expiry_interval: float = 1.0
    # The account's default API version, spoken when a request sends no Stripe-Version.
    api_version: str = PINNED_API_VERSION
    # Strict pinned-version mode: refuse every request not speaking the pinned version.
    require_api_version: bool = False
    # Port of the local mail catcher (SMTP on 127.0.0.1); 0 turns it off.
    smtp_port: int = 1025

    def __post_init__(self) -> None:
        # A tuple keeps the frozen settings hashable even when given a list.
        object.__setattr__(self, "retry_schedule", tuple(float(s) for s in self.retry_schedule))
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first setting that makes no sense."""
        if not self.public_url.startswith(("http://", "https://")):
            raise ValueError(f"public_url must be an http(s) URL; got {self.public_url!r}")
        if self.webhook_url is not None and not self.webhook_url.startswith(
            ("http://", "https://")
        ):
            raise ValueError(f"webhook_url must be an http(s) URL; got {self.webhook_url!r}")
        if not self.webhook_secret.startswith("whsec_") or len(self.webhook_secret) < 10:
            raise ValueError("webhook_secret must look like whsec_<random>")
        for name in ("duplicate_rate", "failure_rate", "drop_first_rate"):
            _check_rate(name, getattr(self, name))
        for name in (
            "latency_ms",
            "latency_jitter_ms",
            "shuffle_window",
            "shuffle_max_wait",
            "async_payment_delay",
        ):
            _check_non_negative(name, getattr(self, name))
        if self.latency_jitter_ms > self.latency_ms:
            # Clipped at zero, the mean would drift above latency_ms.
            raise ValueError(
                f"latency_jitter_ms must not exceed latency_ms ({self.latency_ms}); "
                f"got {self.latency_jitter_ms!r}"
            )
        if self.delivery_timeout <= 0:
            raise ValueError(f"delivery_timeout must be > 0; got {self.delivery_timeout!r}")
        if self.expiry_interval <= 0:
            raise ValueError(f"expiry_interval must be > 0; got {self.expiry_interval!r}")
        if self.api_version not in KNOWN_API_VERSIONS:
            raise ValueError(
                f"api_version must be a Stripe API version up to {PINNED_API_VERSION}; "
                f"got {self.api_version!r}"
            )
        if not 0 <= self.smtp_port <= 65535:
            raise ValueError(f"smtp_port must be a port number or 0 (off); got {self.smtp_port!r}")
        if any(delay < 0 for delay in self.retry_schedule):
            raise ValueError(f"retry_schedule delays must be >= 0; got {self.retry_schedule!r}")

    @property
    def public_base(self) -> str:
        """The public URL without a trailing slash."""
        return self.public_url.rstrip("/")

    def describe(self) -> list[str]:
        """Human-readable lines of the settings, with the secret masked."""
        lines = []
        for spec in dataclasses.fields(self):
            value: Any = getattr(self, spec.name)
            if spec.name == "webhook_secret":
                value = mask_secret(value)
            elif spec.name == "retry_schedule":
                value = ",".join(f"{delay:g}" for delay in value)
            lines.append(f"{spec.name} = {value}")
        return lines

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SandboxSettings:
        """Build settings from ``SANDBOX_*`` variables (and ``STRIPE_WEBHOOK_SECRET``)."""
        values: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):
            raw = environ.get("SANDBOX_" + spec.name.upper())
            if raw is None:
                continue
            values[spec.name] = _convert(spec.name, raw)
        if "webhook_secret" not in values and environ.get("STRIPE_WEBHOOK_SECRET"):
            values["webhook_secret"] = environ["STRIPE_WEBHOOK_SECRET"]
        return cls(**values)

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """Add one flag per knob to ``parser`` (see the module-level function)."""
        add_arguments(parser)

    @classmethod
    def from_args(cls, ns: argparse.Namespace, base: SandboxSettings) -> SandboxSettings:
        """Override ``base`` with every knob given on the command line."""
        changes: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):
            raw = getattr(ns, spec.name, None)
            if raw is not None:
                changes[spec.name] = _convert(spec.name, raw) if isinstance(raw, str) else raw
        return dataclasses.replace(base, **changes)


_FLOATS = {
    "duplicate_rate",
    "failure_rate",
    "drop_first_rate",
    "delivery_timeout",
    "shuffle_max_wait",
    "async_payment_delay",
    "expiry_interval",
}
_INTS = {"latency_ms", "latency_jitter_ms", "shuffle_window", "seed", "smtp_port"}
_BOOLS = {"require_api_version"}


def _convert(name: str, raw: str) -> Any:
    """Turn one textual setting into its typed value."""
    if name == "retry_schedule":
        return _parse_schedule(raw)
    if name == "webhook_url":
        return raw or None
    if name in _BOOLS:
        if raw.strip().lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{name} must be true or false; got {raw!r}")
        return raw.strip().lower() in ("true", "1")
    try:
        if name in _FLOATS:
            return float(raw)
        if name in _INTS:
            return int(raw)
    except ValueError:
        kind = "a number" if name in _FLOATS else "an integer"
        raise ValueError(f"{name} must be {kind}; got {raw!r}") from None
    return raw


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per knob; unset flags keep the base settings' values."""
    group = parser.add_argument_group("sandbox")
    group.add_argument("--public-url", help="base of hosted-page URLs handed out")
    group.add_argument("--webhook-url", help="default webhook endpoint ('' for none)")
    group.add_argument("--webhook-secret", help="whsec_ secret of the default endpoint")
    group.add_argument("--latency-ms", help="milliseconds added to every API call")
    group.add_argument(
        "--latency-jitter-ms", help="each call's latency is latency-ms plus or minus up to this"
    )
    group.add_argument("--duplicate-rate", help="fraction of events delivered twice (0-1)")
    group.add_argument("--shuffle-window", help="deliver events shuffled in windows of N")
    group.add_argument("--shuffle-max-wait", help="seconds an unfilled window waits")
    group.add_argument("--failure-rate", help="fraction of API calls answered 500 (0-1)")
    group.add_argument(
        "--drop-first-rate", help="fraction of events whose first delivery is dropped (0-1)"
    )
    group.add_argument("--retry-schedule", help="seconds between attempts, e.g. 1,2,4")
    group.add_argument("--delivery-timeout", help="seconds per delivery attempt")
    group.add_argument("--seed", help="random seed for the knobs")
    group.add_argument(
        "--async-payment-delay", help="seconds before a bank debit settles (succeeds/fails)"
    )
    group.add_argument("--expiry-interval", help="seconds between expiry sweeps")
    group.add_argument(
        "--api-version", help="the account's default API version (when none is sent)"
    )
    group.add_argument(
        "--require-api-version",
        help="true: refuse requests not speaking the pinned API version (strict mode)",
    )
    group.add_argument("--smtp-port", help="port of the local mail catcher (0: off)")
