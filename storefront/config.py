"""Settings read from the environment, validated once at start-up."""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from storefront.mail import MailSettings

SANDBOX_API_KEY = "sk_test_sandbox"
SANDBOX_URL = "http://127.0.0.1:12111"
STRIPE_CHECKOUT_ORIGIN = "https://checkout.stripe.com"

_SECRET_KEY = re.compile(r"^(sk|rk)_(test|live)_[A-Za-z0-9]{8,}$")
_WEBHOOK_SECRET = re.compile(r"^whsec_[A-Za-z0-9+/=_-]{8,}$")
_METHOD_TYPE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")

# The ranges every numeric setting and option must fall in (README, .env.example).
# A duration outside them is a typo, and a NaN or infinite one would silently
# disable what it times (a reconciler matching no order, a poll asking every time).
DAY = 24 * 60 * 60.0
RECONCILE_INTERVAL_RANGE = (0.0, DAY)
RECONCILE_AFTER_RANGE = (0.0, 30 * DAY)
STATUS_SYNC_AFTER_RANGE = (0.0, DAY)
CHECKOUT_RATE_LIMIT_RANGE = (0, 10_000)
PROXY_HOPS_RANGE = (0, 5)
# Stripe keeps a Checkout Session open 30 minutes to 24 hours.
CHECKOUT_EXPIRES_AFTER_RANGE = (1800, 86_400)
PORT_RANGE = (1, 65535)
# Abandoned carts are deleted after this long untouched (an hour to 90 days).
CART_MAX_AGE_RANGE = (3600, 90 * 86_400)
_COUNTRY = re.compile(r"^[A-Z]{2}$")
# "Standard=500:3-5": a name, an amount in minor units, optional business days.
_RATE = re.compile(r"^([^=,;]{1,60})=([0-9]{1,9})(?::([0-9]{1,2})-([0-9]{1,2}))?$")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message is one line for the operator."""


def generate_webhook_secret() -> str:
    """Make a fresh ``whsec_`` secret for a sandbox run."""
    return "whsec_" + secrets.token_hex(24)


@dataclass(frozen=True)
class Settings:
    """Everything the shop needs to know about its surroundings."""

    stripe_secret_key: str = field(repr=False)
    webhook_secret: str = field(repr=False)
    api_base: str | None
    base_url: str
    database: Path
    sandbox: bool
    checkout_origin: str
    max_network_retries: int = 2
    reconcile_interval: float = 60.0
    reconcile_after: float = 15 * 60.0
    max_body_bytes: int = 256 * 1024
    # How long a write waits for another connection's lock before failing (and
    # the webhook answering 500, so Stripe retries).
    db_busy_timeout_ms: int = 5000
    # Empty: offer what the Dashboard enables; else only these of them (e.g. card only).
    allowed_payment_methods: tuple[str, ...] = ()
    # A polled open order is checked with Stripe at most this often (0: never).
    status_sync_after: float = 30.0
    # Seconds a Checkout Session takes payments (Stripe allows 30 min to 24 h).
    checkout_expires_after: int = 3600
    # Checkouts one client address may start per minute (0: no limit).
    checkout_rate_limit: int = 10
    # Reverse proxies in front of the shop that append the client's address to
    # X-Forwarded-For (0: the connecting address is the client's).
    proxy_hops: int = 0
    # postgresql://… selects PostgreSQL (then ``database`` is unused); never shown, it
    # may hold a password.
    database_url: str | None = field(default=None, repr=False)
    mail: MailSettings = field(default_factory=MailSettings)
    outbox_interval: float = 2.0
    # Seconds between sweeps for paid orders still missing Stripe's line items
    # (0: no sweeps; an order a webhook just moved is still fetched at once).
    line_items_interval: float = 30.0
    # The shop's name in titles, the header and Stripe's page.
    shop_name: str = "Storefront"
    # Seconds an untouched cart is kept before it is deleted.
    cart_max_age: int = 14 * 86_400
    # Where physical goods ship, and the rates offered (name, minor units, days).
    shipping_countries: tuple[str, ...] = ("AT", "BE", "DE", "ES", "FR", "GB", "IE", "IT", "NL")
    shipping_rates: tuple[tuple[str, int, int | None, int | None], ...] = (
        ("Standard", 500, 3, 5),
    )
    allow_promotion_codes: bool = True
    automatic_tax: bool = False
    # Seconds between an open page's checks for products selling out (0: off).
    stock_poll_interval: int = 5

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read and validate settings; raise ConfigError with one clear line."""
        key = environ.get("STRIPE_SECRET_KEY", "").strip()
        sandbox = not key
        api_base = environ.get("STRIPE_API_BASE", "").strip() or None
        webhook_secret = environ.get("STRIPE_WEBHOOK_SECRET", "").strip()

        if sandbox:
            key = SANDBOX_API_KEY
            api_base = api_base or SANDBOX_URL
            # The runner hands one secret to both sides; alone, make one up.
            webhook_secret = webhook_secret or generate_webhook_secret()
        else:
            if not _SECRET_KEY.match(key):
                raise ConfigError(
                    "STRIPE_SECRET_KEY must look like sk_test_… or sk_live_… "
                    "(unset it to run against the local sandbox)"
                )
            if not webhook_secret:
                raise ConfigError(
                    "STRIPE_WEBHOOK_SECRET is required with a real Stripe key "
                    "(the whsec_… of your webhook endpoint or of `stripe listen`)"
                )
        if not _WEBHOOK_SECRET.match(webhook_secret):
            raise ConfigError("STRIPE_WEBHOOK_SECRET must look like whsec_…")
        if api_base is not None:
            api_base = _url("STRIPE_API_BASE", api_base)

        base_url = _url(
            "STOREFRONT_BASE_URL", environ.get("STOREFRONT_BASE_URL", "http://127.0.0.1:5000")
        )
        database = Path(environ.get("STOREFRONT_DATABASE", "instance/storefront.sqlite3"))
        return cls(
            stripe_secret_key=key,
            webhook_secret=webhook_secret,
            api_base=api_base,
            base_url=base_url,
            database=database,
            sandbox=sandbox,
            checkout_origin=_origin(api_base) if api_base else STRIPE_CHECKOUT_ORIGIN,
            max_network_retries=_int(environ, "STRIPE_MAX_NETWORK_RETRIES", 2, 0, 10),
            reconcile_interval=_float(
                environ, "STOREFRONT_RECONCILE_INTERVAL", 60.0, *RECONCILE_INTERVAL_RANGE
            ),
            reconcile_after=_float(
                environ, "STOREFRONT_RECONCILE_AFTER", 900.0, *RECONCILE_AFTER_RANGE
            ),
            db_busy_timeout_ms=_int(environ, "STOREFRONT_DB_BUSY_TIMEOUT_MS", 5000, 0, 600_000),
            allowed_payment_methods=_method_types(environ),
            status_sync_after=_float(
                environ, "STOREFRONT_STATUS_SYNC_AFTER", 30.0, *STATUS_SYNC_AFTER_RANGE
            ),
            checkout_rate_limit=_int(
                environ, "STOREFRONT_CHECKOUT_RATE_LIMIT", 10, *CHECKOUT_RATE_LIMIT_RANGE
            ),
            proxy_hops=_int(environ, "STOREFRONT_PROXY_HOPS", 0, *PROXY_HOPS_RANGE),
            checkout_expires_after=_int(
                environ, "STOREFRONT_CHECKOUT_EXPIRES_AFTER", 3600, *CHECKOUT_EXPIRES_AFTER_RANGE
            ),
            database_url=database_url(environ.get("STOREFRONT_DATABASE_URL", "")),
            mail=MailSettings.from_env(environ, sandbox),
            outbox_interval=_float(environ, "STOREFRONT_OUTBOX_INTERVAL", 2.0, 0.0, 3600.0),
            line_items_interval=_float(
                environ, "STOREFRONT_LINE_ITEMS_INTERVAL", 30.0, 0.0, 86_400.0
            ),
            shop_name=_shop_name(environ),
            cart_max_age=_int(
                environ, "STOREFRONT_CART_MAX_AGE", 14 * 86_400, *CART_MAX_AGE_RANGE
            ),
            shipping_countries=_countries(environ),
            shipping_rates=_rates(environ),
            allow_promotion_codes=_flag(environ, "STOREFRONT_ALLOW_PROMOTION_CODES", True),
            automatic_tax=_flag(environ, "STOREFRONT_AUTOMATIC_TAX", False),
            stock_poll_interval=_int(environ, "STOREFRONT_STOCK_POLL_INTERVAL", 5, 0, 3600),
        )


