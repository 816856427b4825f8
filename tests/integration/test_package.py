"""The built wheel alone runs the shop: schema, templates, static files, htmx and the sandbox.

The sdist and the wheel are built from this checkout without network (no build isolation),
the wheel is installed into a fresh venv outside the checkout, and its `storefront`
command runs there. The venv borrows only the third-party dependencies of the running
environment; the shop's own code and files come from the wheel. (There is no `migrate`
command yet: once there is, run it from the wheel here too.)
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import time
import tomllib
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from storefront.serving import free_port

ROOT = Path(__file__).resolve().parents[2]
HTMX = ROOT / "static" / "vendor" / "htmx.min.js"
SHIPPED_FOLDERS = ("templates", "static", "data")
SANDBOX = ROOT / "storefront" / "sandbox"
SCHEMA_V1 = ROOT / "tests" / "data" / "schema_v1.sql"


@dataclass(frozen=True)
class Installed:
    """A wheel and a venv it is installed in, plus a clean folder to run it from."""

    wheel: Path
    venv: Path
    workdir: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def env(self) -> dict[str, str]:
        """The caller's environment without anything that would point back at the checkout."""
        drop = ("PYTHON", "VIRTUAL_ENV", "STRIPE_", "STOREFRONT_", "SANDBOX_")
        return {k: v for k, v in os.environ.items() if not k.startswith(drop)}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a command from the venv in the work folder and return what it did."""
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            cwd=self.workdir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )


def _build_and_install(tmp: Path) -> Installed:
    dist = tmp / "dist"
    # As `python -m build` does by default: the sdist first, then the wheel from the sdist,
    # so a file missing from MANIFEST.in is also missing from the wheel.
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = dist.glob("storefront-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # Third-party dependencies come from the running environment's site-packages (a plain
    # path entry: its .pth files, such as the editable install's finder, are not run).
    Path(purelib, "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    workdir = tmp / "work"
    workdir.mkdir()
    return Installed(wheel=wheel, venv=venv, workdir=workdir)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Build the wheel once for this module and install it into a fresh venv."""
    return _build_and_install(tmp_path_factory.mktemp("package"))


def _files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_the_wheel_holds_every_run_time_file(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        assert wheel.read("storefront/_bundled/static/vendor/htmx.min.js") == HTMX.read_bytes()
    assert "storefront/_bundled/schema.sql" in names
    for folder in SHIPPED_FOLDERS:
        expected = {f"storefront/_bundled/{folder}/{n}" for n in _files_under(ROOT / folder)}
        assert expected, folder
        assert expected <= names, sorted(expected - names)
    for folder in ("templates", "static"):
        expected = {f"storefront/sandbox/{folder}/{n}" for n in _files_under(SANDBOX / folder)}
        assert expected and expected <= names, sorted(expected - names)
    assert not [n for n in names if n.startswith(("tests/", "bench/"))]


def test_the_installed_package_is_the_wheel_not_the_checkout(installed: Installed) -> None:
    done = installed.run(
        "python", "-c", "import storefront.resources as r; print(r.INSTALLED, r.ROOT)"
    )
    assert done.returncode == 0, done.stderr
    flag, root = done.stdout.split()
    assert flag == "True"
    assert Path(root).is_relative_to(installed.venv)


def test_init_db_from_the_wheel_creates_the_schema(installed: Installed) -> None:
    done = installed.run("storefront", "init-db", "--database", "flag.sqlite3")
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(installed.workdir / "flag.sqlite3") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"products", "orders", "webhook_events"} <= tables


def test_migrate_from_the_wheel_upgrades_a_version_1_database(installed: Installed) -> None:
    path = installed.workdir / "v1.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_V1.read_text(encoding="utf-8"))
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    done = installed.run("storefront", "migrate", "--database", "v1.sqlite3")
    assert done.returncode == 0, done.stderr
    assert "migrated from 0001 to" in done.stdout
    with sqlite3.connect(path) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(orders)")}
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert "flag_reason" in columns
    with zipfile.ZipFile(installed.wheel) as wheel:
        scripts = {n for n in wheel.namelist() if n.startswith("storefront/migrations/versions/")}
    # The head revision the database reached ships inside the wheel.
    assert any(n.rsplit("/", 1)[-1].startswith(f"{revision}_") for n in scripts), scripts


def test_the_installed_command_reads_dotenv_from_the_current_folder(
    installed: Installed,
) -> None:
    (installed.workdir / ".env").write_text("STOREFRONT_DATABASE=from-dotenv.sqlite3\n")
    try:
        done = installed.run("storefront", "init-db")
    finally:
        (installed.workdir / ".env").unlink()
    assert done.returncode == 0, done.stderr
    assert (installed.workdir / "from-dotenv.sqlite3").is_file()


def test_the_sandbox_module_runs_from_the_wheel(installed: Installed) -> None:
    done = installed.run("python", "-m", "storefront.sandbox", "--help")
    assert done.returncode == 0, done.stderr
    assert "usage: python -m storefront.sandbox" in done.stdout


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def served(installed: Installed) -> Iterator[tuple[str, str]]:
    """`storefront serve` from the wheel in sandbox mode on a fresh database."""
    shop_port, sandbox_port = free_port(), free_port()
    command = [str(installed.bin / "storefront"), "serve", "--database", "shop.sqlite3"]
    command += ["--port", str(shop_port), "--sandbox-port", str(sandbox_port)]
    server = subprocess.Popen(
        command,
        cwd=installed.workdir,
        env=installed.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    shop = f"http://127.0.0.1:{shop_port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            try:
                urllib.request.urlopen(f"{shop}/static/css/shop.css", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield shop, f"http://127.0.0.1:{sandbox_port}"
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            output, _ = server.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            output, _ = server.communicate()
    assert server.returncode == 0, output
    assert "created shop.sqlite3 with the sample products" in output


def test_serve_from_the_wheel_shows_the_sample_products_with_htmx(
    served: tuple[str, str],
) -> None:
    shop, sandbox = served
    status, page = _get(f"{shop}/")
    assert status == 200, page
    html = page.decode()
    samples = tomllib.loads((ROOT / "data" / "products.toml").read_text())["product"]
    assert html.count('<article class="card"') == len(samples) >= 1
    for product in samples:
        assert f'id="product-{product["slug"]}"' in html
    assert "/static/vendor/htmx.min.js" in html

    assert _get(f"{shop}/static/vendor/htmx.min.js") == (200, HTMX.read_bytes())
    status, image = _get(f"{shop}/static/{samples[0]['image']}")
    assert status == 200 and image.startswith(b"<svg")

    status, events = _get(f"{sandbox}/_sandbox/events")
    assert status == 200 and b"<html" in events.lower()
    status, css = _get(f"{sandbox}/_sandbox/static/sandbox.css")
    assert status == 200 and css
