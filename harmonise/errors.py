"""One typed error hierarchy for harmonise, and the `Issue` record every check emits.

Exit codes are part of the contract: 0 ok, 1 validation failed, 2 usage error or
unreadable input. The CLI maps exceptions to those codes and nothing else does.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Literal

Severity = Literal["error", "warning", "note"]  # a note changes nothing in the result: said once, grouped
ISSUES_DOC = "docs/issues.md"  # one entry per issue code, headed by the code


def more(hidden: int, sep: str = " and", detail: str = "") -> str:
    """How a message says how many items of a list it leaves out (``detail``: what they hold, e.g. their rows);
    the issue's JSON form (``--format json``) holds them all, in its ``extra``."""
    return f"{sep} {hidden:,} more ({detail}{'; ' if detail else ''}--format json lists all)" if hidden > 0 else ""


@dataclass(frozen=True)
class Issue:
    """One finding, located as precisely as the checker knows.

    ``file``/``line``/``path`` locate YAML problems (``mappings/ess.yaml:42
    targets.sex.map``); ``variable``/``code`` locate data problems.
    """

    message: str
    code: str = "error"
    severity: Severity = "error"
    file: str | None = None
    line: int | None = None
    path: str | None = None
    hint: str | None = None
    survey: str | None = None
    wave: str | None = None
    variable: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def location(self) -> str:
        """``file:line path`` (whatever parts are known)."""
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "")
        if self.path:
            where = f"{where} {self.path}" if where else self.path
        if not where and self.survey:
            where = f"{self.survey} wave {self.wave}" if self.wave else self.survey
        return where

    def format(self) -> str:
        """The one-line human form: ``where: message (hint)``."""
        where = self.location()
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f" — {self.hint}"
        return text

    def to_dict(self) -> dict[str, object]:
        """The JSON form; ``doc`` links the code's entry in docs/issues.md (meaning and fix)."""
        data = asdict(self) | {"doc": f"{ISSUES_DOC}#{self.code}"}
        return {k: v for k, v in data.items() if v not in (None, {}, "")}


def issues_json(issues: list[Issue]) -> str | None:
    """``issues`` as JSON that :func:`issues_from_json` turns back into equal issues (tuples and lists told apart),
    or None when some value has no such form (a set, a number type of numpy's, a key that is no text)."""
    def enc(v: object) -> object:
        if v is None or type(v) in (bool, int, float, str):
            return v
        if type(v) is tuple:
            return {"tuple": [enc(x) for x in v]}
        if type(v) is list:
            return [enc(x) for x in v]
        if type(v) is dict and all(type(k) is str for k in v):
            return {"dict": {k: enc(x) for k, x in v.items()}}
        raise TypeError(type(v).__name__)

    try:
        return json.dumps([{k: enc(v) for k, v in vars(i).items()} for i in issues], ensure_ascii=False)
    except (TypeError, ValueError):
        return None


def issues_from_json(text: str) -> list[Issue]:
    """The issues :func:`issues_json` wrote."""
    def dec(v: object) -> object:
        if isinstance(v, list):
            return [dec(x) for x in v]
        if isinstance(v, dict):
            return tuple(dec(x) for x in v["tuple"]) if "tuple" in v else {k: dec(x) for k, x in v["dict"].items()}
        return v

    return [Issue(**{k: dec(v) for k, v in d.items()}) for d in json.loads(text)]  # type: ignore[arg-type]


class HarmoniseError(Exception):
    """Base of every error harmonise raises on purpose. Exit code 2."""

    exit_code = 2


class UsageError(HarmoniseError):
    """The command was called wrongly (missing file, bad option combination)."""


class InputError(HarmoniseError):
    """An input file cannot be read: missing, corrupt, truncated, wrong format or encoding."""


class ValidationFailed(HarmoniseError):
    """Mappings or data failed validation; carries every issue found, not just the first."""

    exit_code = 1

    def __init__(self, issues: list[Issue], summary: str = "validation failed") -> None:
        self.issues = issues
        self.summary = summary
        errors = [i for i in issues if i.severity == "error"]
        super().__init__(f"{summary}: {len(errors)} error(s)")

    def __reduce__(self) -> tuple[type[ValidationFailed], tuple[list[Issue], str]]:
        """Pickled with its issues (a forked child hands its errors to the parent)."""
        return (type(self), (self.issues, self.summary))


class BuildLocked(HarmoniseError):
    """Another build holds the lock on the same database path."""


class QueryTimeout(HarmoniseError):
    """A query ran longer than its ``--timeout``. Exit code 1."""

    exit_code = 1


class Interrupted(HarmoniseError):
    """The user stopped the command (Ctrl-C). Exit code 130, as shells report SIGINT."""

    exit_code = 130
