"""The feedback database: one SQLAlchemy engine, the schema, its version and its migrations.

A local SQLite file by default; a ``MOODLENS_DATABASE_URL`` (``[database] url`` in secrets) such
as ``postgresql+psycopg://user:pass@db.example.org:5432/moodlens`` points every replica of the app
at one shared PostgreSQL. The same tables, the same portable SQL and the same upserts run on both,
so both backends give identical results: timestamps are UTC ISO-8601 text (as the first SQLite
version stored them) and the text columns that queries sort by compare byte-wise on PostgreSQL
too (``COLLATE "C"``), as SQLite's BINARY collation does.

The schema version lives in the database, in table ``schema_version``. Opening a store brings an
older database up to `SCHEMA_VERSION` inside one locked transaction (``BEGIN IMMEDIATE`` on
SQLite, an advisory lock on PostgreSQL), so replicas starting at once migrate it exactly once:

    1  the original SQLite file (no ``schema_version`` table; votes keyed by profile+track)
    2  votes gain an ``id`` (the old SQLite rowid, kept) as a portable "voted first" tie-break;
       ``schema_version`` is added
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    make_url,
    text,
)
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

SCHEMA_VERSION = 2
SQLITE_BUSY_TIMEOUT_S = 30.0
PG_CONNECT_TIMEOUT_S = 10  # unless the URL names a ?connect_timeout=
_PG_MIGRATION_LOCK = 0x6D6F6F64  # pg_advisory_xact_lock key ("mood") held while migrating


class StoreError(RuntimeError):
    """A feedback database that cannot be used; the message says why and what to do."""


# What "the feedback database cannot be used right now" raises: its own errors, the driver's
# (server down, file locked past the busy timeout, connection dropped) and the file system's
# (its folder cannot be created or written).
STORE_FAILURES: tuple[type[BaseException], ...] = (StoreError, SQLAlchemyError, OSError)


def unavailable_note(error: BaseException) -> str:
    """What a listener reads when the feedback database failed with `error`: what happened and
    what to do, with the driver's first line (never a password: drivers do not print it)."""
    cause = getattr(error, "orig", None) or error
    detail = (str(cause).strip().splitlines() or [type(cause).__name__])[0][:160]
    return (
        f"The feedback database cannot be used right now ({detail}): thumbs and moods are "
        "neither read nor saved until it can, and songs are chosen without them. Check that "
        "the database MOODLENS_DATABASE_URL names is running, or that the SQLite file's folder "
        "is writable; moodlens tries again at the next reading."
    )


def check_backend(url: URL) -> str:
    """`url`'s backend, `sqlite` or `postgresql`; StoreError for any other."""
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StoreError(
            f"Feedback databases are SQLite or PostgreSQL, not {backend!r}; use e.g. "
            "postgresql+psycopg://user:password@host:5432/moodlens"
        )
    return backend


def _sortable_text() -> Text:
    """TEXT that sorts byte-wise on every backend (SQLite's default, "C" on PostgreSQL)."""
    return Text().with_variant(Text(collation="C"), "postgresql")


metadata = MetaData()

votes = Table(
    "votes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("profile", _sortable_text(), nullable=False),
    Column("track_key", _sortable_text(), nullable=False),
    Column("title", Text, nullable=False),
    Column("artist", Text, nullable=False),
    Column("album", Text),
    Column("genre", Text),
    Column("mood", Text),
    Column("emotion", Text),
    Column("track_id", Text),
    Column("vote", Integer, nullable=False),
    Column("voted_at", _sortable_text(), nullable=False),  # UTC ISO-8601, seconds
    UniqueConstraint("profile", "track_key", name="votes_profile_track"),
    CheckConstraint("vote IN (-1, 1)", name="votes_vote_sign"),
    sqlite_autoincrement=True,
)

mood_events = Table(
    "mood_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("profile", _sortable_text(), nullable=False),
    Column("emotion", Text, nullable=False),
    Column("mood", Text),
    Column("strategy", Text),
    Column("probabilities", Text),  # JSON text
    Column("recorded_at", _sortable_text(), nullable=False),  # UTC ISO-8601, seconds
    Index("mood_events_profile", "profile", "recorded_at"),
    sqlite_autoincrement=True,
)

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, nullable=False),
)

_VOTE_COLUMNS = (
    "profile, track_key, title, artist, album, genre, mood, emotion, track_id, vote, voted_at"
)


def database_url(url: str | URL | None = None, path: str | os.PathLike | None = None) -> URL:
    """A SQLAlchemy URL for `url` (a PostgreSQL or SQLite URL) or else the SQLite file `path`.

    ``postgres://`` and ``postgresql://`` URLs use psycopg 3 (the driver this app ships).
    """
    if url is None:
        if path is None:
            raise ValueError("Give the feedback database a url or a path.")
        return URL.create("sqlite", database=str(Path(path).expanduser()))
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (ArgumentError, ValueError) as error:  # ValueError: e.g. a port that is no number
        raise StoreError(
            "MOODLENS_DATABASE_URL is not a database URL; expected e.g. "
            "postgresql+psycopg://user:password@host:5432/moodlens"
        ) from error
    if "@" in (parsed.host or ""):
        # The password's first '@' ended it and the rest of it became part of the host: the
        # message names neither (and the store, unusable, shows no URL in its repr either).
        raise StoreError(
            "MOODLENS_DATABASE_URL's password holds an '@': percent-encode each '@' in it as "
            "%40, e.g. postgresql+psycopg://user:pa%40ss@host:5432/moodlens"
        )
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "postgresql":
        connect_timeout(parsed)  # checked here, so the store says why at every use
    return parsed


