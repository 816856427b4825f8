"""Fingerprinted static URLs: a content hash in the URL, so the file may be cached for a year.

``static_url("css/shop.css")`` gives ``/static/css/shop.css?v=<hash>``. A
request carrying the current hash is answered with an immutable year-long
cache life; a changed file gets a new hash, so browsers fetch it anew.
Requests without it (or with an old hash) keep Quart's short default.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from quart import Quart, Response, request, url_for

YEAR = 365 * 24 * 60 * 60


class Fingerprints:
    """Content hashes of static files, computed once per file per process."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._hashes: dict[str, str] = {}

    def of(self, filename: str) -> str | None:
        """The file's short content hash, or None if it is not a file in the folder."""
        if filename not in self._hashes:
            path = (self.folder / filename).resolve()
            if not path.is_relative_to(self.folder.resolve()) or not path.is_file():
                return None
            self._hashes[filename] = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        return self._hashes[filename]


def install(app: Quart, folder: Path) -> None:
    """Add ``static_url`` to templates and the long cache life to fingerprinted requests."""
    prints = Fingerprints(folder)

    def static_url(filename: str) -> str:
        version = prints.of(filename)
        if version is None:
            return url_for("static", filename=filename)
        return url_for("static", filename=filename, v=version)

    app.jinja_env.globals["static_url"] = static_url

    @app.after_request
    async def _cache(response: Response) -> Response:
        if request.endpoint == "static" and response.status_code == 200:
            filename = (request.view_args or {}).get("filename", "")
            version = request.args.get("v")
            if version and version == prints.of(filename):
                response.headers["Cache-Control"] = f"public, max-age={YEAR}, immutable"
        return response
