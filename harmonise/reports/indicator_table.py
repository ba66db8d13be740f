"""The stored ``indicators`` table a build writes: every survey-wave's default estimates (by country, every
breakdown, the analysis weight, the default rule), estimated while the build waits for its workers
(:class:`WaveEstimates`) and for the waves left at its end (:func:`store_indicators`), or kept from the previous
database when a wave's respondents did not change (:class:`WaveRows`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from harmonise.compile.sqltext import quote_ident
from harmonise.reports.indicators import DEFAULT_BY, Definitions, estimate_frame, load_definitions, stored_inputs
from harmonise.spec.project import Project

if TYPE_CHECKING:  # DuckDB and pandas load with the first database opened, not with the module (the CLI imports it)
    import duckdb
    import pandas as pd

    from harmonise.pipeline.batch import Outcome
    from harmonise.store.cache import BuildCache

ESTIMATE_BATCH = 100_000  # respondents of consecutive survey-waves the stored table estimates in one query


class StoredRows(Protocol):
    """A survey-wave's indicator rows that a table the build connection reads holds already (a rebuild's
    previous database)."""

    @property
    def sql(self) -> str:
        """A SELECT of the rows."""

    def frame(self) -> pd.DataFrame:
        """The rows as the estimator gives them."""


class WaveRows(Protocol):
    """A build's survey-wave indicator rows kept from elsewhere (a rebuild's previous database), and told
    of those estimated."""

    def kept(self, survey: str, wave: str) -> StoredRows | None:
        """The wave's rows when they need no estimate, else None."""

    def estimated(self, survey: str, wave: str, frame: pd.DataFrame) -> None:
        """The wave's rows as estimated (asked of every wave :meth:`kept` had none of)."""


def stores_indicators(project: Project) -> bool:
    """Whether a build of ``project`` writes the indicators tables (it declares indicators)."""
    return project.schema is not None and (project.root / "mappings" / "indicators.yaml").is_file()


class WaveEstimates:
    """Survey-waves' rows of the stored ``indicators`` table, estimated while a build waits for its workers.

    Made before any rows are harmonised (it writes ``survey_sampling``, which the quality column reads);
    :meth:`idle` estimates one survey-wave whose files are all in the database, and
    :func:`store_indicators` takes the rows. They are the rows it would estimate (a wave's respondents,
    lineage and sampling are final once its files are in; no cell, stratum or suppression table spans two
    waves), so a build whose respondents change afterwards (design files) must not use it. ``memory``:
    DuckDB's memory limits while estimating and after. ``cache``: a rebuild's, whose previous database a complete
    wave's rows are compared with (:meth:`BuildCache.same_rows`, in the columns the estimates read): a wave whose
    rows are the same is not estimated here, as its rows will most likely be kept (:class:`KeptWaveRows`; if not,
    :func:`store_indicators` estimates it)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, project: Project, memory: tuple[str, str],
                 cache: BuildCache | None = None) -> None:
        from harmonise.reports.quality import store_sampling

        assert project.schema is not None
        self.con, self.memory = con, memory
        self.cache = cache if cache is not None and cache.previous is not None else None
        self.defs = load_definitions(project.root, project.schema)
        self.inputs = stored_inputs(self.defs)
        self.frames: dict[tuple[str, str], pd.DataFrame] = {}
        self.passed: set[tuple[str, str]] = set()  # complete waves whose rows the previous database holds
        store_sampling(con, project)

    def idle(self, complete: Sequence[tuple[str, str]]) -> bool:
        """Estimate the first of the ``complete`` survey-waves not yet estimated; False when there is none.
        On one DuckDB thread: the workers have the cores (two threads beside them cost more CPU than they
        saved wall time). A rebuild's wave whose rows did not change is passed over: its estimate would be dropped
        when its stored rows are kept, and an ESS round with design PSUs costs ~3 CPU-s beside the workers."""
        todo = next((w for w in complete if w not in self.frames and w not in self.passed), None)
        if todo is None:
            return False
        if self.cache is not None and self.cache.previous_wave(*todo) is not None and \
                self.cache.same_rows(self.con, *todo, self.inputs):
            self.passed.add(todo)
            return True
        (threads,) = self.con.execute("SELECT current_setting('threads')").fetchall()[0]
        self.con.execute(f"SET memory_limit = '{self.memory[0]}'")
        self.con.execute("SET threads = 1")
        try:
            (n,) = self.con.execute("SELECT count(*) FROM respondents WHERE survey = ? AND wave = ?",
                                    list(todo)).fetchall()[0]
            self.frames[todo] = estimate_frame(self.con, self.defs, None, DEFAULT_BY, (None, *self.defs.breakdowns),
                                               sample=[todo], materialise=n <= ESTIMATE_BATCH)
        finally:
            self.con.execute(f"SET memory_limit = '{self.memory[1]}'")
            self.con.execute(f"SET threads = {int(threads)}")
        return True

    def estimate(self, con: duckdb.DuckDBPyConnection, waves: Sequence[tuple[str, str]]) -> None:
        """Estimate ``waves`` (all their files in the database) as :func:`store_indicators` does at the end of a
        build (:func:`_estimate_waves`), into :attr:`frames`; ``con``: the build's connection or a cursor of it."""
        if not waves:
            return
        size = {(str(s), str(w)): (int(n), bool(p)) for s, w, n, p in con.execute(
            "SELECT survey, wave, count(*), count(psu) > 0 FROM respondents GROUP BY ALL").fetchall()}
        self.frames.update(_estimate_waves(con, self.defs, [(s, w, *size[(s, w)]) for s, w in waves
                                                            if (s, w) in size and (s, w) not in self.frames]))


