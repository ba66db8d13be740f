"""What a built database holds, for codebooks generated with ``--db``: the build, the files loaded, counts.

The declarations describe the distributed files; a database may hold a part of them (one
country's file of a round, a subset). These facts let the pages say what was loaded: respondents
and countries per survey-wave, the files with their own editions, and whether the data are
synthetic (``build_info`` key ``synthetic`` = ``true``, set for demo builds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harmonise.reports.citation import FileEdition


@dataclass(frozen=True)
class LoadedFile:
    file_name: str
    rows: int
    sha256: str
    edition: FileEdition


@dataclass
class LoadedWave:
    """One survey-wave as loaded: respondents, countries (code, name, respondents) and files."""

    survey: str
    wave: str
    respondents: int = 0
    countries: list[tuple[str, str, int]] = field(default_factory=list)
    files: list[LoadedFile] = field(default_factory=list)

    @property
    def editions(self) -> list[FileEdition]:
        return [f.edition for f in self.files]


@dataclass
class Build:
    """The database a codebook describes."""

    name: str
    info: dict[str, str]
    waves: dict[tuple[str, str], LoadedWave]
    rules: list[str] = field(default_factory=list)  # suppression rules of the stored indicators

    @property
    def synthetic(self) -> bool:
        return self.info.get("synthetic") == "true"

    @property
    def respondents(self) -> int:
        return sum(w.respondents for w in self.waves.values())

    def summary(self) -> str:
        """One sentence: which database, how many respondents from how many survey-waves."""
        kind = "synthetic (generated) respondents" if self.synthetic else "respondents"
        return (f"the database {self.name} ({self.respondents:,} {kind} in {len(self.waves)} survey-wave(s), "
                f"built {self.info.get('built_at', 'at an unrecorded time')} by harmonise "
                f"{self.info.get('harmonise_version', '(version not recorded)')})")


SYNTHETIC_BANNER = ("SYNTHETIC DATA: the database these pages describe was generated from the declarations "
                    "(harmonise build --demo), not read from survey files. Its counts, shares and file names "
                    "describe generated respondents; do not cite or publish them as survey results.")


def load_build(db: Path) -> Build:
    """Read the build facts of ``db`` (opened read-only)."""
    from harmonise.store.connect import connect

    con = connect(db)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        info = dict(con.execute("SELECT key, value FROM build_info").fetchall()) if "build_info" in tables else {}
        waves: dict[tuple[str, str], LoadedWave] = {}
        names = "c.name" if "countries" in tables else "NULL"
        join = "LEFT JOIN countries c ON c.code = r.country" if "countries" in tables else ""
        for survey, wave, country, name, n in con.execute(
                f"SELECT r.survey, r.wave, r.country, {names}, count(*) FROM respondents r {join} "
                "GROUP BY ALL ORDER BY 1, 2, 5 DESC, 3").fetchall():
            lw = waves.setdefault((str(survey), str(wave)), LoadedWave(str(survey), str(wave)))
            lw.respondents += int(n)
            lw.countries.append((str(country), str(name or ""), int(n)))
        editions: dict[tuple[str, str, str], FileEdition] = {}
        if "source_editions" in tables:
            for survey, wave, file_name, dataset, edition, date in con.execute(
                    "SELECT survey, wave, file_name, dataset_name, edition, production_date "
                    "FROM source_editions").fetchall():
                editions[(survey, wave, file_name)] = FileEdition(file_name, dataset, edition, date)
        if "sources" in tables:
            for survey, wave, file_name, rows, sha in con.execute(
                    "SELECT survey, wave, file_name, rows, sha256 FROM sources ORDER BY 1, 2, 3").fetchall():
                lw = waves.setdefault((str(survey), str(wave)), LoadedWave(str(survey), str(wave)))
                lw.files.append(LoadedFile(file_name, int(rows), sha,
                                           editions.get((survey, wave, file_name), FileEdition(file_name))))
        rules = [str(r[0]) for r in con.execute("SELECT DISTINCT rule FROM indicators ORDER BY 1").fetchall()] \
            if "indicators" in tables and _has_rule(con) else []
    finally:
        con.close()
    return Build(db.name, {str(k): str(v) for k, v in info.items()}, waves, rules)


def _has_rule(con: object) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_columns() WHERE table_name = 'indicators' "  # type: ignore[attr-defined]
                            "AND column_name = 'rule'").fetchone()[0])
