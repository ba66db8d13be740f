"""What an export says about its columns: codings, display formats, measurement levels and provenance.

Read from the database's own tables (``schema_variables``, ``value_labels``, ``missing_reasons``,
``build_info``, ``sources``), so a database can be exported without the project that built it.
Display formats follow the schema: codes ``F<w>.0`` with ``w`` the widest code (the SPSS missing
codes −1…−8 included, so a coded variable with a missing column is ``F2.0``), integers ``F<w>.0``
from their declared range (age 0–120 → ``F3.0``), numbers two decimals (``F5.2`` for 0–10).
Stata gets the same as ``%<w>.0f`` / ``%<w>.2f``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harmonise.errors import UsageError

if TYPE_CHECKING:
    import duckdb

TEXT_TYPES = ("string", "country", "language", "city")
SOURCE_ROW = "source_row"
SOURCE_ROW_LABEL = "Row of the respondent in the source file (1 = first)"
SOURCE_FILE = "source_file"
SOURCE_FILE_LABEL = "Name of the source file the respondent was read from"
SPSS_LABEL = 64  # bytes an SPSS file label holds
STATA_LABEL = 80  # characters a Stata data label holds
DOCUMENT_LINE = 80  # SPSS document lines are 80 bytes


@dataclass(frozen=True)
class Coding:
    """How one harmonised variable is written to SPSS/Stata."""

    name: str
    label: str
    type: str
    missing_column: str | None
    codes: dict[str, int]  # category code → integer (booleans: 'true' → 1, 'false' → 0)
    code_labels: dict[str, str]
    measure: str = "nominal"
    range: tuple[float, float] | None = None

    def width(self, missing_width: int) -> tuple[int, int]:
        """(width, decimals) of the display format; the missing codes' width counts when it has reasons."""
        extra = missing_width if self.missing_column else 1
        if self.type in ("category", "boolean"):
            return max(len(str(max(self.codes.values(), default=1))), extra), 0
        decimals = 2 if self.type == "number" else 0
        if self.range is None:
            return 8 + (decimals + 1 if decimals else 0), decimals
        digits = max(len(str(int(self.range[0]))), len(str(int(self.range[1]))), extra)
        return digits + (decimals + 1 if decimals else 0), decimals


@dataclass(frozen=True)
class Provenance:
    """Who built the database from what: ``build_info`` and ``sources``."""

    info: dict[str, str]
    sources: list[tuple[str, str, str, str, int]]  # survey, wave, file name, sha256, rows

    @property
    def synthetic(self) -> bool:
        return self.info.get("synthetic") == "true"

    @property
    def waves(self) -> list[str]:
        return sorted({f"{s}-{w}" for s, w, _, _, _ in self.sources})

    def label(self, limit: int) -> str:
        """A one-line file label of at most ``limit`` characters: what, from which survey-waves, by what."""
        head = "SYNTHETIC " if self.synthetic else ""
        tail = f" (harmonise {self.info.get('harmonise_version', '?')}, {self.info.get('built_at', '')[:10]})"
        waves = ", ".join(self.waves)
        text = head + waves + tail
        if len(text.encode("utf-8")) > limit:
            text = head + f"{len(self.waves)} survey-waves" + tail
        return text.encode("utf-8")[:limit].decode("utf-8", "ignore")

    def lines(self) -> list[str]:
        """Provenance as short lines (SPSS documents hold 80 bytes a line)."""
        out = []
        if self.synthetic:
            out.append("SYNTHETIC DATA generated from the declarations (harmonise build --demo); not survey data.")
        out.append(f"Harmonised by harmonise {self.info.get('harmonise_version', '?')}, schema version "
                   f"{self.info.get('schema_version', '?')}, built {self.info.get('built_at', '?')}.")
        for survey, wave, name, sha, rows in self.sources:
            out.append(f"{survey}-{wave}: {name}, {rows:,} rows, sha256:")
            out.append(f"  {sha}")
        return [part for line in out for part in _wrapped(line, DOCUMENT_LINE)]

    def to_dict(self) -> dict[str, object]:
        return {"build_info": self.info, "sources": [
            {"survey": s, "wave": w, "file": f, "sha256": h, "rows": n} for s, w, f, h, n in self.sources]}