def store_indicators(con: duckdb.DuckDBPyConnection, project: Project, rows_of: WaveRows | None = None,
                     ahead: WaveEstimates | None = None) -> None:
    """Write the compiled definitions and the default ``indicators`` table into a database being built.

    The table is estimated one survey-wave at a time (its cells, strata and suppression tables never
    span two), so the estimator's memory is that of the largest wave; ``rows_of`` may give a wave's rows
    without estimating them (a build reusing its previous rows) and is told of those estimated; ``ahead``:
    the waves estimated while harmonising (it has written ``survey_sampling``)."""
    import pandas as pd

    from harmonise.reports.quality import store_sampling

    if not stores_indicators(project):
        return
    assert project.schema is not None
    defs = ahead.defs if ahead is not None else load_definitions(project.root, project.schema)
    con.execute("CREATE TABLE indicator_definitions (name VARCHAR, label VARCHAR, unit VARCHAR, age_low INTEGER, "
                "age_high INTEGER, population VARCHAR, outcome VARCHAR, source VARCHAR, population_sql VARCHAR, "
                "outcome_sql VARCHAR, outcome_reason_sql VARCHAR, not_by VARCHAR, position INTEGER)")
    con.executemany("INSERT INTO indicator_definitions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(*vars(d).values(), i) for i, d in enumerate(defs.indicators.values())])
    con.execute("CREATE TABLE indicator_breakdowns (name VARCHAR, label VARCHAR, expr VARCHAR, native VARCHAR, "
                "sql VARCHAR, labels VARCHAR, position INTEGER)")
    con.executemany("INSERT INTO indicator_breakdowns VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(*vars(b).values(), i) for i, b in enumerate(defs.breakdowns.values())])
    con.execute("INSERT INTO build_info VALUES ('indicator_age_bands', ?)", [",".join(map(str, defs.age_bands))])
    if ahead is None:
        store_sampling(con, project)
    early = ahead.frames if ahead is not None else {}
    waves = [(str(s), str(w), int(n), bool(p)) for s, w, n, p in con.execute(
        "SELECT survey, wave, count(*), count(psu) > 0 FROM respondents GROUP BY ALL ORDER BY ALL").fetchall()]
    parts: dict[tuple[str, str], pd.DataFrame | StoredRows] = {}
    todo = []
    for s, w, n, design in waves:
        kept = rows_of.kept(s, w) if rows_of is not None else None
        frame = early.pop((s, w), None)
        if kept is not None:
            parts[(s, w)] = kept
        elif frame is not None:
            parts[(s, w)] = frame
        else:
            todo.append((s, w, n, design))
    parts.update(_estimate_waves(con, defs, todo))
    for s, w, _, _ in waves:
        part = parts[(s, w)]
        if rows_of is not None and isinstance(part, pd.DataFrame):
            rows_of.estimated(s, w, part)
    create_indicators(con, [parts[(s, w)] for s, w, _, _ in waves],
                      lambda: estimate_frame(con, defs, None, DEFAULT_BY, (None, *defs.breakdowns)))


ESTIMATORS = 2  # survey-waves estimated at once at the end of a build, each query on one DuckDB thread


def _estimate_waves(con: duckdb.DuckDBPyConnection, defs: Definitions, waves: list[tuple[str, str, int, bool]]
                    ) -> dict[tuple[str, str], pd.DataFrame]:
    """The stored table's rows of ``waves`` (survey, wave, respondents, whether any has a design PSU).

    The estimator streams a wave's respondents once per indicator into weighted moments per cell, stratum
    and design PSU. All waves in one query kept every wave's PSU moments at once: 290 ESS country files
    (580,000 respondents) ran out of 1 GB after 61 s. Each query has a fixed cost too (~0.13 s to plan
    and publish), so consecutive small waves without design PSUs are estimated together, up to
    ESTIMATE_BATCH respondents (the rows are the same: no cell, stratum or suppression table spans two
    survey-waves). The batches run :data:`ESTIMATORS` at a time, each on a cursor of its own, those with
    design PSUs first (their PSU moments cost several times the rest: an ESS round of 52,000 respondents
    with PSUs took 1.9 s, one without 0.25 s), each as two halves of the indicators (:func:`_halves`), so the
    last of a build's waves no longer runs alone on one core; a wave of more than ESTIMATE_BATCH respondents
    runs alone beforehand (two such at once could need twice the memory one is given).
    """
    from concurrent.futures import ThreadPoolExecutor

    heavy = {(s, w) for s, w, _, design in waves if design}
    size_of = {(s, w): n for s, w, n, _ in waves}
    batches: list[list[tuple[str, str]]] = []
    size = 0
    for s, w, n, _ in waves:
        if not batches or (s, w) in heavy or batches[-1][-1] in heavy or size + n > ESTIMATE_BATCH:
            batches.append([])
            size = 0
        batches[-1].append((s, w))
        size += n
    batches.sort(key=lambda b: b[0] not in heavy)  # stable: survey and wave order otherwise

    (database,) = con.execute("SELECT current_database()").fetchall()[0]

    def estimate(batch: list[tuple[str, str]], names: list[str] | None = None) -> dict[tuple[str, str], pd.DataFrame]:
        cur = con.cursor()
        try:
            cur.execute(f"USE {quote_ident(database)}")  # a cursor starts in the default database
            # the finest moments are held once for the estimates and the atoms, unless the batch is a large wave's
            held = sum(size_of[sw] for sw in batch) <= ESTIMATE_BATCH
            both = estimate_frame(cur, defs, names, DEFAULT_BY, (None, *defs.breakdowns), sample=batch, materialise=held)
            out = {(str(s), str(w)): part.reset_index(drop=True)
                   for (s, w), part in both.groupby(["survey", "wave"], sort=False)}
            for sw in batch:  # a wave of the batch without rows of its own: estimated alone (its empty rows)
                if sw not in out:
                    out[sw] = estimate_frame(cur, defs, names, DEFAULT_BY, (None, *defs.breakdowns), sample=[sw],
                                             materialise=held)
            return out
        finally:
            cur.close()

    found: dict[tuple[str, str], pd.DataFrame] = {}
    # a wave of more respondents than a batch holds is estimated alone, with all of DuckDB's memory and threads
    shared = [b for b in batches if sum(size_of[sw] for sw in b) <= ESTIMATE_BATCH]
    tasks = [task for b in shared for task in _halves(b, defs, b[0] in heavy)]
    for b in [b for b in batches if b not in shared] if len(tasks) > 1 else batches:
        found.update(estimate(b))
    if len(tasks) < 2:
        return found
    (threads,) = con.execute("SELECT current_setting('threads')").fetchall()[0]
    con.execute("SET threads = 1")  # the queries share the cores: one thread each costs the least CPU
    try:
        with ThreadPoolExecutor(min(ESTIMATORS, len(tasks)), thread_name_prefix="harmonise-estimate") as pool:
            parts: dict[tuple[str, str], list[pd.DataFrame]] = {}
            for got in pool.map(lambda task: estimate(*task), tasks):
                for sw, frame in got.items():
                    parts.setdefault(sw, []).append(frame)
    finally:
        con.execute(f"SET threads = {int(threads)}")
    found.update({sw: _joined(frames) for sw, frames in parts.items()})
    return found


def _halves(batch: list[tuple[str, str]], defs: Definitions, heavy: bool
            ) -> list[tuple[list[tuple[str, str]], list[str] | None]]:
    """The estimates of a batch: one of every indicator, or for a wave with design PSUs (the costliest, which
    ended a build alone on one core) two, of the first and the second half of the indicators by name. An
    estimate's rows come ordered by indicator first, and no cell or suppression table spans two indicators,
    so the halves' rows, one after the other, are the rows of one estimate."""
    names = sorted(defs.indicators)
    if not heavy or ESTIMATORS < 2 or len(names) < 2:
        return [(batch, None)]
    half = (len(names) + 1) // 2
    return [(batch, names[:half]), (batch, names[half:])]


def _joined(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """A wave's rows from the estimates of its halves, in their order (a half without rows adds none)."""
    import pandas as pd

    rows = [f for f in frames if len(f)] or frames[:1]
    return rows[0] if len(rows) == 1 else pd.concat(rows, ignore_index=True)


# the stored table's numeric columns, whatever the published frame holds: a wave whose every cell is suppressed
# has only nulls in them, which DuckDB would store as columns of type NULL
STORED_TYPES = {"n": "INTEGER", "df": "INTEGER", **{c: "DOUBLE" for c in (
    "n_eff", "item_nonresponse", "estimate", "se", "ci_low", "ci_high", "cv", "gap", "gap_se")}}


def create_indicators(con: duckdb.DuckDBPyConnection, parts: list[pd.DataFrame | StoredRows],
                       empty: Callable[[], pd.DataFrame]) -> None:
    """The ``indicators`` table of the waves' rows, in the order one estimate of every wave gives. Rows stored
    already are copied in SQL when the estimated ones have their column types, else read as frames first."""
    import pandas as pd

    frames = [p for p in parts if isinstance(p, pd.DataFrame)]
    stored = [p for p in parts if not isinstance(p, pd.DataFrame)]
    selects = [p.sql for p in stored]
    frame = pd.concat(frames, ignore_index=True) if frames else None if stored else empty()  # no respondents: empty
    if frame is not None:
        con.register("__indicators", frame)
        if stored and con.execute("DESCRIBE SELECT * FROM __indicators").fetchall() != \
                con.execute(f"DESCRIBE {selects[0]}").fetchall():
            con.unregister("__indicators")
            con.register("__indicators", pd.concat([p if isinstance(p, pd.DataFrame) else p.frame() for p in parts],
                                                   ignore_index=True))
            selects = []
        selects.insert(0, "SELECT * FROM __indicators")
    try:
        union = " UNION ALL ".join(selects)
        names = [str(r[0]) for r in con.execute(f"DESCRIBE {union}").fetchall()]
        typed = ", ".join(f"CAST({quote_ident(c)} AS {t}) AS {quote_ident(c)}" for c, t in STORED_TYPES.items()
                          if c in names)
        con.execute(f"CREATE TABLE indicators AS SELECT * {f'REPLACE ({typed}) ' if typed else ''}FROM ({union}) "
                    'ORDER BY indicator, ages, survey, wave, country, breakdown, "group"')
    finally:
        if frame is not None:
            con.unregister("__indicators")


class KeptWaveRows:
    """The :class:`WaveRows` of a build with a cache (``<db>.cache/``): a survey-wave's indicator rows, the previous
    database's when what they were estimated from is unchanged, else estimated (and noted in the cache).

    What they are estimated from: the wave's respondents, the lineage columns the quality flags read, the
    survey's sampling type, the indicator definitions, the build options and harmonise's code. The wave's
    files' cache keys stand for its respondents; a wave whose files were harmonised again (a rule edited)
    keeps its previous rows when the rows it harmonised equal the previous database's in the columns the
    estimates read (``inputs``) and the rest is unchanged: an edit that changes no value the estimates read
    changes no estimate (decision 63)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, cache: BuildCache, options: tuple[str, ...],
                 outcomes: Sequence[Outcome], inputs: list[str] | None = None) -> None:
        self.con, self.cache, self.options = con, cache, options
        self.inputs = inputs  # the respondents columns the estimates read (None: every column)
        self.files: dict[tuple[str, str], list[str]] = {}
        self.complete: dict[tuple[str, str], bool] = {}
        self.keys: dict[tuple[str, str], str] = {}  # of the complete waves asked for
        self.shared: list[object] | None = None  # what every wave's rows are estimated from, read once
        self.fresh: dict[tuple[str, str], None] = {}  # the waves some file of which was harmonised afresh
        self.same: dict[tuple[str, str], bool] = {}  # of those, whether the rows are the previous database's
        for o in outcomes:
            sw = (o.job.crosswalk.survey, o.job.wave.wave)
            self.files.setdefault(sw, []).append(o.cached.key if o.cached is not None else "")
            self.complete[sw] = self.complete.get(sw, True) and o.cached is not None and bool(o.cached.key)
            if not o.reused:
                self.fresh[sw] = None

    def check(self, cur: duckdb.DuckDBPyConnection, ahead: WaveEstimates) -> None:
        """Ahead of :meth:`kept`, on a cursor of the build's database: whether each wave harmonised afresh that the
        previous database holds has its rows (noted for :meth:`kept`), and an estimate (into ``ahead``) of those
        that have not and were not estimated while harmonising. A wave whose other inputs changed is still
        estimated by :func:`store_indicators`; an estimate made here of a wave that turns out kept is dropped."""
        todo = []
        for sw in self.fresh:
            if self.complete.get(sw) and self.cache.previous_wave(*sw) is not None:
                self.same[sw] = self.cache.same_rows(cur, *sw, self.inputs)
            if not self.same.get(sw) and sw not in ahead.frames:
                todo.append(sw)
        ahead.estimate(cur, todo)

    def kept(self, survey: str, wave: str) -> StoredRows | None:
        from harmonise.store.identity import code_digest, digest

        if not self.complete.get((survey, wave)):
            return None
        con, cache = self.con, self.cache
        if self.shared is None:
            self.shared = [*(con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()  # written by store_indicators
                             for t in ("indicator_definitions", "indicator_breakdowns")),
                           con.execute("SELECT * FROM build_info WHERE key = 'indicator_age_bands'").fetchall()]
        inputs = [code_digest(), self.options, survey, wave, *self.shared,
                  con.execute("SELECT * FROM survey_sampling WHERE survey = ? ORDER BY ALL", [survey]).fetchall(),
                  con.execute("SELECT file_name, target, kind, source_variables, quality FROM lineage "
                              "WHERE survey = ? AND wave = ? ORDER BY ALL", [survey, wave]).fetchall()]
        key = self.keys[(survey, wave)] = digest([*inputs, self.files[(survey, wave)]])
        kept = cache.indicator_rows(con, key)
        if kept is None:
            previous = cache.previous_wave(survey, wave)
            if previous is not None and digest([*inputs, previous[1]]) == previous[0] and \
                    (self.same[(survey, wave)] if (survey, wave) in self.same else cache.same_rows(con, survey, wave, self.inputs)):
                kept = cache.indicator_rows(con, previous[0], keep_as=key)
        return kept

    def estimated(self, survey: str, wave: str, frame: pd.DataFrame) -> None:
        key = self.keys.get((survey, wave))
        if key is not None:
            self.cache.note_wave(key, survey, wave, frame)
