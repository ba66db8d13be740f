"""Source files (.sav .zsav .por .dta) through pyreadstat.

Only the columns a crosswalk needs are read, in chunks, with user-missing
values kept as their codes (``user_missing=True``) so that every SPSS
user-missing code and every Stata extended missing value (.a–.z) reaches the
crosswalk as a code to account for, never a silent NaN. Corrupt, truncated,
mislabelled and undecodable files raise :class:`InputError` with one line
saying what to do.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyreadstat

from harmonise.errors import InputError
from harmonise.readers.isolation import ReaderCrashed, direct, isolated
from harmonise.readers.textcodec import TextCodec, choose
from harmonise.spec.source import SourceMeta, VarMeta, norm_code

EXTENSIONS = {".sav": "sav", ".zsav": "zsav", ".por": "por", ".dta": "dta"}
EXT_SUFFIX = "#x"
COMPRESSED = ((b"\x1f\x8b", "a gzip-compressed file"), (b"PK\x03\x04", "a ZIP archive"), (b"BZh", "a bzip2-compressed file"),
              (b"\xfd7zXZ\x00", "an xz-compressed file"), (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
              (b"\x28\xb5\x2f\xfd", "a zstd-compressed file"))
DEFAULT_CHUNK = 100_000


def _magic(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(1024)
    except OSError as exc:
        raise InputError(f"{path}: cannot open file: {exc.strerror or exc}") from exc


def detect_format(path: Path) -> str:
    """The file's format from its extension, confirmed by its first bytes."""
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unsupported file extension '{path.suffix}' (expected .sav, .zsav, .por or .dta)")
    head = _magic(path)
    if not head:
        raise InputError(f"{path}: file is empty (0 bytes)")
    actual = None
    if head[:4] == b"$FL2":
        actual = "sav"
    elif head[:4] == b"$FL3":
        actual = "zsav"
    elif head.startswith(b"<stata_dta>") or (len(head) > 2 and 102 <= head[0] <= 115 and head[1] in (1, 2)):
        actual = "dta"
    elif b"SPSSPORT" in head:
        actual = "por"
    if actual is None:
        packed = next((what for magic, what in COMPRESSED if head.startswith(magic)), None)
        if packed is not None:  # a download saved under the name of what it holds
            raise InputError(f"{path}: not a {fmt.upper()} file but {packed} (under a {path.suffix} name); extract the "
                             "file it holds and use that")
        raise InputError(f"{path}: not a {fmt.upper()} file (unrecognised header bytes); "
                         "check that the file is complete and has the right extension")
    if not extension_agrees(path, actual):
        raise InputError(f"{path}: the content is a {actual.upper()} file but the extension says {fmt.upper()}; "
                         f"rename it to .{actual}")
    return actual


def extension_agrees(path: Path, fmt: str) -> bool:
    """``path``'s extension names the format ``fmt`` its first bytes showed (.sav and .zsav either way)."""
    named = EXTENSIONS.get(path.suffix.lower())
    return named == fmt or {named, fmt} == {"sav", "zsav"}


def undecodable_names(paths: list[Path]) -> InputError | None:
    """The error naming the ``paths`` whose names are not text (bytes the file system could not decode
    as UTF-8: a database, a crosswalk's ``files`` and a terminal cannot hold them), or None."""
    bad = []
    for path in paths:
        try:
            str(path).encode("utf-8")
        except UnicodeEncodeError:
            bad.append(os.fsencode(path).decode("utf-8", "backslashreplace"))
    if not bad:
        return None
    return InputError(f"{len(bad)} file name(s) are not valid UTF-8 text: {'; '.join(bad[:10])}"
                      f"{' …' if len(bad) > 10 else ''} — rename them (their names were probably written in "
                      "another encoding, e.g. unpacked from a ZIP archive made on Windows; `convmv -f cp1252 -t utf8 "
                      "--notest FILE` renames one)")


