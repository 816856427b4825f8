"""Fingerprinted, compressed static files.

``static_url("css/shop.css")`` gives ``/static/css/shop.css?v=<hash>``. A
request carrying the current hash is answered with an immutable year-long
cache life; a changed file gets a new hash, so browsers fetch it anew.
Requests without it (or with an old hash) keep Quart's short default.

Text files (css, js, svg) are gzipped once, when the app is made, and kept in
memory; a GET whose ``Accept-Encoding`` takes gzip gets that copy, with
``Content-Encoding: gzip`` and an ETag of its own. Every answer for such a
file says ``Vary: Accept-Encoding``, so a shared cache keeps the two apart.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from quart import Quart, Response, current_app, request, url_for

YEAR = 365 * 24 * 60 * 60
# Text that shrinks well; images other than SVG come compressed already.
COMPRESSIBLE = frozenset({".css", ".js", ".svg"})


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


@dataclass(frozen=True)
class Gzipped:
    """A static file's gzip copy, made at start-up."""

    body: bytes
    # Without quotes: a strong tag of its own, apart from the plain file's.
    etag: str
    content_type: str


def precompress(folder: Path) -> dict[str, Gzipped]:
    """Gzip every compressible file in the folder that gets smaller, by its URL name."""
    copies = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in COMPRESSIBLE or not path.is_file():
            continue
        raw = path.read_bytes()
        # mtime=0: the same file always gives the same bytes.
        packed = gzip.compress(raw, compresslevel=9, mtime=0)
        if len(packed) >= len(raw):
            continue
        name = path.relative_to(folder).as_posix()
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        # As Quart labels the plain file: text and SVG are UTF-8.
        if kind.startswith("text/") or kind.endswith("+xml"):
            kind += "; charset=utf-8"
        copies[name] = Gzipped(packed, "gz-" + hashlib.sha256(raw).hexdigest()[:24], kind)
    return copies


def _takes_gzip() -> bool:
    # werkzeug weighs q-values and "*": "gzip;q=0" refuses it.
    return request.accept_encodings["gzip"] > 0


def install(app: Quart, folder: Path) -> None:
    """Add ``static_url``, serve gzip copies, and give fingerprinted requests a long life."""
    prints = Fingerprints(folder)
    copies = precompress(folder)

    def static_url(filename: str) -> str:
        version = prints.of(filename)
        if version is None:
            return url_for("static", filename=filename)
        return url_for("static", filename=filename, v=version)

    app.jinja_env.globals["static_url"] = static_url

    @app.before_request
    async def _gzipped() -> Response | None:
        if request.endpoint != "static" or request.method != "GET":
            return None
        filename = (request.view_args or {}).get("filename", "")
        copy = copies.get(filename)
        if copy is None or not _takes_gzip():
            return None
        if request.if_none_match.contains(copy.etag):
            response = Response("", status=304)
        else:
            response = Response(copy.body, content_type=copy.content_type)
            response.headers["Content-Encoding"] = "gzip"
        response.headers["ETag"] = f'"{copy.etag}"'
        max_age = current_app.get_send_file_max_age(filename)
        if max_age is not None:
            response.headers["Cache-Control"] = f"public, max-age={max_age}"
        return response

    @app.after_request
    async def _cache(response: Response) -> Response:
        if request.endpoint != "static":
            return response
        filename = (request.view_args or {}).get("filename", "")
        if filename in copies:
            response.vary.add("Accept-Encoding")
        if response.status_code in (200, 304):
            version = request.args.get("v")
            if version and version == prints.of(filename):
                response.headers["Cache-Control"] = f"public, max-age={YEAR}, immutable"
        return response
