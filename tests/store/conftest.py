"""Fixtures for the results store tests.

SQLite: real files under ``tmp_path``. PostgreSQL: a throwaway server that the
session starts itself (``initdb`` and ``pg_ctl`` on a free loopback port, trust
auth, data in a temporary folder) the first time a test asks for it, a fresh
database on it for every test, and the server stopped at the end. That needs
the PostgreSQL server binaries (Debian/Ubuntu: ``apt-get install postgresql``)
and the psycopg driver (``pip install 'psycopg[binary]'``); without either the
tests that ask for it are skipped with a message naming what to install.
PostgreSQL refuses to run as root, so under root the server runs as the
``postgres`` system user (or ``nobody``).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import re
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from perturbkit.store import Store

NO_DRIVER = "psycopg is not installed: pip install 'psycopg[binary]'"
NO_SERVER = (
    "the PostgreSQL server binaries initdb and pg_ctl are not found: "
    "apt-get install postgresql (Debian/Ubuntu), or put them on PATH"
)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'perturbkit.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store(db_url) as s:
        yield s


# -- the PostgreSQL server --------------------------------------------------------------


def _bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: on PATH, or Debian's/RHEL's place."""
    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path))

    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"):
        candidates += [Path(p) for p in sorted(glob.glob(pattern), key=version, reverse=True)]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _run_as() -> dict[str, Any]:
    """subprocess arguments that drop root to an unprivileged user; ``{}`` when not root."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return {}
    import pwd

    for name in ("postgres", "nobody"):
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    pytest.skip("PostgreSQL refuses to run as root, and there is no 'postgres' or 'nobody' user")


def _traversable(folder: Path) -> bool:
    """Whether every user may walk down to ``folder`` (the server's user must)."""
    return all(p.stat().st_mode & stat.S_IXOTH for p in (folder, *folder.parents))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A throwaway PostgreSQL server on 127.0.0.1; ``url(db)`` names a database on it."""

    def __init__(self, bin_dir: Path, base: Path, run_as: dict[str, Any]) -> None:
        self.bin_dir = bin_dir
        self.base = base
        self.data = base / "data"
        self.log = base / "server.log"
        self.run_as = run_as
        self.port = 0
        self._names = itertools.count()
        self._env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PG")},
            "LC_ALL": "C",
            "HOME": str(base),
        }

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        # Output into a file, not a pipe: the server that pg_ctl starts keeps no pipe open.
        with tempfile.TemporaryFile("w+") as out:
            proc = subprocess.run(
                [str(self.bin_dir / args[0]), *args[1:]],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.base,
                env=self._env,
                timeout=60,
                check=False,
                text=True,
                **self.run_as,
            )
            out.seek(0)
            proc.stdout = out.read()
        return proc

    def _fail(self, what: str, proc: subprocess.CompletedProcess[str]) -> None:
        log = self.log.read_text(errors="replace") if self.log.is_file() else ""
        pytest.fail(f"{what} failed ({proc.returncode}):\n{proc.stdout}\n{log}", pytrace=False)

    def start(self) -> None:
        init = self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--no-sync", "--encoding=UTF8", "--locale=C",
        )  # fmt: skip
        if init.returncode != 0:
            self._fail("initdb", init)
        for _ in range(3):  # another process may take the free port before the server does
            self.port = _free_port()
            options = (
                f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            started = self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                "-w", "-t", "30", "start",
            )  # fmt: skip
            if started.returncode == 0:
                return
        self._fail("pg_ctl start", started)

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self, statement: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with engine.connect() as conn:
                if "{force}" in statement:
                    version = int(conn.exec_driver_sql("SHOW server_version_num").scalar_one())
                    force = " WITH (FORCE)" if version >= 130000 else ""
                    statement = statement.format(force=force)
                conn.exec_driver_sql(statement)
        finally:
            engine.dispose()

    def new_database(self) -> str:
        """The URL of a fresh, empty database; it stays until the server stops."""
        name = f"store_{next(self._names)}"
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database from ``new_database``, ending any connections left open to it."""
        name = sa.make_url(url).database
        self._admin(f'DROP DATABASE IF EXISTS "{name}"{{force}}')

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A fresh, empty database's URL, dropped again on leaving."""
        url = self.new_database()
        try:
            yield url
        finally:
            self.drop_database(url)


@pytest.fixture(scope="session")
def psycopg_driver() -> Any:
    """The psycopg module; without it the test is skipped, naming what to install."""
    return pytest.importorskip("psycopg", reason=NO_DRIVER)


@pytest.fixture(scope="session")
def pg_server(psycopg_driver: Any) -> Iterator[Server]:
    """The session's own PostgreSQL server, started on first use."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip(NO_SERVER)
    run_as = _run_as()
    parent = Path(tempfile.gettempdir())
    if run_as and not _traversable(parent):
        parent = Path("/tmp")
        if not _traversable(parent):
            pytest.skip("no temporary folder that the PostgreSQL server's user can reach")
    base = Path(tempfile.mkdtemp(prefix="pk-pg-", dir=parent))
    try:
        if run_as:
            os.chown(base, run_as["user"], run_as["group"])
        server = Server(bin_dir, base, run_as)
        try:
            server.start()
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: Server) -> Iterator[str]:
    """A fresh, empty database on the session's server, dropped after the test."""
    with pg_server.database() as url:
        yield url
