"""The embedded broker: kombu's SQLAlchemy transport (`sqla+sqlite:///...`), made fast and crash-safe.

kombu's stock transport (5.7) has three gaps this subclass closes:

* It polls every 1 s (class attribute `polling_interval`), so every queue round trip takes ~1 s.
  Passing `polling_interval` as a transport option does not help there: the stock channel hands
  every transport option to `sqlalchemy.create_engine`, which rejects it. Here the class default is
  0.05 s and the option is accepted (and kept away from create_engine), giving ~60 ms round trips.
* A delivered message is only flagged `visible = False` and never deleted, acknowledged or not.
  When the worker holding it dies (SIGKILL, power loss) the message is lost for ever, and the table
  grows with every job. Here an ack deletes the row, a reject/requeue or a shutdown makes it visible
  again in place, and a message taken longer than `visibility_timeout` seconds ago without an ack
  is made visible again (like the Redis transport's visibility timeout), so a crashed worker's job
  is delivered again to the next worker.
* SQLite: WAL journal and a 30 s busy timeout, so the web process, workers and their children can
  write at the same time; engines are not reused across fork().

`import workers.transport` points kombu's `sqla` / `sqlalchemy` URL prefixes at this transport
in the importing process (workers.app does it), so the documented URL stays `sqla+sqlite:///...`.
"""
from __future__ import annotations

import datetime
import logging
import os
import time
import warnings
from json import loads
from queue import Empty

from kombu.transport import TRANSPORT_ALIASES, virtual
from kombu.transport import sqlalchemy as kombu_sqla
from kombu.utils.encoding import bytes_to_str
from sqlalchemy import create_engine, delete, event, select, text, update
from sqlalchemy.orm import configure_mappers, sessionmaker

from workers.store import use_wal

log = logging.getLogger(__name__)
_NOLOAD_WARNING = r"The ``noload`` loader strategy is deprecated"

DEFAULT_POLLING_INTERVAL = 0.05
DEFAULT_VISIBILITY_TIMEOUT = 3600.0
# transport options that are ours (or the Redis transport's) and must not reach create_engine
_NOT_ENGINE_OPTIONS = (
    "polling_interval", "visibility_timeout", "unacked_restore_interval", "unacked_restore_throttle",
    "global_keyprefix", "socket_timeout", "socket_connect_timeout", "health_check_interval",
    "retry_on_timeout", "max_connections",
)


class QoS(virtual.QoS):
    """Acks delete the message row; rejects with requeue make it visible again in place."""

    def ack(self, delivery_tag):
        self.channel._forget(delivery_tag, delete_row=True)
        super().ack(delivery_tag)

    def reject(self, delivery_tag, requeue=False):
        if requeue:
            if not self.channel._make_visible(delivery_tag):
                self.channel._restore_at_beginning(self._delivered[delivery_tag])
        else:
            self.channel._forget(delivery_tag, delete_row=True)
        self._quick_ack(delivery_tag)