def _shop_name(environ: Mapping[str, str]) -> str:
    name = environ.get("STOREFRONT_SHOP_NAME", "").strip() or "Storefront"
    if len(name) > 60 or not name.isprintable():
        raise ConfigError("STOREFRONT_SHOP_NAME must be 1-60 printable characters")
    return name


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("true", "false"):
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return raw == "true"


def _countries(environ: Mapping[str, str]) -> tuple[str, ...]:
    raw = environ.get("STOREFRONT_SHIPPING_COUNTRIES", "").strip()
    if not raw:
        return Settings.shipping_countries
    countries = tuple(c.strip().upper() for c in raw.split(",") if c.strip())
    for country in countries:
        if not _COUNTRY.match(country):
            raise ConfigError(
                "STOREFRONT_SHIPPING_COUNTRIES must be two-letter codes like DE,FR;"
                f" got {country!r}"
            )
    return countries


def _rates(environ: Mapping[str, str]) -> tuple[tuple[str, int, int | None, int | None], ...]:
    raw = environ.get("STOREFRONT_SHIPPING_RATES", "").strip()
    if not raw:
        return Settings.shipping_rates
    rates = []
    for part in raw.split(";"):
        match = _RATE.match(part.strip())
        if not match:
            raise ConfigError(
                "STOREFRONT_SHIPPING_RATES must look like Standard=500:3-5;Express=1500:1-2 "
                f"(amounts in minor units, days optional); got {part.strip()!r}"
            )
        name, amount, low, high = match.groups()
        if low is not None and int(low) > int(high):
            raise ConfigError(f"STOREFRONT_SHIPPING_RATES: {name} has more days minimum than max")
        rates.append((name.strip(), int(amount), _opt(low), _opt(high)))
    if len(rates) > 5:
        raise ConfigError("STOREFRONT_SHIPPING_RATES: Stripe offers at most 5 rates")
    return tuple(rates)