def connect_timeout(url: URL) -> int:
    """`url`'s ``?connect_timeout=`` (whole seconds) if it names one, else
    `PG_CONNECT_TIMEOUT_S`; StoreError when it is anything but a whole number of seconds."""
    value = url.query.get("connect_timeout")
    if value is None:
        return PG_CONNECT_TIMEOUT_S
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    shown = repr(value if isinstance(value, str) else list(value))[:40]
    raise StoreError(
        f"MOODLENS_DATABASE_URL's connect_timeout must be whole seconds, e.g. "
        f"?connect_timeout=10, not {shown}"
    )


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL; None for other backends and in-memory SQLite."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).expanduser()


def _sqlite_engine(url: URL) -> Engine:
    path = sqlite_path(url)
    options: dict[str, Any] = {
        "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
    }
    if path is None:  # in memory: one connection, or every checkout would see a new database
        options["poolclass"] = StaticPool
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        url = url.set(database=str(path))
    engine = create_engine(url, **options)

    # pysqlite's own transaction handling starts transactions late and commits around DDL;
    # switch it off and BEGIN explicitly (IMMEDIATE for writes: the write lock is taken up
    # front, so a busy database is waited for instead of failing a read-then-write).
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get("moodlens_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def create_store_engine(url: URL) -> Engine:
    """An engine for `url`: SQLite with real transactions, anything else pre-pinged."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "postgresql":
        connect_args = {"connect_timeout": connect_timeout(url), "application_name": "moodlens"}
    try:
        return create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    except ImportError as error:
        raise StoreError(f"No driver for {url.drivername}: {error}") from error


class Database:
    """An engine plus transactions: `read()` and `write()` yield a connection in one."""

    def __init__(self, url: URL) -> None:
        self.url = url
        self.backend = check_backend(url)
        self.engine = create_store_engine(url)
        # SQLite takes one writer at a time anyway; queueing this process's writers here
        # leaves the busy timeout for other processes.
        self._write_lock = threading.Lock() if self.backend == "sqlite" else None
        # An in-memory SQLite database is one connection shared by every thread (StaticPool):
        # its reads must queue behind the writes too, or transactions interleave on it.
        self._shared_connection = self.backend == "sqlite" and sqlite_path(url) is None
        try:
            self.migrate()
        except BaseException:
            self.engine.dispose()
            raise

    @contextmanager
    def read(self) -> Iterator[Connection]:
        if self._shared_connection and self._write_lock is not None:
            with self._write_lock, self.engine.connect() as conn, conn.begin():
                yield conn
            return
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        if self._write_lock is None:
            with self.engine.connect() as conn, conn.begin():
                yield conn
            return
        with self._write_lock, self.engine.connect() as conn:
            conn.execution_options(moodlens_write=True)
            with conn.begin():
                yield conn

    def close(self) -> None:
        self.engine.dispose()

    # ---------------------------------------------------------------- versions

    def migrate(self) -> None:
        """Create the schema, or bring an older one up to SCHEMA_VERSION, exactly once."""
        with self.write() as conn:
            if self.backend == "postgresql":
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                )
            version = current_version(conn)
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"The feedback database {self.url.render_as_string(hide_password=True)} has "
                    f"schema version {version}, newer than this moodlens ({SCHEMA_VERSION}); "
                    "upgrade moodlens."
                )
            if version == SCHEMA_VERSION:
                return
            if version == 1:
                _migrate_1_to_2(conn)
            metadata.create_all(conn)
            conn.execute(schema_version.delete())
            conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))


def current_version(conn: Connection) -> int:
    """The schema version stored in the database; 1 for the original file, 0 when empty."""
    tables = set(inspect(conn).get_table_names())
    if "schema_version" in tables:
        stored = conn.execute(text("SELECT max(version) FROM schema_version")).scalar()
        if stored is not None:
            return int(stored)
    if "votes" in tables or "mood_events" in tables:
        return 1
    return 0


def _migrate_1_to_2(conn: Connection) -> None:
    """Votes keyed by (profile, track_key) -> votes with an id; the SQLite rowids become ids,
    so "newest first" ties still break as before. Version 1 only ever existed in SQLite."""
    if conn.dialect.name != "sqlite":
        raise StoreError("Schema version 1 exists only in SQLite files; this database is not one.")
    if "votes" not in set(inspect(conn).get_table_names()):
        return
    if "id" in {column["name"] for column in inspect(conn).get_columns("votes")}:
        return
    conn.execute(text("ALTER TABLE votes RENAME TO votes_v1"))
    votes.create(conn)
    conn.execute(
        text(
            f"INSERT INTO votes (id, {_VOTE_COLUMNS}) "
            f"SELECT rowid, {_VOTE_COLUMNS} FROM votes_v1 ORDER BY rowid"
        )
    )
    conn.execute(text("DROP TABLE votes_v1"))