def _reader(fmt: str) -> Callable[..., Any]:
    readers: dict[str, Callable[..., Any]] = {"sav": pyreadstat.read_sav, "zsav": pyreadstat.read_sav,
                                              "por": pyreadstat.read_por, "dta": pyreadstat.read_dta}
    return readers[fmt]


IN_MEMORY_MAX = 64 << 20  # files up to this many bytes are read into memory and parsed from there
READ_BUFFER = 1 << 20


def _read(fmt: str, path: str, **kwargs: Any) -> Any:
    """pyreadstat's reader of ``fmt`` on the file at ``path``, fed from memory (a file of up to
    :data:`IN_MEMORY_MAX` bytes) or through a 1 MiB buffer. Given a path, readstat reads the file in
    small pieces, a system call each: a 2,000-row ESS country file's header took 33 ms that way and 13 ms
    from memory, reading its needed columns 64 and 40 ms (decision 40)."""
    reader = _reader(fmt)
    size = os.path.getsize(path)
    if size == 0:
        return reader(path, **kwargs)  # reported as pyreadstat reports an empty file
    if size <= IN_MEMORY_MAX:
        with open(path, "rb") as fh:
            data = fh.read()
        return reader(io.BytesIO(data), **kwargs)
    with open(path, "rb", buffering=READ_BUFFER) as fh:
        return reader(fh, **kwargs)


