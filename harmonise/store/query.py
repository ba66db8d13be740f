"""Read-only queries that can be stopped: a timeout, Ctrl-C, a row cap and a memory limit, with the
rows handed over in batches as DuckDB produces them (nothing is held in full unless asked).

The query runs in a worker thread; the calling (main) thread only waits, so Python's SIGINT handler
runs at once and stops DuckDB through ``con.interrupt()`` (a query running in the main thread
would hold Ctrl-C until DuckDB returned).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import duckdb

from harmonise.errors import InputError, Interrupted, QueryTimeout, UsageError
from harmonise.procs import Terminated
from harmonise.store.connect import MEMORY_LIMIT, connect

if TYPE_CHECKING:
    import pandas as pd

Row = tuple[object, ...]
BATCH_ROWS = 1_000
POLL_SECONDS = 0.05


class QueryResult(NamedTuple):
    """Column names and rows of a query; unpacks as ``cols, rows``."""

    columns: list[str]
    rows: list[Row]

    def to_pandas(self) -> pd.DataFrame:
        """The rows as a pandas DataFrame with the query's column names."""
        import pandas as pd

        return pd.DataFrame.from_records(self.rows, columns=self.columns)


def empty_query() -> UsageError:
    return UsageError("the query is empty; give one SQL statement, e.g. \"SELECT count(*) FROM respondents\"")


def run_query(db: str | Path, sql: str, on_columns: Callable[[list[str]], None],
              on_rows: Callable[[list[Row]], None], *, timeout: float | None = None, max_rows: int | None = None,
              memory_limit: str = MEMORY_LIMIT, batch: int = BATCH_ROWS) -> tuple[int, bool]:
    """Run ``sql`` read-only on ``db``; hand the columns, then batches of rows, to the callbacks.

    Returns (rows handed over, whether ``max_rows`` cut the result short). Raises QueryTimeout after
    ``timeout`` seconds, Interrupted on Ctrl-C, InputError when the memory limit stops the query,
    and DuckDB's own error for a query that is wrong.
    """
    if not sql.strip().strip(";").strip():
        raise empty_query()
    con = connect(db, memory_limit=memory_limit)
    state: dict[str, object] = {"rows": 0, "cut": False}
    failure: list[BaseException] = []

    def work() -> None:  # the connection is used and closed in this thread only; others may only interrupt() it
        try:
            cur = con.execute(sql)
            if cur is None or cur.description is None:  # only comments, or a statement without rows
                if cur is None:
                    raise empty_query()
                on_columns([])
                return
            on_columns([d[0] for d in cur.description])
            n = 0
            while max_rows is None or n < max_rows:
                want = batch if max_rows is None else min(batch, max_rows - n)
                rows = cur.fetchmany(want)
                if not rows:
                    break
                on_rows(rows)
                n += len(rows)
            state["rows"] = n
            if max_rows is not None and n >= max_rows and cur.fetchmany(1):
                state["cut"] = True
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread, which raises it
            failure.append(exc)
        finally:
            con.close()

    worker = threading.Thread(target=work, name="harmonise-query", daemon=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    stopped = ""
    try:
        worker.start()
        while worker.is_alive():
            worker.join(POLL_SECONDS)
            if deadline is not None and worker.is_alive() and time.monotonic() >= deadline:
                stopped = "timeout"
                con.interrupt()
                worker.join()
    except KeyboardInterrupt as stop:
        stopped = "interrupt"
        if worker.ident is None:  # Ctrl-C came before the thread ran: it never touched the connection
            con.close()
        else:
            con.interrupt()
            worker.join()
        if isinstance(stop, Terminated):
            raise  # SIGTERM: the command's end is the caller's (exit 143)
    if stopped == "interrupt":
        raise Interrupted("query interrupted (Ctrl-C); nothing was changed")
    if stopped == "timeout":
        raise QueryTimeout(f"query stopped after the --timeout of {timeout:g} s; narrow it (WHERE, LIMIT) or "
                           "allow more time")
    if failure:
        exc = failure[0]
        if isinstance(exc, (duckdb.OutOfMemoryException, MemoryError)):
            raise InputError(f"query stopped: it needs more memory than allowed (--memory-limit {memory_limit}; "
                             f"{(str(exc).splitlines() or [type(exc).__name__])[0]}); aggregate in SQL, add a "
                             "LIMIT or --max-rows, or raise --memory-limit") from exc
        raise exc
    return int(state["rows"]), bool(state["cut"])  # type: ignore[call-overload]


def query_all(db: str | Path, sql: str, *, timeout: float | None = None, max_rows: int | None = None,
              memory_limit: str = MEMORY_LIMIT) -> QueryResult:
    """Every row of ``sql`` (up to ``max_rows``) as a QueryResult."""
    result = QueryResult([], [])

    def columns(cols: list[str]) -> None:
        result.columns.extend(cols)

    run_query(db, sql, columns, result.rows.extend, timeout=timeout, max_rows=max_rows, memory_limit=memory_limit)
    return result
