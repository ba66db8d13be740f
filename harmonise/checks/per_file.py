"""What the checks of each data file found, said once for all the files that found the same.

A wave's country files (ESS9AT.sav, ESS9BE.sav, …) often share a finding: the same code declared missing,
the same variable empty, the same targets not available. Said per file, 30 country files gave 30 lines that
differed only in their row counts and did not say which file each was. :func:`of_file` marks a finding with
its file; :func:`grouped` joins the findings that differ only in the file they name and in their row counts
into one, naming the files and summing the rows, and names the file of a finding only one of several files
has. A finding whose other figures differ (another code, another share) stays apart.
"""

from __future__ import annotations

import re
from dataclasses import replace

from harmonise.errors import Issue, more

DATA_FILE = "data_file"  # an issue's extra: the data file (as provenance names it) whose rows the check read
DATA_PATH = "data_path"  # … and its path as given
_ROWS = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})*(?= rows?\b)|(?<![\d.,])\d+(?= rows?\b)")
_SHOWN = 5  # files named in a joined finding (then: "and N more")


def of_file(issue: Issue, name: str, path: str) -> Issue:
    """``issue``, found in the rows of the data file ``name`` (at ``path``)."""
    return replace(issue, extra={**issue.extra, DATA_FILE: name, DATA_PATH: path})


_OWN = "\0"  # where a finding's message names its own file


def _masked(issue: Issue) -> str:
    """The message with its own file (path, or name) as :data:`_OWN`."""
    text = issue.message
    for own in sorted({str(issue.extra[DATA_PATH]), str(issue.extra[DATA_FILE])}, key=len, reverse=True):
        text = text.replace(own, _OWN)
    return text


def _shape(issue: Issue) -> tuple[object, ...]:
    """What two findings of different files must share to be one: all but the file they name and their row counts."""
    located = None if _at_file(issue) else issue.file
    return (issue.severity, issue.code, located, issue.line, issue.path, issue.survey, issue.wave,
            issue.variable, issue.hint, _ROWS.sub("#", _masked(issue)))


def _at_file(issue: Issue) -> bool:
    """Whether the issue is located at its data file (``file``: the file, not a crosswalk line)."""
    return issue.file is not None and issue.file in (str(issue.extra[DATA_PATH]), str(issue.extra[DATA_FILE]))


def _files(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + more(len(names) - _SHOWN)


def _joined(members: list[Issue]) -> Issue:
    """One finding for ``members`` (findings of different files, the same but for their files and row counts)."""
    first = members[0]
    names = [str(m.extra[DATA_FILE]) for m in members]
    texts = [_masked(m) for m in members]  # a file name's own digits ("2000 rows.sav") are no row count
    counts = [[int(c.replace(",", "")) for c in _ROWS.findall(t)] for t in texts]
    sums = iter([sum(column) for column in zip(*counts)])
    text = _ROWS.sub(lambda _: f"{next(sums):,}", texts[0])
    together = f"{len(members)} files ({_files(names)})"
    text = text.replace(_OWN, together) if _OWN in text else f"in {together}: {text}"
    extra = {k: v for k, v in first.extra.items() if k not in (DATA_FILE, DATA_PATH)}
    return replace(first, message=text, extra={**extra, "data_files": names},
                   file=None if _at_file(first) else first.file, line=None if _at_file(first) else first.line)


def grouped(issues: list[Issue], files: int) -> list[Issue]:
    """``issues`` with the findings :func:`of_file` marked joined across files (at the first one's place) when
    they differ only in their files and row counts; a finding of one file names it when the run read ``files``
    files, more than one, and it does not name its file already."""
    shapes: dict[tuple[object, ...], list[int]] = {}
    seen: dict[tuple[object, ...], int] = {}  # a file's findings of one shape: its first joins the others' first, …
    for pos, issue in enumerate(issues):
        if DATA_FILE in issue.extra and DATA_PATH in issue.extra:
            shape = _shape(issue)
            nth = seen[(*shape, issue.extra[DATA_FILE])] = seen.get((*shape, issue.extra[DATA_FILE]), -1) + 1
            shapes.setdefault((*shape, nth), []).append(pos)
    place = {positions[0]: positions for positions in shapes.values()}
    joined = {pos for positions in shapes.values() for pos in positions[1:]}
    out = []
    for pos, issue in enumerate(issues):
        if pos in joined:
            continue
        positions = place.get(pos)
        if positions is None:
            out.append(issue)
        elif len(positions) > 1:
            out.append(_joined([issues[p] for p in positions]))
        else:
            name, path = str(issue.extra[DATA_FILE]), str(issue.extra[DATA_PATH])
            named = files > 1 and name not in issue.message and path not in issue.message and not _at_file(issue)
            out.append(replace(issue, message=f"in {name}: {issue.message}") if named else issue)
    return out
