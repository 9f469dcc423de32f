"""Session-scoped postgres server for the backend tests (started by the suite itself).

pgserver runs a real PostgreSQL from its wheel, in a temp dir, listening on a unix
socket in that dir only (no TCP port to collide on). ``postgres_db_url`` gives each
test that needs isolation a fresh database on it.
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

_RELOAD_DEADLINE = 30.0


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A running PostgreSQL server, stopped at the end of the session."""
    # Imported here: importing pgserver sets up its lock files, which only this needs.
    # It asks platformdirs for a runtime dir, which warns (and falls back to /tmp)
    # where XDG_RUNTIME_DIR is unset, as on CI machines.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import get_server

    # Not under pytest's basetemp: pytest prunes old basetemps of concurrent sessions,
    # which would delete a running server's data.
    with tempfile.TemporaryDirectory(prefix="pirn-like-pg-") as workdir:
        pgdata = Path(workdir) / "pgdata"
        output = _Lines()  # pgserver logs what initdb and pg_ctl printed
        logging.getLogger("pgserver").addHandler(output)
        try:
            server = get_server(pgdata, cleanup_mode="stop")
        except Exception as exc:
            log = pgdata / "log"
            text = log.read_text() if log.exists() else "(the server wrote no log)"
            pytest.fail(
                f"PostgreSQL failed to start: {exc!r}\n--- pgserver ---\n"
                + "\n".join(output.lines)
                + f"\n--- server log ---\n{text}"
            )
        finally:
            logging.getLogger("pgserver").removeHandler(output)
        try:
            yield server
        finally:
            server.cleanup()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """``postgresql://postgres:@/postgres?host=<socket dir>`` of the session's server."""
    return postgres_server.get_uri()


@pytest.fixture
def postgres_db_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a database created for this test alone (dropped afterwards)."""
    name = f"test_{uuid.uuid4().hex}"
    postgres_server.psql(f"CREATE DATABASE {name};")
    yield postgres_server.get_uri(database=name)
    postgres_server.psql(f"DROP DATABASE {name} WITH (FORCE);")


@pytest.fixture(scope="session")
def postgres_password_url(postgres_server: PostgresServer) -> str:
    """The URL of a role that must log in with its password (SCRAM), unlike the
    trusted superuser: for tests of what a wrong password does."""
    user, password = "pirn_like_password_user", f"pw-{uuid.uuid4().hex}"
    postgres_server.psql(f"CREATE ROLE {user} LOGIN PASSWORD '{password}';")
    hba = Path(postgres_server.pgdata) / "pg_hba.conf"
    hba.write_text(f"local all {user} scram-sha-256\n{hba.read_text()}")
    loaded = postgres_server.psql("SELECT pg_conf_load_time();")
    postgres_server.psql("SELECT pg_reload_conf();")
    # The postmaster reloads on a signal, asynchronously: wait until it has.
    deadline = time.monotonic() + _RELOAD_DEADLINE
    while postgres_server.psql("SELECT pg_conf_load_time();") == loaded:
        if time.monotonic() > deadline:
            pytest.fail(f"PostgreSQL did not reload {hba} within {_RELOAD_DEADLINE} s")
    socket_dir = postgres_server.get_postmaster_info().socket_dir
    return f"postgresql://{user}:{password}@/postgres?host={socket_dir}"
