"""Where the shop's own files are, the same way from a checkout and from an installed wheel.

A checkout (and an editable install) keeps `schema.sql`, `templates/`, `static/` and
`data/` at the top of the repository; the wheel build (setup.py) copies them into the
package as `_bundled/`. Both are plain folders on disk, which Quart's template and
static folders need.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
_BUNDLED = PACKAGE / "_bundled"
# True when running from an installed wheel rather than from a checkout.
INSTALLED = _BUNDLED.is_dir()
ROOT = _BUNDLED if INSTALLED else PACKAGE.parent

TEMPLATES = ROOT / "templates"
STATIC = ROOT / "static"
SCHEMA = ROOT / "schema.sql"
SAMPLE_PRODUCTS = ROOT / "data" / "products.toml"


def env_file() -> Path:
    """The `.env` the command reads: the checkout's own, or the current folder's if installed."""
    return Path.cwd() / ".env" if INSTALLED else ROOT / ".env"