def _explain(path: Path, exc: Exception, encoding: str | None, data: bool = False) -> InputError:
    """The input error for a reader's exception (``data``: raised reading rows, after the header read)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    low = text.lower()
    if ("encoding" in low or "invalid byte" in low or "convert string" in low or "character set" in low
            or isinstance(exc, UnicodeDecodeError)):
        tried = f" '{encoding}'" if encoding else " declared"
        if encoding and "unsupported character set" in low and not _known_encoding(encoding):
            return InputError(f"{path}: --encoding {encoding} is not an encoding name the reader knows ({text}); "
                              "pass one such as latin1, cp1252, utf-8 or iso-8859-2")
        if data and not encoding:  # the header's texts decoded with the same encoding: damage is likelier
            return InputError(f"{path}: a text in its rows cannot be decoded with the declared encoding ({text}), "
                              "though its header's can: the file is probably damaged — download it again; if it "
                              "is not, pass --encoding with the encoding its texts were written in")
        return InputError(f"{path}: text cannot be decoded with the{tried} encoding ({text}); "
                          "pass --encoding latin1 (or the file's real encoding)")
    if ("eof" in low or "truncat" in low or "unexpected end" in low or "read" in low and "error" in low
            or "unable to read" in low or "expected number of rows" in low):
        return InputError(f"{path}: file is truncated or corrupt ({text}); download it again")
    if "invalid file" in low:  # readstat's catch-all parse error; a truncated compressed file ends up here
        return InputError(f"{path}: cannot read file ({text}): it is truncated or corrupt (compare its size with "
                          "the download), or uses a feature the reader does not support; download it again, or "
                          "re-save it from SPSS or Stata")
    return InputError(f"{path}: cannot read file ({text})")


def _known_encoding(name: str) -> bool:
    """Whether Python knows the encoding ``name`` (readstat's iconv knows Python's names and more)."""
    import codecs

    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


def _kwargs(fmt: str, encoding: str | None) -> dict[str, Any]:
    """pyreadstat's options for ``fmt``: SPSS portable files take neither ``user_missing`` nor ``encoding``
    (pyreadstat's por reader has no such parameters; its text is ASCII by the format)."""
    kw: dict[str, Any] = {"disable_datetime_conversion": True}
    if fmt != "por":
        kw["user_missing"] = True
        if encoding:
            kw["encoding"] = encoding
    return kw


def _meta_from_pyreadstat(path: Path, fmt: str, m: Any, encoding: str | None) -> SourceMeta:
    """The file's :class:`SourceMeta` from pyreadstat's metadata ``m``. Variables with the same value labels share
    one labels dict (never changed in place): an ESS country file has 441 labelled variables and 33 distinct label
    sets, and its metadata, sent from discovery's reader to the build and on to a worker, pickles and loads in
    half the time."""
    variables: dict[str, VarMeta] = {}
    ranges = getattr(m, "missing_ranges", {}) or {}
    user_values = getattr(m, "missing_user_values", {}) or {}
    label_sets: dict[tuple[bool, tuple[tuple[Any, str], ...]], tuple[dict[Any, str], dict[str, str]]] = {}
    for i, name in enumerate(m.column_names, 1):
        if not isinstance(name, str) or not name.strip() or not name.isprintable():
            raise InputError(f"{path}: variable {i} has no valid name in the file header ({name!r}); the header is "
                             "corrupt — download the file again, or re-save it from SPSS or Stata")
        rtype = (m.readstat_variable_types or {}).get(name, "double")
        vtype: Literal["numeric", "string"] = "string" if rtype == "string" else "numeric"
        labels_raw = (m.variable_value_labels or {}).get(name, {}) or {}
        key = (vtype == "numeric", tuple(labels_raw.items()))
        if key not in label_sets:
            labels: dict[Any, str] = {}
            extended: dict[str, str] = {}
            for k, v in labels_raw.items():
                if fmt == "dta" and isinstance(k, str) and vtype == "numeric":
                    extended[k] = v
                else:
                    labels[norm_code(k)] = v
            label_sets[key] = labels, extended
        labels, shared = label_sets[key]
        extended = dict(shared)  # a variable's own: its declared letters join its labelled ones
        if fmt == "dta":
            for letter in user_values.get(name, []) or []:
                extended.setdefault(str(letter), "")
        values: list[Any] = []
        rngs: list[tuple[float, float]] = []
        for r in ranges.get(name, []) or []:
            lo, hi = r.get("lo"), r.get("hi")
            if lo == hi:
                values.append(norm_code(lo))
            else:
                rngs.append((float(lo), float(hi)))
        variables[name] = VarMeta(
            name=name, label=(m.column_names_to_labels or {}).get(name) or "", type=vtype,
            width=(m.variable_storage_width or {}).get(name) if vtype == "string" else None,
            format=(m.original_variable_types or {}).get(name), measure=(m.variable_measure or {}).get(name),
            labels=labels, missing_values=values, missing_ranges=rngs, extended=extended,
        )
    header = {"file_label": m.file_label or "", "file_encoding": m.file_encoding or "",
              "creation_time": _iso(m.creation_time), "modification_time": _iso(m.modification_time)}
    rows = m.number_rows if isinstance(m.number_rows, int) and m.number_rows >= 0 else None
    return SourceMeta(origin=str(path), variables=variables, format=fmt, encoding=m.file_encoding or encoding,
                      rows=rows, file_label=m.file_label, header=header)


def _iso(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value) if value else ""


@dataclass
class SourceFile:
    """An opened source file: its metadata and a chunked reader over chosen columns."""

    path: Path
    format: str
    meta: SourceMeta
    encoding: str | None = None
    codec: TextCodec | None = None  # texts read as latin-1 and decoded per text (no usable encoding record)
    virtual: dict[str, Any] = field(default_factory=dict)  # column → the value the user supplied for every row

    def supply(self, name: str, value: Any, label: str) -> None:
        """Add a column the file lacks, holding ``value`` in every row (e.g. the country of ``--country``)."""
        self.virtual[name] = value
        self.meta.variables[name] = VarMeta(name, label=label, type="string" if isinstance(value, str) else "numeric")

    def chunks(self, columns: list[str], chunksize: int = DEFAULT_CHUNK, start: int = 0,
               step: int | None = None) -> Iterator[pd.DataFrame]:
        """Yield normalised frames of ``columns`` (plus ``__row``), ``chunksize`` rows at a time.

        ``start``/``step``: read the chunks at rows start, start + step, … only (``step`` defaults
        to ``chunksize``: every chunk); several readers with the same step cover the file between them.
        """
        kw = _kwargs(self.format, self.encoding)
        virtual = [c for c in columns if c in self.virtual]
        columns = [c for c in columns if c not in self.virtual]
        if virtual and not columns:  # the rows still come from the file
            columns = [next(n for n in self.meta.variables if n not in self.virtual)]
        offset = start
        step = step or chunksize
        total = self.meta.rows
        while True:
            try:
                df, _ = _read(self.format, str(self.path), usecols=columns or None, row_offset=offset,
                              row_limit=chunksize, **kw)
                if self.format == "dta":
                    df = self._system_missing(df, offset, chunksize, kw)
            except (pyreadstat.ReadstatError, pyreadstat.PyreadstatError) as exc:
                raise _explain(self.path, exc, self.encoding, data=True) from exc
            except (UnicodeDecodeError, ValueError, OSError) as exc:
                raise _explain(self.path, exc, self.encoding, data=True) from exc
            n = len(df)
            if n == 0 and offset > 0:
                return
            frame = normalise(df, self.meta, offset, self.codec)
            for c in virtual:
                frame[c] = self.virtual[c]
            yield frame
            offset += step
            if n < chunksize or (total is not None and offset >= total):
                return

    def letters(self, columns: list[str], chunksize: int = DEFAULT_CHUNK) -> dict[str, dict[str, int]]:
        """The Stata extended missing letters each of ``columns`` (numeric variables of a .dta) holds, with their
        rows: ``{'trstprl': {'a': 42, 'b': 1573, 'c': 30}}`` (a column without letters is left out), read
        ``chunksize`` rows at a time: what deciding how the file letters needs (decision 97)."""
        out: dict[str, dict[str, int]] = {}
        for chunk in self.chunks(columns, chunksize) if columns else ():
            count_letters(chunk, columns, out)
        return out

    def _system_missing(self, df: pd.DataFrame, offset: int, chunksize: int, kw: dict[str, Any]) -> pd.DataFrame:
        """Restore Stata's system missing ``.`` in numeric columns that also hold extended missing values.

        With ``user_missing=True`` pyreadstat returns an arbitrary number (uninitialised memory: often
        0, sometimes a pointer) for a ``.`` after an ``.a``–``.z`` in a byte/int/long column. Such
        columns come back as objects (numbers and letters); they are read again without user-missing
        values, where ``.`` and the letters are NaN, and a number there that is NaN is set missing.
        """
        mixed = [c for c in df.columns if df[c].dtype == object and (vm := self.meta.get(str(c))) is not None
                 and vm.type == "numeric"]
        if not mixed:
            return df
        plain, _ = _read("dta", str(self.path), usecols=mixed, row_offset=offset, row_limit=chunksize,
                         **{**kw, "user_missing": False})
        for c in mixed:
            values = df[c]
            number = values.map(lambda x: not isinstance(x, str) and not pd.isna(x)).to_numpy(dtype=bool)
            wrong = number & plain[c].isna().to_numpy()
            if wrong.any():
                df[c] = values.where(~wrong, np.nan)
        return df

    def seekable(self) -> bool:
        """True when reading from a row offset skips the rows before it (fixed-width records:
        uncompressed .sav and .dta); compressed files decompress up to the offset."""
        if self.format == "dta":
            return True
        if self.format != "sav":
            return False
        head = _magic(self.path)[:80]
        if len(head) < 76:
            return False
        layout, compression = int.from_bytes(head[64:68], "little"), int.from_bytes(head[72:76], "little")
        if layout not in (2, 3):  # a big-endian file
            compression = int.from_bytes(head[72:76], "big")
        return compression == 0


ROW_COLUMN = "__row"  # the row numbers staged beside the file's columns


def _duck_key(name: str) -> str:
    """How DuckDB compares identifiers: ASCII letters without case (it renames a frame's second ``Q1``/``q1``
    column ``q1_1``, and a quoted ``"q1"`` then reads ``Q1``)."""
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in name)


