"""The room database: its tables (SQLAlchemy Core), how a connection is opened on each backend, and the schema's
version. No Streamlit here: the store, its tests and the benchmark use it directly.

- SQLite (the default, one server): a file, WAL mode (readers never wait for the writer), `synchronous=FULL`
  (a committed guess is on disk before the attendee hears "counted": a kill -9, or a power cut, loses none),
  and every write transaction is `BEGIN IMMEDIATE`, so two writers queue for the lock instead of one failing
  halfway (pysqlite's own transaction handling is turned off for that: SQLAlchemy's recipe).
- PostgreSQL (several replicas behind a load balancer share it), through psycopg. A write transaction's first
  statement bumps the room's `version`, which locks the room's row until it commits: the writes to one room
  queue, and the checks after it (is the round open? is the room full?) cannot race.

The schema is created on first use and versioned (`glassbox_meta`): a database from a newer Glassbox is
refused in one line, an older one is brought up to date by MIGRATIONS (none yet), in one transaction.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import (Column, Connection, Engine, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text,
                        UniqueConstraint, create_engine, event, insert, make_url, select, update)

SCHEMA_VERSION = 1
WRITE = "glassbox_write"  # execution option: this transaction writes (SQLite: BEGIN IMMEDIATE)
BUSY_TIMEOUT_S = 30  # SQLite: how long a writer waits for the lock before giving up
_PG_SCHEMA_LOCK = 0x6C61_7373  # PostgreSQL advisory lock: replicas starting together create the tables once
MAX_CODE, MAX_NAME, MAX_GUESS, MAX_TOKEN, MAX_MODEL = 16, 24, 40, 64, 300  # column sizes (characters)

metadata = MetaData()

meta = Table(
    "glassbox_meta", metadata,
    Column("key", String(40), primary_key=True),
    Column("value", String(200), nullable=False),
)
rooms = Table(
    "glassbox_rooms", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code", String(MAX_CODE), nullable=False, unique=True),  # "FOX-42": the join link's room=
    Column("presenter_hash", String(64), nullable=False),  # sha256 of the presenter's token (never the token)
    Column("model", String(MAX_MODEL), nullable=False),  # the model the room plays against (a selector name)
    Column("created_at", Float, nullable=False),  # seconds since the epoch, like every time here
    Column("expires_at", Float, nullable=False),
    Column("closed_at", Float),  # the presenter ended it
    Column("max_attendees", Integer, nullable=False),
    Column("version", Integer, nullable=False, default=0),  # bumped by every write: the one thing a poll reads
)
attendees = Table(
    "glassbox_attendees", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("room_id", Integer, ForeignKey("glassbox_rooms.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),  # 1, 2, ... in the room: "Anonymous 7"
    Column("name", String(MAX_NAME)),  # chosen display name; NULL: anonymous
    Column("joined_at", Float, nullable=False),
    UniqueConstraint("room_id", "seq"),
)
rounds = Table(
    "glassbox_rounds", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("room_id", Integer, ForeignKey("glassbox_rooms.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),  # 1, 2, ... in the room
    Column("prompt", Text, nullable=False),
    Column("state", String(8), nullable=False),  # "open" (taking guesses) or "closed"
    Column("opened_at", Float, nullable=False),
    Column("closed_at", Float),
    Column("reveal", Text),  # JSON: the model's top tokens, entropy, ... (NULL: closed without a reveal)
    Column("draws", Text, nullable=False, default="[]"),  # JSON list: the tokens the model drew live
    UniqueConstraint("room_id", "number"),
)
guesses = Table(
    "glassbox_guesses", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("round_id", Integer, ForeignKey("glassbox_rounds.id", ondelete="CASCADE"), nullable=False),
    Column("attendee_id", Integer, ForeignKey("glassbox_attendees.id", ondelete="CASCADE"), nullable=False),
    Column("text", String(MAX_GUESS), nullable=False),  # the guess as read (engine.inspect.guessing)
    Column("token_id", Integer, nullable=False),  # its first token: what is scored
    Column("token", String(MAX_TOKEN), nullable=False),  # that token's display form
    Column("n_tokens", Integer, nullable=False),
    Column("at", Float, nullable=False),  # when it was last changed
    Column("logprob", Float),  # log2 p of token_id under the model, set when the round is revealed
    Column("rank", Integer),  # 1 = the model's top token
    UniqueConstraint("round_id", "attendee_id"),  # one guess per attendee per round (the index counts too)
)
Index("glassbox_guesses_by_token", guesses.c.round_id, guesses.c.token_id)
Index("glassbox_attendees_by_room", attendees.c.room_id)

# version -> what brings a database of version - 1 up to it, inside the upgrading transaction
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}


class SchemaError(RuntimeError):
    """The database cannot be used as a room store; the message says why in one line."""


def open_engine(url: str) -> Engine:
    """A connection pool for `url` (sqlite:///PATH or postgresql+psycopg://...), schema ready."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)
    ensure_schema(engine)
    return engine


def _sqlite_connect(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # no implicit BEGIN from pysqlite: _sqlite_begin says which
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", f"busy_timeout={BUSY_TIMEOUT_S * 1000}"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    write = connection.get_execution_options().get(WRITE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def ensure_schema(engine: Engine) -> int:
    """Create the tables on first use, upgrade an older schema, refuse a newer one. Returns the version."""
    with engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_SCHEMA_LOCK})")
        metadata.create_all(conn)  # checks first: existing tables are left as they are
        found = conn.execute(select(meta.c.value).where(meta.c.key == "schema")).scalar()
        if found is None:
            conn.execute(insert(meta).values(key="schema", value=str(SCHEMA_VERSION)))
            return SCHEMA_VERSION
        version = int(found)
        if version > SCHEMA_VERSION:
            raise SchemaError(f"The room database holds schema {version}, written by a newer Glassbox; this one "
                              f"reads schema {SCHEMA_VERSION}. Point GLASSBOX_ROOM_DB at another database.")
        for step in range(version + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[step](conn)
        if version < SCHEMA_VERSION:
            conn.execute(update(meta).where(meta.c.key == "schema").values(value=str(SCHEMA_VERSION)))
        return SCHEMA_VERSION