@dataclass(frozen=True)
class Layout:
    """Codings of every schema variable, the numbering of missing reasons and the provenance."""

    variables: list[Coding]
    reasons: dict[str, int]  # reason → 1-based position (SPSS code −position, Stata letter)
    reason_labels: dict[str, str]
    provenance: Provenance = field(default_factory=lambda: Provenance({}, []))

    def sav_code(self, reason: str) -> float:
        return -float(self.reasons[reason])

    def dta_code(self, reason: str) -> str:
        return string.ascii_lowercase[self.reasons[reason] - 1]

    @property
    def missing_width(self) -> int:
        return len(str(-len(self.reasons))) if self.reasons else 1

    def spss_format(self, v: Coding) -> str:
        w, d = v.width(self.missing_width)
        return f"F{w}.{d}"

    def stata_format(self, v: Coding) -> str:
        w, d = v.width(self.missing_width)
        return f"%{w}.{d}f"


def layout(con: duckdb.DuckDBPyConnection) -> Layout:
    """The export layout, read from the database's own ``schema_variables``/``value_labels`` tables."""
    labels: dict[str, list[tuple[str, str]]] = {}
    for var, code, label in con.execute("SELECT variable, code, label FROM value_labels WHERE NOT is_missing_reason "
                                        "ORDER BY rowid").fetchall():
        labels.setdefault(var, []).append((code, label))
    reasons = con.execute("SELECT reason, label FROM missing_reasons ORDER BY rowid").fetchall()
    if len(reasons) > 26:
        raise UsageError("more than 26 missing reasons cannot be written as Stata extended missing values")
    has_measure = bool(con.execute("SELECT count(*) FROM duckdb_columns() WHERE table_name = 'schema_variables' "
                                   "AND column_name = 'measure'").fetchone()[0])  # type: ignore[index]
    measure = "measure" if has_measure else "NULL"  # a database built before measurement levels were stored
    out = []
    for name, label, typ, miss, lo, hi, level in con.execute(
            f"SELECT name, label, type, missing_column, range_low, range_high, {measure} FROM schema_variables "
            "ORDER BY position").fetchall():
        pairs = labels.get(name, [])
        codes = {"true": 1, "false": 0} if typ == "boolean" else {c: i for i, (c, _) in enumerate(pairs, 1)}
        level = level or ("scale" if typ in ("integer", "number") else "nominal")
        out.append(Coding(name, label, typ, miss, codes, dict(pairs), level,
                          (float(lo), float(hi)) if lo is not None and hi is not None else None))
    return Layout(out, {r: i for i, (r, _) in enumerate(reasons, 1)}, dict(reasons), provenance(con))


def provenance(con: duckdb.DuckDBPyConnection) -> Provenance:
    info = {str(k): str(v) for k, v in con.execute("SELECT key, value FROM build_info ORDER BY rowid").fetchall()}
    sources = [(str(s), str(w), str(f), str(h), int(n)) for s, w, f, h, n in con.execute(
        "SELECT survey, wave, file_name, sha256, rows FROM sources ORDER BY survey, wave, file_name").fetchall()]
    return Provenance(info, sources)


def codebook_rows(lay: Layout) -> list[tuple[str, str, str, str, str, str]]:
    """The CSV export's codebook: (column, label, type, measure, value, value label) — one row per column, then
    one per value label; ``<name>_missing`` columns list the missing reasons."""
    rows = []
    for v in lay.variables:
        rows.append((v.name, v.label, v.type, v.measure, "", ""))
        for code, _ in sorted(v.codes.items(), key=lambda kv: kv[1]):
            rows.append((v.name, "", "", "", code, v.code_labels.get(code) or ("Yes" if code == "true" else "No")))
        if v.missing_column:
            rows.append((v.missing_column, f"Why {v.name} is missing", "category", "nominal", "", ""))
            rows.extend((v.missing_column, "", "", "", r, lay.reason_labels[r]) for r in lay.reasons)
    rows.append((SOURCE_ROW, SOURCE_ROW_LABEL, "integer", "scale", "", ""))
    rows.append((SOURCE_FILE, SOURCE_FILE_LABEL, "string", "nominal", "", ""))
    return rows


def _wrapped(line: str, limit: int) -> list[str]:
    """``line`` as lines of at most ``limit`` UTF-8 bytes, the later ones indented by two spaces: broken after a
    space where one is near, else between characters (a long file name was cut, and its rows and hash with it)."""
    out: list[str] = []
    rest = line
    while len(rest.encode("utf-8")) + (2 if out else 0) > limit:
        room = limit - (2 if out else 0)
        cut = len(rest.encode("utf-8")[:room].decode("utf-8", "ignore"))
        space = rest.rfind(" ", 0, cut + 1)
        cut = space + 1 if space > cut // 2 else cut
        out.append(("  " if out else "") + rest[:cut].rstrip(" "))
        rest = rest[cut:].lstrip(" ")
    out.append(("  " if out else "") + rest)
    return out
