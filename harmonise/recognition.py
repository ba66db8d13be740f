"""How a data file is recognised as a crosswalk wave's: its content variables' values in its first rows
(``content``), else its name (``files`` patterns), or the wave ``--survey``/``--wave`` names; and the issues of
files recognised otherwise by name and content, of several waves' rows, or of none (out of ``discover`` since
the twenty-fifth session: what a file *is* apart from the pass that reads every file)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harmonise.checks.per_file import of_file
from harmonise.errors import InputError, Issue
from harmonise.readers.files import SourceFile
from harmonise.rounds import content_text, content_values, content_wanted, natural_key
from harmonise.spec.crosswalk import Crosswalk, Wave
from harmonise.spec.source import find_variable

# A content variable's values are read from a file's first CONTENT_SAMPLE rows (the whole of a smaller file):
# no file takes a pass of its own to be recognised (reading a 2,000-row country file's `essround` whole cost
# twice its header; decisions 51, 53). A file with more rows is ``Job.sampled``: harmonising reads its
# content variables with the rest and checks every row.
CONTENT_SAMPLE = 100


@dataclass
class Options:
    """What the user said about the files: ``--survey``, ``--wave``, ``--country``, ``--encoding``, ``--city``."""

    survey: str | None = None
    wave: str | None = None
    country: str | None = None
    encoding: str | None = None
    # files a first run found rows of another wave in, past the rows discovery read (a cumulative file sorted by
    # round): their content variables are read whole and their rows harmonised wave by wave
    whole: frozenset[Path] = frozenset()
    city: str | None = None


def recognise(f: Path, src: SourceFile | None, crosswalks: list[Crosswalk], opts: Options,
              scanned: dict[str, set[str] | InputError] | None = None) -> tuple[list[tuple[Crosswalk, Wave]], str]:
    """The waves ``f`` (opened as ``src``, None when unreadable) belongs to, and how they were found (or
    why none was); ``scanned``: content values read already (:func:`discover`)."""
    if opts.survey and opts.wave:
        cw = crosswalks[0]
        return [(cw, next(w for w in cw.waves if w.wave == opts.wave))], "assigned by --survey/--wave to"
    seen: list[str] = []
    if src is not None:
        cache: dict[str, set[str]] = {}
        hits = []
        for cw in crosswalks:
            for w in cw.waves:
                if w.content and _content_match(src, w, cache, scanned or {}):
                    hits.append((cw, w))
        if hits:
            return hits, BY_CONTENT
        seen = [f"{name} = {', '.join(sorted(vals)) or 'nothing'}" for name, vals in cache.items()]
    hits = _named(f, crosswalks)
    if not hits and src is not None and src.meta.rows == 0:  # no row to tell its wave by
        return hits, "has no rows, so its content cannot tell its wave, and its name matches no wave's files"
    return hits, "file name matches" if hits else (f"holds {'; '.join(seen)}" if seen else "")


def name_overridden(f: Path, cw: Crosswalk, wave: Wave) -> Issue | None:
    """A warning when ``--survey``/``--wave`` assign ``f`` to ``wave`` but its name matches only other waves' files of
    the survey (a file without the round variable, whose name is then the only word it has on its wave)."""
    named = [w for _, w in _named(f, [cw])]
    if not named or any(w is wave for w in named):
        return None
    return Issue(f"{f}: assigned to {cw.survey} wave {wave.wave} by --survey/--wave, but its name matches the files of "
                 f"{', '.join(f'{cw.survey} wave {w.wave}' for w in named)}: it is harmonised as the wave given",
                 code="content-overridden", severity="warning", survey=cw.survey, wave=wave.wave,
                 hint="check the wave given (the interview dates say which round a file is)")


def _named(f: Path, crosswalks: list[Crosswalk]) -> list[tuple[Crosswalk, Wave]]:
    """The waves whose file-name patterns ``f`` matches."""
    return [(cw, w) for cw in crosswalks for w in cw.waves
            if any(fnmatch.fnmatch(f.name.lower(), pat.lower()) for pat in w.files)]


def _content_match(src: SourceFile, wave: Wave, cache: dict[str, set[str]],
                   scanned: dict[str, set[str] | InputError]) -> bool:
    """True when every content variable of ``wave`` is in ``src`` and holds only the wave's values
    (read from the file unless ``scanned`` holds them)."""
    assert wave.content is not None
    for name, allowed in wave.content.items():
        vm = find_variable(src.meta.variables, name)
        if vm is None:
            return False
        if vm.name not in cache:
            got = scanned.get(vm.name)
            if isinstance(got, InputError):
                raise got
            cache[vm.name] = got if got is not None else sampled_values(src, vm.name)
        wanted = content_wanted(allowed)
        if not cache[vm.name] or not cache[vm.name] <= wanted:
            return False
    return True


BY_CONTENT = "its content matches"


def name_content(f: Path, src: SourceFile | None, hit: tuple[Crosswalk, Wave], why: str,
                  crosswalks: list[Crosswalk], others: list[tuple[Crosswalk, str]], files_of: dict[str, str],
                  seen: dict[str, set[str] | InputError]) -> list[Issue]:
    """A warning when the file's content and its name make it different waves (of one survey or of two): the
    wave it is harmonised as, and the options that force the other. With ``others`` (crosswalks not loaded,
    validating named ones), also when a build with every crosswalk would recognise it otherwise."""
    cw, wave = hit
    used = f"{cw.survey} wave {wave.wave}"

    def force(waves: list[tuple[Crosswalk, Wave]]) -> str:
        return "; ".join(f"--survey {c.survey} --wave {w.wave} harmonises it as {c.survey} wave {w.wave}"
                         for c, w in waves)

    every = [*crosswalks, *(c for c, _ in others)]
    if others and src is not None:
        try:
            built, built_why = recognise(f, src, every, Options(), seen)
        except InputError:
            built, built_why = [], ""
        # by content, one other wave takes the file in a build; by name, several waves make it ambiguous there
        if built != [hit] and (built_why == BY_CONTENT or len(built) > 1):
            waves = ", ".join(f"{c.survey} wave {w.wave} ({files_of.get(c.survey, c.survey)})" for c, w in built)
            what = "its content matches" if built_why == BY_CONTENT else "its name matches the files of"
            return [Issue(f"{f}: validated here as {used} ({files_of.get(cw.survey, cw.survey)}), but {what} "
                          f"{waves}: a build with every crosswalk harmonises it as "
                          f"{'that wave' if len(built) == 1 else 'none of them (ambiguous-file)'}",
                          code="name-content", severity="warning", survey=cw.survey, wave=wave.wave,
                          hint=f"build it with --survey {cw.survey} --wave {wave.wave} to harmonise it as validated "
                               "here; validate without naming a crosswalk to check it as a build does")]
    by_name = _named(f, every) if why == BY_CONTENT else []
    named = [n for n in by_name if n != hit]
    if not named:
        return []
    names = ", ".join(f"{c.survey} wave {w.wave}" for c, w in named)
    also = hit in by_name
    same = all(c is cw for c, _ in named)
    return [Issue(
        f"{f}: its content makes it {used}"
        + (f"; its name matches the files of {used} and of {names}" if also else
           f", but its name matches the files of {names}")
        + f"; it is harmonised as {used} ({files_of.get(cw.survey, cw.survey)}): content comes before file names",
        code="name-content", severity="warning", survey=cw.survey, wave=wave.wave,
        hint=("check the file: a misnamed file is harmless, but a file holding several waves is recognised by its "
              f"first {CONTENT_SAMPLE} rows; " if same else "check which crosswalk the file is for; ")
             + force(named) + " (in validate and build alike), whatever the content")]


def observed_content(src: SourceFile, cw: Crosswalk, scanned: dict[str, set[str] | InputError]) -> dict[str, set[str]]:
    """The values of the survey's content variables in the first rows of ``src`` (every row of a small file)."""
    out: dict[str, set[str]] = {}
    for name in dict.fromkeys(n for w in cw.waves for n in (w.content or {})):
        vm = find_variable(src.meta.variables, name)
        if vm is not None:
            out[vm.name] = first_values(src, vm.name, scanned)
    return out