class Channel(kombu_sqla.Channel):
    QoS = QoS
    _engines: dict = {}  # our own engine cache (the stock class keeps one too)

    def __init__(self, connection, **kwargs):
        super().__init__(connection, **kwargs)
        opts = connection.client.transport_options
        self.visibility_timeout = float(opts.get("visibility_timeout", DEFAULT_VISIBILITY_TIMEOUT))
        self._restore_every = min(5.0, max(0.5, self.visibility_timeout / 10))
        self._next_restore = 0.0
        self._row_ids: dict[str, int] = {}  # delivery tag -> message row id (set when delivered)
        self._queue_ids: dict[str, int] = {}

    # -- engine -------------------------------------------------------------------------------
    def _engine_from_config(self):
        conninfo = self.connection.client
        options = conninfo.transport_options.copy()
        for key in ("queue_tablename", "message_tablename", "callback", "errback", "max_retries",
                    "interval_start", "interval_step", "interval_max", "retry_errors", *_NOT_ENGINE_OPTIONS):
            options.pop(key, None)
        url = conninfo.hostname
        if url.startswith("sqlite"):
            connect_args = dict(options.pop("connect_args", {}))
            connect_args.setdefault("timeout", 30)
            connect_args.setdefault("check_same_thread", False)
            engine = create_engine(url, connect_args=connect_args, **options)

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_con, _record):
                use_wal(dbapi_con)
                dbapi_con.execute("PRAGMA synchronous=NORMAL")

            return engine
        return create_engine(url, **options)

    def _open(self):
        conninfo = self.connection.client
        key = (os.getpid(), conninfo.hostname)
        if key not in self._engines:
            with kombu_sqla._MUTEX:
                if key not in self._engines:
                    # kombu's models use lazy="noload", deprecated by SQLAlchemy 2.1 and harmless here
                    # (that relationship is never loaded): configure the mappers once, quietly.
                    with warnings.catch_warnings():
                        warnings.filterwarnings("ignore", message=_NOLOAD_WARNING)
                        configure_mappers()
                    engine = self._engine_from_config()
                    kombu_sqla.metadata.create_all(engine)
                    self._engines[key] = engine, sessionmaker(bind=engine)
        return self._engines[key]

    @property
    def _engine(self):
        return self._open()[0]

    # -- delivery -----------------------------------------------------------------------------
    def _get(self, queue):
        now = time.monotonic()
        if now >= self._next_restore:
            self._next_restore = now + self._restore_every
            self._restore_expired()
        queue_id = self._queue_ids.get(queue)
        if queue_id is None:
            queue_id = self._queue_ids[queue] = self._get_or_create(queue).id
        table = self.message_cls.__table__
        with self._engine.connect() as con:  # an empty queue costs one indexed read, no write lock
            if con.execute(select(table.c.id).where(table.c.queue_id == queue_id, table.c.visible == True)  # noqa: E712
                           .limit(1)).first() is None:
                raise Empty()
        if self.session.bind.name == "sqlite":
            self.session.execute(text("BEGIN IMMEDIATE TRANSACTION"))
        payload = tag = row_id = None
        try:
            msg = (self.session.query(self.message_cls)
                   .with_for_update()
                   .filter(self.message_cls.queue_id == queue_id)
                   .filter(self.message_cls.visible != False)  # noqa: E712
                   .order_by(self.message_cls.sent_at)
                   .order_by(self.message_cls.id)
                   .limit(1)
                   .first())
            if msg is None:
                raise Empty()
            msg.visible = False  # the model's onupdate stamps sent_at = now: the time it was taken
            payload = loads(bytes_to_str(msg.payload))
            row_id = msg.id
            tag = (payload.get("properties") or {}).get("delivery_tag")
        finally:
            self.session.commit()
        if tag is not None:
            self._row_ids[tag] = row_id
        return payload

    def _restore_expired(self) -> None:
        """Make messages visible again that a worker took more than visibility_timeout ago and never acked."""
        cutoff = datetime.datetime.now() - datetime.timedelta(seconds=self.visibility_timeout)
        table = self.message_cls.__table__
        try:
            with self._engine.begin() as con:
                res = con.execute(update(table)
                                  .where(table.c.visible == False, table.c.timestamp < cutoff)  # noqa: E712
                                  .values(visible=True, timestamp=None))
            if res.rowcount:
                log.warning("restored %d message(s) unacknowledged for more than %g s (a worker died?)",
                            res.rowcount, self.visibility_timeout)
        except Exception:  # a busy database must not stop consuming; the next poll retries
            log.exception("could not restore expired messages")

    def _forget(self, delivery_tag, delete_row: bool) -> bool:
        row_id = self._row_ids.pop(delivery_tag, None)
        if row_id is None or not delete_row:
            return row_id is not None
        table = self.message_cls.__table__
        with self._engine.begin() as con:
            con.execute(delete(table).where(table.c.id == row_id))
        return True

    def _make_visible(self, delivery_tag) -> bool:
        """Put a delivered message back where it was in its queue (its row id keeps its place)."""
        row_id = self._row_ids.pop(delivery_tag, None)
        if row_id is None:
            return False
        table = self.message_cls.__table__
        with self._engine.begin() as con:
            con.execute(update(table).where(table.c.id == row_id).values(visible=True, timestamp=None))
        return True

    def _restore(self, message):
        if not self._make_visible(message.delivery_tag):
            super()._restore(message)

    def _restore_at_beginning(self, message):
        return self._restore(message)


class Transport(kombu_sqla.Transport):
    Channel = Channel
    polling_interval = DEFAULT_POLLING_INTERVAL


def restore_unacked_jobs(db_path: str, job_ids) -> set[str]:
    """Make the taken, unacknowledged messages of these jobs visible again in place (their worker
    died; workers.api.recover_lost_runs), instead of waiting for the visibility timeout. Returns the
    ids whose message was found."""
    import sqlite3

    wanted, found = set(job_ids), set()
    if not wanted:
        return found
    con = sqlite3.connect(db_path, timeout=30, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        try:
            rows = con.execute("SELECT id, payload FROM kombu_message WHERE visible = 0").fetchall()
        except sqlite3.OperationalError:  # no table yet: nothing was ever queued
            rows = []
        for row_id, payload in rows:
            try:
                job_id = loads(payload)["headers"]["id"]
            except (ValueError, KeyError, TypeError):
                continue
            if job_id in wanted:
                con.execute("UPDATE kombu_message SET visible = 1, timestamp = NULL WHERE id = ?", (row_id,))
                found.add(job_id)
        con.execute("COMMIT")
    finally:
        con.close()
    return found


def _forget_engines_after_fork() -> None:
    # SQLite connections must not cross fork(); keys carry the pid, drop the parent's pools unclosed.
    for key, (engine, _) in list(Channel._engines.items()):
        if key[0] != os.getpid():
            engine.dispose(close=False)
            Channel._engines.pop(key, None)


os.register_at_fork(after_in_child=_forget_engines_after_fork)

TRANSPORT_ALIASES["sqla"] = f"{__name__}:Transport"
TRANSPORT_ALIASES["sqlalchemy"] = f"{__name__}:Transport"