def _opt(value: str | None) -> int | None:
    return int(value) if value is not None else None


def _url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def database_url(raw: str) -> str | None:
    """A validated postgresql:// URL, or None (empty: SQLite at STOREFRONT_DATABASE)."""
    raw = raw.strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("postgresql", "postgres") or not parts.path.strip("/"):
        # Never echo the value: it may carry a password.
        raise ConfigError(
            "STOREFRONT_DATABASE_URL must look like postgresql://user:password@host:5432/dbname"
            " (unset it to use SQLite at STOREFRONT_DATABASE)"
        )
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ConfigError("STOREFRONT_DATABASE_URL has a malformed port") from None
    return raw


def redacted(url: str) -> str:
    """The URL without its password, fit for a log line or a message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _method_types(environ: Mapping[str, str]) -> tuple[str, ...]:
    if environ.get("STOREFRONT_PAYMENT_METHOD_TYPES", "").strip():
        # Stripe's API no longer takes payment_method_types on Checkout Sessions.
        raise ConfigError(
            "STOREFRONT_PAYMENT_METHOD_TYPES was replaced by STOREFRONT_ALLOWED_PAYMENT_METHODS "
            "(same comma-separated list); rename it"
        )
    raw = environ.get("STOREFRONT_ALLOWED_PAYMENT_METHODS", "")
    methods = tuple(m.strip() for m in raw.split(",") if m.strip())
    for method in methods:
        if not _METHOD_TYPE.match(method):
            raise ConfigError(
                f"STOREFRONT_ALLOWED_PAYMENT_METHODS must be a comma-separated list like "
                f"card,sepa_debit; got {method!r}"
            )
    return methods


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _int(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = environ.get(name, "").strip()
    return default if not raw else parse_whole(name, raw, low, high)


def _float(
    environ: Mapping[str, str], name: str, default: float, low: float, high: float = 30 * DAY
) -> float:
    # No duration the shop takes is longer than 30 days; each setting names its own range.
    raw = environ.get(name, "").strip()
    return default if not raw else parse_seconds(name, raw, low, high)


_WHOLE = re.compile(r"^[+-]?[0-9]+$")
_DECIMAL = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")


def parse_whole(name: str, raw: str, low: int, high: int) -> int:
    """A whole number within ``low..high``, or a ConfigError naming ``name``."""
    # Plain digits only: int() would also take "1_000" and other scripts' digits.
    if not _WHOLE.match(raw.strip()):
        raise ConfigError(f"{name} must be a whole number, got {raw!r}")
    value = int(raw)
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def parse_seconds(name: str, raw: str, low: float, high: float) -> float:
    """A finite number of seconds within ``low..high``, or a ConfigError naming ``name``."""
    # Plain decimals only: float() would also take nan, inf, 1e20 and "1_0".
    if not _DECIMAL.match(raw.strip()):
        raise ConfigError(f"{name} must be a number of seconds like 30 or 0.5, got {raw!r}")
    value = float(raw)
    if not (math.isfinite(value) and low <= value <= high):
        raise ConfigError(
            f"{name} must be between {_plain(low)} and {_plain(high)} seconds, got {raw.strip()}"
        )
    return value


def _plain(number: float) -> str:
    return f"{number:.0f}" if number.is_integer() else f"{number}"