def first_values(src: SourceFile, column: str, scanned: dict[str, set[str] | InputError]) -> set[str]:
    """A content variable's values in the first rows of ``src``, as discovery scanned them (read now if not)."""
    got = scanned.get(column)
    if isinstance(got, InputError):
        raise got
    return got if got is not None else sampled_values(src, column)


def several_waves(src: SourceFile, crosswalks: list[Crosswalk], scanned: dict[str, set[str] | InputError]
                   ) -> str | None:
    """``name = values`` when a content variable of ``src`` holds the values of two or more waves of a survey in its
    first rows (a cumulative file), else None."""
    for cw in crosswalks:
        for name, values in observed_content(src, cw, scanned).items():
            waves = {w.wave for w in cw.waves for n, allowed in (w.content or {}).items()
                     if n.lower() == name.lower() and values & content_wanted(allowed)}
            if len(waves) > 1:
                return f"{name} = {', '.join(sorted(values, key=natural_key))} ({cw.survey} waves {', '.join(sorted(waves, key=natural_key))})"
    return None



def mixed_waves(f: Path, what: str, cw: str | None) -> Issue:
    """The error of a file holding rows of several waves that cannot be read wave by wave: given --survey/--wave
    (``cw``, the survey given), or with no one content variable telling its waves apart; they would all be stored
    as one."""
    return Issue(f"{f}: {what}: rows of several waves, which would all be stored as one wave", code="mixed-waves",
                 survey=cw, hint="drop --survey/--wave: a file of several waves is read wave by wave" if cw else
                 "split it into one file per wave (a cumulative file: by its round variable), then harmonise the "
                 "files together")


