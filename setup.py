"""Build step: copy the repository's top-level run-time files into the wheel.

The metadata lives in pyproject.toml. The shop reads `schema.sql`, `templates/`,
`static/` (htmx included) and `data/` at run time, and the repository keeps them at
its top level; a wheel carries them as `storefront/_bundled/`, which
storefront/resources.py finds.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SHIPPED = ("schema.sql", "templates", "static", "data")
# Copied in by `make setup` and never committed; a wheel without it serves pages without htmx.
REQUIRED = ("static/vendor/htmx.min.js",)
BUNDLED = Path("storefront", "_bundled")


class BuildWithRunTimeFiles(build_py):
    """build_py that also copies the top-level run-time files into the package."""

    def run(self) -> None:
        """Build the modules, then add the run-time files beside them."""
        super().run()
        if self.editable_mode:
            return  # an editable install reads them where they are
        missing = [name for name in REQUIRED if not (HERE / name).is_file()]
        if missing:
            raise SystemExit(f"cannot build: {', '.join(missing)} is missing; run `make setup`")
        target = Path(self.build_lib) / BUNDLED
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for name in SHIPPED:
            source = HERE / name
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=shutil.ignore_patterns(".*"))
            else:
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildWithRunTimeFiles})
