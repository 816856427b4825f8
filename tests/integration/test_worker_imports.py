"""A serving worker on an up-to-date database loads no migration machinery."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Started in a fresh interpreter: the test process has imported everything already.
STARTS = """
import asyncio, sys
from storefront import create_app

async def main():
    app = create_app()
    async with app.test_app():
        pass
    heavy = sorted({m.split(".")[0] for m in sys.modules} & {"alembic", "sqlalchemy", "mako"})
    print(",".join(heavy) or "none")

asyncio.run(main())
"""


def test_a_worker_at_head_imports_neither_alembic_nor_sqlalchemy(tmp_path: Path) -> None:
    env = os.environ | {
        "STOREFRONT_DATABASE": str(tmp_path / "shop.sqlite3"),
        "STRIPE_SECRET_KEY": "",
        "STRIPE_API_BASE": "http://127.0.0.1:9",
        "STRIPE_WEBHOOK_SECRET": "whsec_testsecret0123456789",
        "STOREFRONT_RECONCILE_INTERVAL": "0",
    }
    storefront = Path(sys.executable).with_name("storefront")
    subprocess.run([str(storefront), "init-db"], env=env, check=True, capture_output=True)

    done = subprocess.run(
        [sys.executable, "-c", STARTS], env=env, check=True, capture_output=True, text=True
    )

    # About 20 MB per worker (bench/README.md, findings): only `storefront migrate` needs them.
    assert done.stdout.strip().splitlines()[-1] == "none"