def foreign_content(src: SourceFile, wave: Wave, scanned: dict[str, set[str] | InputError]) -> str | None:
    """How the first rows of a file matched to ``wave`` by its name hold content values of another wave
    (None when its content variables are absent, empty or the wave's)."""
    for name, allowed in (wave.content or {}).items():
        vm = find_variable(src.meta.variables, name)
        if vm is None:
            continue
        values = first_values(src, vm.name, scanned)
        if values - content_wanted(allowed):
            rows = "" if src.meta.rows is not None and src.meta.rows <= CONTENT_SAMPLE else f" in its first {CONTENT_SAMPLE} rows"
            return (f"{vm.name} = {', '.join(sorted(values, key=natural_key))}{rows}, where the wave's is "
                    f"{', '.join(sorted(content_wanted(allowed), key=natural_key))}")
    return None



def sampled_values(src: SourceFile, column: str) -> set[str]:
    """The values of ``column`` in the file's first :data:`CONTENT_SAMPLE` rows, as text."""
    chunk = next(iter(src.chunks([column], CONTENT_SAMPLE)), None)
    return set() if chunk is None else content_values(chunk[column])



# A file holding a survey's wave variable with an undeclared value, but fewer than this share of the variables the
# survey's nearest wave reads, is another layout of the study (a trend file with its own names), not a new round
OTHER_LAYOUT = 0.5
Shared = Callable[[Path, Crosswalk], tuple[Wave, int, int] | None]  # the nearest wave, variables it reads the file holds, of


