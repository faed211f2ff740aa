"""A real, throwaway PostgreSQL server for the tests that need one.

One server per test session (``initdb`` + ``pg_ctl``, about 3 s); every test
gets a fresh database in it.  When PostgreSQL is not installed the tests fail
with the fix — they never skip.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import psycopg
import pytest

from voicebot.cluster.localpg import LocalPostgres, PostgresMissing

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    try:
        server = LocalPostgres().start()
    except PostgresMissing as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres_server: LocalPostgres) -> str:
    """The URL of a new, empty database."""
    name = f"t{next(_numbers)}"
    with psycopg.connect(postgres_server.url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return postgres_server.url.rsplit("/", 1)[0] + "/" + name
