"""The shop of a LiveStack under Granian, in a process of its own (STOREFRONT_TEST_SERVER).

Run as ``python -m tests.granian_shop PORT`` with a pickle of the stack's shop settings on
standard input, so the shop here runs with exactly what the in-process one would.
"""

from __future__ import annotations

import logging
import pickle
import sys

from storefront.granian_server import serve_shop


def main(argv: list[str]) -> None:
    """Serve the shop of the pickled settings on 127.0.0.1:PORT until SIGTERM."""
    (port,) = argv
    settings = pickle.loads(sys.stdin.buffer.read())
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("stripe").setLevel(logging.WARNING)
    serve_shop(settings, "127.0.0.1", int(port))


if __name__ == "__main__":
    main(sys.argv[1:])