def unmatched_issues(files: list[tuple[Path, str]], crosswalks: list[Crosswalk], *,
                     error: bool, shared: Shared | None = None) -> list[Issue]:
    """One issue per file no wave recognises: what was looked for, and the options that assign it; ``shared``
    tells how much of a survey's nearest wave a file holds (a new round, or another layout of the study)."""
    if not files:
        return []
    looked = []
    patterns: dict[str, list[str]] = {}  # each survey's, in its waves' order
    cut = False
    for cw in crosswalks:
        values: dict[str, list[str]] = {}
        for w in cw.waves:
            for k, v in (w.content or {}).items():
                values.setdefault(k, []).extend(content_text(x) for x in (v if isinstance(v, list) else [v]))
        content = "; ".join(f"{k} in {', '.join(vs)}" for k, vs in values.items())
        pats = patterns[cw.survey] = list(dict.fromkeys(p for w in cw.waves for p in w.files))
        stems = list(dict.fromkeys(_EXTENSION.sub("", p) for p in pats))
        exts = list(dict.fromkeys(m.group(0) for p in pats if (m := _EXTENSION.search(p))))
        cut = cut or len(stems) > 4
        looked.append(f"{cw.survey}: " + (f"content {content}; " if content else "")
                      + f"file names {', '.join(stems[:4])}{' …' if len(stems) > 4 else ''}"
                      + (f" ({' '.join(exts)})" if exts else ""))
    hint = ("assign it with --survey S --wave W (and --country CC for a single-country file without a country "
            "variable, --city NAME for a one-city file without a city variable), or add a `content` or `files` "
            "entry for it to the survey's crosswalk")
    return [of_file(Issue(f"{f}: matches no crosswalk wave{f' (it {why})' if why else ''}; looked for "
                          + (" | ".join(looked) or "nothing: no crosswalk loaded")
                          + (" (--format json lists every file name pattern)" if cut else "")
                          + ("" if error else "; it is not harmonised"),
                          code="unmatched-file", severity="error" if error else "warning",
                          extra={"file_patterns": patterns},
                          hint=_new_wave_hint(f, why, crosswalks, shared) or hint), f.name, str(f)) for f, why in files]


_EXTENSION = re.compile(r"\.[A-Za-z]+$")


def _new_wave_hint(f: Path, why: str, crosswalks: list[Crosswalk], shared: Shared | None) -> str | None:
    """The fix for a file holding a survey's wave variable with a value no wave declares (``why``: "holds
    essround = 12"): a wave of that survey not declared yet, as a new round — not one to assign to another wave;
    unless the file holds few of the variables the survey's nearest wave reads (EVS's trend file ZA7503 holds
    `studyno` 7503 and the integrated names A001 …): another layout of the study, which a new wave entry would not
    serve."""
    held = [(cw, k) for cw in crosswalks for k in dict.fromkeys(k for w in cw.waves for k in (w.content or {}))
            if re.search(rf"(?:^holds |; ){re.escape(k)} = (?!nothing\b)", why, re.IGNORECASE)]
    if not held:
        return None
    said = []
    for cw, k in held:
        near = shared(f, cw) if shared is not None else None
        if near is not None and near[1] < OTHER_LAYOUT * near[2]:
            wave, has, of = near
            stems = list(dict.fromkeys(_EXTENSION.sub("", p) for w in cw.waves for p in w.files))
            holds = f"only {has} of the {of} variables the nearest {cw.survey} wave ({wave.wave}) reads" if has else \
                f"none of the variables the {cw.survey} waves read"
            said.append(f"it holds {cw.survey}'s {k} with a value no {cw.survey} wave declares, but {holds}: another "
                        "file of the study with its own variable names (a trend or cumulative file), not a new round "
                        "of the layouts the crosswalk maps — harmonise the wave files "
                        f"({', '.join(stems[:6])}{' …' if len(stems) > 6 else ''}) or write a crosswalk for its layout "
                        "(harmonise scaffold FILE)")
            continue
        said.append(f"it holds {cw.survey}'s {k} with a value no {cw.survey} wave declares: if it is a wave the "
                    f"{cw.survey} crosswalk does not cover yet (a new round), declare it there — a wave entry with "
                    f"`content: {{{k}: <its value>}}` (copy the nearest wave's entry), then `harmonise validate "
                    f"--data FILE`; do not assign it to another wave with --wave, which would store its rows as "
                    "that wave's")
    return "; ".join(said)
