"""Real databases for the room store's tests: an SQLite file, and a throwaway PostgreSQL cluster.

The cluster is Debian's PostgreSQL (`apt-get install postgresql`, which .ci/run does), started with initdb and
pg_ctl in a temporary folder, listening on a unix socket only (no TCP port), as the `postgres` user when the
tests run as root (PostgreSQL refuses to run as root), and removed afterwards. Without the binaries the
PostgreSQL tests are skipped, saying why.
"""
from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PORT = 54329  # names the socket file only: the cluster listens on no TCP port
_names = itertools.count(1)


def pg_bin(name: str) -> str | None:
    """A PostgreSQL server binary: on the PATH, or in Debian's versioned folder (newest first)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def _as_owner(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]  # initdb and postgres refuse to run as root


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Start a throwaway cluster; yield the folder holding its socket. Raises RuntimeError saying why not."""
    initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        raise RuntimeError("PostgreSQL's initdb and pg_ctl are not installed (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="glassbox-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    try:
        subprocess.run(_as_owner([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                                  "--no-sync"]), check=True, capture_output=True)
        options = f"-k {root} -p {PORT} -h '' -F"  # unix socket in `root`, no TCP, no fsync (a test cluster)
        subprocess.run(_as_owner([pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"]),
                       check=True, capture_output=True)
        try:
            yield str(root)
        finally:
            subprocess.run(_as_owner([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"PostgreSQL did not start: {e.stderr.decode(errors='replace')[-500:]}") from None
    finally:
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(socket_dir: str) -> str:
    """A new empty database in the cluster; its SQLAlchemy URL."""
    import psycopg

    name = f"rooms_{os.getpid()}_{next(_names)}"
    with psycopg.connect(host=socket_dir, port=PORT, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@/{name}?host={socket_dir}&port={PORT}"