def check_staged_names(path: Path, columns: list[str], meta: SourceMeta) -> None:
    """Raise InputError when the columns read from a file would not stay apart once staged for DuckDB: two
    variables whose names differ only in case (Stata tells ``q1`` from ``Q1``; DuckDB does not, and silently
    read one for the other), or one named as harmonise's own row-number or Stata-letter columns (its values
    replaced the row numbers)."""
    seen: dict[str, tuple[str | None, str]] = {_duck_key(ROW_COLUMN): (None, f"harmonise's row numbers ({ROW_COLUMN})")}
    for col in columns:
        staged: list[tuple[str, str | None, str]] = [(col, col, f"variable {col}")]
        if meta.format == "dta" and (vm := meta.variables.get(col)) is not None and vm.type == "numeric":
            staged.append((col + EXT_SUFFIX, None, f"the Stata letters of {col} ({col}{EXT_SUFFIX})"))
        for name, var, what in staged:
            key = _duck_key(name)
            if key in seen:
                other, said = seen[key]
                rename = var or other or col
                raise InputError(f"{path}: {said} and {what}, which the crosswalk reads, would share one column name "
                                 "in DuckDB (it ignores case in names), so one would silently be read for the other; "
                                 f"rename {rename} in the file (Stata: rename {rename} {rename}_2), and the "
                                 "crosswalk's rules with it")
            seen[key] = (var, what)


