"""Files under ``--data`` that harmonise does not read but a user may think it does.

Survey portals ship SPSS and Stata files inside ZIP archives (the ESS and GESIS downloads), and offer
CSV, Excel, R or SAS exports beside them. A file named on the command line that is not an SPSS or
Stata file is an input error that says what it is and what to do; an archive inside a ``--data``
folder whose SPSS or Stata files are not extracted beside it is one grouped warning, so a build never
silently leaves out the data a user downloaded.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from harmonise.errors import Issue

# Compressed single files (ESS9e03_2.sav.gz): what they hold is their name without the suffix.
COMPRESSED = {".gz": "a gzip-compressed file", ".bz2": "a bzip2-compressed file", ".xz": "an xz-compressed file"}
ARCHIVES = {".zip": "a ZIP archive", ".7z": "a 7-Zip archive", ".rar": "a RAR archive", ".tar": "a tar archive",
            ".tgz": "a gzip-compressed tar archive", **COMPRESSED}
# Exports without the value labels and missing-value declarations the crosswalks rely on, or in a
# format pyreadstat does not read: download (or write) the SPSS or Stata edition instead.
EXPORTS = {".csv": "a CSV file", ".tsv": "a tab-separated text file", ".txt": "a text file",
           ".xlsx": "an Excel workbook", ".xls": "an Excel workbook", ".ods": "a spreadsheet",
           ".rds": "an R data file", ".rdata": "an R workspace", ".rda": "an R workspace",
           ".sas7bdat": "a SAS data set", ".xpt": "a SAS transport file", ".parquet": "a Parquet file",
           ".json": "a JSON file"}
# What readers.files.EXTENSIONS holds. That module imports pyreadstat, so the functions below import it when
# they run: importing harmonise.checks (a static validate) loads no data library.
READS = "harmonise reads SPSS (.sav, .zsav, .por) and Stata (.dta) files"
SHOWN = 5  # archives named in the grouped warning


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".tar" if name.endswith((".tar.gz", ".tar.bz2", ".tar.xz")) else path.suffix.lower()


def held(path: Path) -> list[str] | None:
    """The names of the SPSS and Stata files an archive holds (sorted), or None when that cannot be told
    without unpacking it (7-Zip, RAR, tar, or a damaged ZIP)."""
    from harmonise.readers.files import EXTENSIONS

    suffix = _suffix(path)
    if suffix in COMPRESSED:
        inner = path.name[: -len(suffix)]
        return [inner] if Path(inner).suffix.lower() in EXTENSIONS else []
    if suffix != ".zip":
        return None
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    return sorted({Path(n).name for n in names if Path(n).suffix.lower() in EXTENSIONS and not n.endswith("/")})


def not_data(path: Path) -> str | None:
    """Why a file named on the command line cannot be read as survey data (None: its extension is one
    harmonise reads): what it is, and what to do instead."""
    from harmonise.readers.files import EXTENSIONS

    suffix = _suffix(path)
    if suffix in EXTENSIONS:
        return None
    if suffix in ARCHIVES:
        inside = held(path)
        holds = f" holding {', '.join(inside[:SHOWN])}{' …' if len(inside) > SHOWN else ''}" if inside else ""
        return (f"{path}: is {ARCHIVES[suffix]}{holds}; {READS}: extract it and give --data the extracted "
                "file or its folder")
    if suffix in EXPORTS:
        return (f"{path}: is {EXPORTS[suffix]}; {READS}, whose value labels and missing-value declarations the "
                "crosswalks rely on: download or export the survey's SPSS or Stata edition")
    return f"{path}: unsupported file extension '{path.suffix}'; {READS}"


def exported(path: Path) -> str | None:
    """What an export of survey data is (``a CSV file``), by its name; None for any other file (text and JSON
    files beside data are more often its documentation)."""
    suffix = _suffix(path)
    return None if suffix in (".txt", ".json") else EXPORTS.get(suffix)


def is_archive(path: Path) -> bool:
    """Whether ``path``'s name is that of an archive or a compressed file."""
    return _suffix(path) in ARCHIVES


def unextracted(archives: list[Path], files: list[Path]) -> list[Issue]:
    """One warning for the ``archives`` (found in the ``--data`` folders) that hold SPSS or Stata files not
    found among ``files`` (the data files read), or whose content cannot be listed."""
    found = {f.name.lower() for f in files}
    missing: list[str] = []
    for p in archives:
        inside = held(p)
        left = None if inside is None else [n for n in inside if n.lower() not in found]
        if left is None:
            missing.append(f"{p} (content not listed)")
        elif left:
            missing.append(f"{p} ({', '.join(left[:SHOWN])}{' …' if len(left) > SHOWN else ''})")
    if not missing:
        return []
    return [Issue(f"{len(missing)} archive(s) under --data not read: {'; '.join(missing[:SHOWN])}"
                  f"{' …' if len(missing) > SHOWN else ''}; {READS}, not archives",
                  code="archive-not-read", severity="warning",
                  hint="extract them beside the archive (e.g. unzip FILE -d FOLDER) and build again; "
                       "an archive whose files are extracted beside it is not reported")]
