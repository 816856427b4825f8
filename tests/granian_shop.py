"""The shop of a LiveStack under Granian, in a process of its own (STOREFRONT_TEST_SERVER).

Run as ``python -m tests.granian_shop PORT LOG_PORT`` with a pickle of the stack's shop
settings on standard input, so the shop here runs with exactly what the in-process one
would. Its log records go to the stack on LOG_PORT, which hands them to the test's own
logging: ``caplog`` sees the shop's lines as it does when the shop runs in-process.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import pickle
import sys

from storefront.granian_server import serve_shop


class ForkSafeSocketHandler(logging.handlers.SocketHandler):
    """Sends records over TCP; a forked Granian worker opens a connection of its own."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.pid = os.getpid()

    def send(self, s: bytes) -> None:
        """Send one pickled record, never through a connection another process holds."""
        if self.pid != os.getpid():
            # Records of two processes interleaved on one stream would corrupt both.
            self.sock = None
            self.pid = os.getpid()
        super().send(s)


def main(argv: list[str]) -> None:
    """Serve the shop of the pickled settings on 127.0.0.1:PORT until SIGTERM."""
    port, log_port = argv
    settings = pickle.loads(sys.stdin.buffer.read())
    root = logging.getLogger()
    root.handlers[:] = [ForkSafeSocketHandler("127.0.0.1", int(log_port))]
    root.setLevel(logging.INFO)
    # As talkative as the test's own logging may ask for: tests look for secrets in it.
    logging.getLogger("stripe").setLevel(logging.DEBUG)
    serve_shop(settings, "127.0.0.1", int(port))


if __name__ == "__main__":
    main(sys.argv[1:])