def count_letters(chunk: pd.DataFrame, columns: list[str], into: dict[str, dict[str, int]]) -> None:
    """Add to ``into`` (variable → letter → rows) the Stata letters each of ``columns`` holds in ``chunk`` (a
    frame :func:`normalise` gave: the letters are in the ``EXT_SUFFIX`` columns)."""
    for c in columns:
        held = chunk.get(c + EXT_SUFFIX)
        if held is None:
            continue
        for letter, n in held.dropna().value_counts().items():
            mine = into.setdefault(c, {})
            mine[str(letter)] = mine.get(str(letter), 0) + int(n)


def normalise(df: pd.DataFrame, meta: SourceMeta, offset: int, codec: TextCodec | None = None) -> pd.DataFrame:
    """Numeric → float64; strings right-stripped (and decoded by ``codec``) with blanks as missing; Stata
    letters split out. Per distinct value, not per row: a column's values are factorised first."""
    out: dict[str, Any] = {ROW_COLUMN: np.arange(offset + 1, offset + len(df) + 1, dtype=np.int64)}
    for col in df.columns:
        vm = meta.variables.get(col)
        s = df[col]
        if vm is not None and vm.type == "string":
            out[col] = _strings(s.to_numpy(dtype=object), codec)
        elif s.dtype == object or not pd.api.types.is_numeric_dtype(s.dtype):
            # Stata letters among numbers; a column of letters only comes as text (pandas' string dtype)
            values = s.to_numpy(dtype=object)
            letter = np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=len(values))
            out[col] = pd.to_numeric(pd.Series(np.where(letter, np.nan, values)), errors="coerce") \
                .to_numpy(dtype="float64", na_value=np.nan)
            letters = values.copy()
            letters[~letter] = None
            out[col + EXT_SUFFIX] = pd.array(letters, dtype="string")
        else:
            out[col] = s.to_numpy(dtype="float64", na_value=np.nan)
            if meta.format == "dta":  # no extended missing value in this chunk
                out[col + EXT_SUFFIX] = pd.array(np.full(len(s), None, dtype=object), dtype="string")
    return pd.DataFrame(out)


def _strings(values: np.ndarray, codec: TextCodec | None) -> Any:
    """A string column's values decoded by ``codec``, right-stripped, blanks and missing as NA."""
    codes, uniques = pd.factorize(values)  # missing → -1
    fixed = np.empty(len(uniques) + 1, dtype=object)  # fixed[-1]: missing
    for i, v in enumerate(uniques):
        if isinstance(v, str):
            v = (codec.fix(v) if codec is not None else v).rstrip() or None
        fixed[i] = v
    return pd.array(fixed[codes], dtype="string")


def _ascii_compatible(path: Path, encoding: str) -> None:
    """Refuse an encoding that does not keep ASCII as is (utf-16, utf-32): SPSS and Stata store variable
    names in ASCII, so such an encoding turns every name into other characters."""
    try:
        same = "Az09_".encode(encoding) == b"Az09_"
    except LookupError:  # a name Python does not know: the reader reports it, with the file
        return
    if not same:
        raise InputError(f"{path}: --encoding {encoding} cannot be the text encoding of an SPSS or Stata file: it "
                         "does not keep ASCII as is, so every variable name would be misread; pass an "
                         "ASCII-compatible encoding (latin1, cp1252, utf-8) or drop --encoding")


def _read_meta(path: Path, fmt: str, encoding: str | None, isolate: bool = True, rows: int = 0) -> tuple[Any, Any]:
    """(the file's first ``rows`` rows of every column, or None without ``rows``; pyreadstat's metadata)."""
    try:
        call = isolated if isolate else direct
        # a dict, not an empty DataFrame of every column: pandas took a third of a country file's header read
        limit = {"row_limit": rows} if rows else {"metadataonly": True}
        data, m = call(_read, fmt, str(path), output_format="dict", **limit, **_kwargs(fmt, encoding))
    except ReaderCrashed as exc:
        raise InputError(f"{path}: file is corrupt: the {fmt.upper()} reader crashed on its header ({exc}); "
                         "download it again") from None
    except (pyreadstat.ReadstatError, pyreadstat.PyreadstatError) as exc:
        raise _explain(path, exc, encoding) from exc
    except (UnicodeDecodeError, ValueError, OSError) as exc:
        raise _explain(path, exc, encoding) from exc
    return (data if rows else None), m


def declared_cases(head: bytes) -> int | None:
    """The number of cases an SPSS system file's header (its first bytes ``head``) records; None when it
    records none (-1) or ``head`` is no .sav/.zsav header."""
    if len(head) < 84 or head[:4] not in (b"$FL2", b"$FL3"):
        return None
    order: Literal["little", "big"] = "little" if int.from_bytes(head[64:68], "little") in (2, 3) else "big"
    cases = int.from_bytes(head[80:84], order, signed=True)
    return cases if cases >= 0 else None


UTF8_RELEASE = 118  # Stata's first format whose texts are UTF-8 by definition


def dta_release(head: bytes) -> int | None:
    """The format (release) number of a Stata file from its first bytes (None: not a Stata header)."""
    if head.startswith(b"<stata_dta>"):
        at = head.find(b"<release>")
        digits = head[at + 9:at + 12] if at >= 0 else b""
        return int(digits) if digits.isdigit() else None
    return head[0] if len(head) > 2 and 102 <= head[0] <= 115 else None


def open_source(path: Path, encoding: str | None = None, *, isolate: bool = True) -> SourceFile:
    """Open ``path`` and read its metadata (no data); InputError when unreadable.

    Without ``encoding``, a file whose texts its declared (or default) encoding cannot decode is
    read byte for byte and each text decoded by :mod:`harmonise.readers.textcodec`; the
    ``SourceFile.codec`` says how (and ``meta.encoding`` names it). The header is read in a forked
    child (:func:`isolated`) unless ``isolate`` is false: a caller already in such a child
    (:func:`isolated_map`)."""
    return _open(path, encoding, isolate, 0)[0]


@dataclass
class Sample:
    """A file's first rows of every column, as the reader gave them with its header (see :func:`open_sampled`)."""
    data: dict[str, Any]

    def frame(self, src: SourceFile, columns: list[str]) -> pd.DataFrame:
        """The sample's ``columns`` (names as in the file), normalised as :meth:`SourceFile.chunks` gives them."""
        df = pd.DataFrame({c: self.data[c] for c in columns if c in self.data})
        return normalise(df, src.meta, 0, src.codec)


def open_sampled(path: Path, encoding: str | None, rows: int) -> tuple[SourceFile, Sample | None]:
    """:func:`open_source` in this process, and the file's first ``rows`` rows of every column from the same pass
    of the reader where that pass can give both: an SPSS system file whose header records its number of cases
    (the reader reports the rows it read, not the file's). Otherwise, or when those rows cannot be read, no
    sample (None): the caller reads the rows it needs, and reading them reports their error. One pass instead
    of two: a country file's header costs most of reading it (decision 62)."""
    fmt = detect_format(path)
    cases = declared_cases(_magic(path)) if fmt in ("sav", "zsav") and rows > 0 else None
    if cases is not None:
        try:
            return _open(path, encoding, False, rows, cases)
        except InputError:
            pass  # the header alone, below: a damaged row is reported where the rows are read
    return _open(path, encoding, False, 0)[0], None


def _open(path: Path, encoding: str | None, isolate: bool, rows: int,
          cases: int | None = None) -> tuple[SourceFile, Sample | None]:
    """The file's header (and with ``rows``, its first rows; ``cases``: the rows its header records)."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a data file")
    fmt = detect_format(path)
    if encoding:
        _ascii_compatible(path, encoding)
    codec: TextCodec | None = None
    m = None
    data: dict[str, Any] | None = None
    # a Stata file before format 118 records no encoding: the reader's Windows-1252 turns the UTF-8 that R, Python
    # and Stata 13 on a Mac write into mojibake without an error, so its texts are always decoded per text
    release = dta_release(_magic(path)) if fmt == "dta" and not encoding else None
    if release is None or release >= UTF8_RELEASE:
        try:
            data, m = _read_meta(path, fmt, encoding, isolate, rows)
        except InputError as exc:  # with rows: the caller reads the header alone (a damaged row is not the header's)
            if rows or encoding or fmt == "por" or "cannot be decoded" not in str(exc):
                raise
    if m is None:
        data, m = _read_meta(path, fmt, "latin1", isolate, rows)  # every byte one character: decoded per text below
        codec = choose(_meta_texts(m))
        _recode_meta(m, codec)
    if rows:
        m.number_rows = cases
    try:
        meta = _meta_from_pyreadstat(path, fmt, m, encoding)
    except (TypeError, ValueError, KeyError, OverflowError) as exc:  # values no valid header holds
        raise InputError(f"{path}: file is corrupt: its header holds invalid metadata ({exc}); download it again") from exc
    if codec is not None:
        meta.encoding = codec.describe()
    src = SourceFile(path=path, format=fmt, meta=meta, encoding="latin1" if codec else encoding, codec=codec)
    return src, None if data is None else Sample(data)


def _meta_texts(m: Any) -> list[str]:
    texts = [m.file_label or "", *(lab or "" for lab in (m.column_names_to_labels or {}).values())]
    for labels in (m.variable_value_labels or {}).values():
        for k, v in (labels or {}).items():
            texts.extend(t for t in (k, v) if isinstance(t, str))
    return texts


def _recode_meta(m: Any, codec: TextCodec) -> None:
    """Decode the texts of latin-1 read metadata in place (labels, value labels and their string codes)."""
    m.file_label = codec.fix(m.file_label) if m.file_label else m.file_label
    m.column_names_to_labels = {k: codec.fix(v) if isinstance(v, str) else v
                                for k, v in (m.column_names_to_labels or {}).items()}
    m.variable_value_labels = {name: {(codec.fix(k) if isinstance(k, str) else k): (codec.fix(v) if isinstance(v, str)
                                                                                   else v)
                                      for k, v in (labels or {}).items()}
                               for name, labels in (m.variable_value_labels or {}).items()}
