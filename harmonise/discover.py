"""Which crosswalk wave each data file belongs to: by content, then by file name, or as the user says.

A wave's ``content`` (e.g. ``{essround: 9}``) recognises its files whatever their names: a file
whose every row holds one of the given values of each content variable belongs to it. Files no
content rule recognises are matched by the waves' ``files`` patterns (case-insensitive).
``--survey``/``--wave`` assign every file explicitly; ``--country`` and ``--city`` supply the country or
city of a one-country or one-city file that lacks the variable (:mod:`harmonise.supplied`). A file holding only key variables and items the
crosswalk does not read (a country-specific supplement) is skipped with a note.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from harmonise.checks.archives import READS, SHOWN, exported, is_archive, not_data, unextracted
from harmonise.checks.per_file import grouped, of_file
from harmonise.errors import InputError, Issue, UsageError, more
from harmonise.kept import keep
from harmonise.readers.files import (
    EXTENSIONS,
    SourceFile,
    open_sampled,
    open_source,
    undecodable_names,
)
from harmonise.readers.isolation import isolated_map
from harmonise.recognition import (
    BY_CONTENT,
    CONTENT_SAMPLE,
    Options,
    foreign_content,
    mixed_waves,
    name_content,
    name_overridden,
    observed_content,
    recognise,
    sampled_values,
    several_waves,
    unmatched_issues,
)
from harmonise.rounds import (
    Letters,
    content_values,
    empty_in_rows,
    natural_key,
    read_rounds,
    split_waves,
    without_variables,
)
from harmonise.samework import SameWork, assume_digest, kept_digest
from harmonise.spec.crosswalk import Crosswalk, Wave
from harmonise.spec.project import Project
from harmonise.spec.resolve import resolve_wave
from harmonise.spec.source import find_variable
from harmonise.store.cache import BuildCache
from harmonise.store.identity import hash_files
from harmonise.supplied import (
    CITY_TARGET,
    COUNTRY_TARGET,
    cities_said,
    country_apart,
    named,
    read_from_variable,
    supply,
    wave_cities,
)

SEVERAL_WAVES = "several_waves"  # an issue's extra: the file whose rows turned out several waves' (read by wave again)


@dataclass
class Job:
    """One data file to harmonise with one crosswalk wave; ``supplied``: target → value the user gave;
    ``source``: the file as discovery opened it with ``--encoding`` ``opened_with`` (its header is not
    read again when harmonising needs the same encoding)."""

    crosswalk: Crosswalk
    wave: Wave
    path: Path
    supplied: dict[str, str] = field(default_factory=dict)
    source: SourceFile | None = None
    opened_with: str | None = None
    sha256: str | None = None  # the file's digest, when discovery computed it (an incremental build)
    sampled: bool = False  # its wave's content variables were read from its first CONTENT_SAMPLE rows only
    content_seen: dict[str, set[str]] = field(default_factory=dict)  # assigned by --survey/--wave: its first rows'
    name: str = ""  # the name provenance gives it: its file name, or a path when another file has that name
    stood: tuple[str, ...] = ()  # the targets ``supplied`` stands for (their variables the file lacks)
    wave_rows: int | None = None  # a file of several waves' rows (a cumulative file): its rows of this wave, the
    # only rows this job harmonises (told by its wave's content values)
    letters: Letters | None = None  # a Stata file's letters, as discovery's pass over a cumulative file counted them

    @property
    def file_name(self) -> str:
        """The file as provenance names it (``respondents.source_file``, the ``file_name`` columns)."""
        return self.name or self.path.name


def data_files(data: list[Path], archives: list[Path] | None = None) -> list[Path]:
    """The data files named by ``data`` (files, and the readable files under folders, sorted); the archives
    under the folders are appended to ``archives`` (see :mod:`harmonise.checks.archives`)."""
    files: list[Path] = []
    broken: list[Path] = []
    absent = [f"{d}: no such file or folder" + (" (a link to a file that is gone)" if d.is_symlink() else "")
              for d in data if not d.exists()]
    if absent:  # every one named, not the first only
        raise InputError("\n".join(absent))
    for d in data:
        if d.is_file():
            files.append(d)
            continue
        for p in _under(d):
            if _mac_metadata(p, d):
                continue
            if not p.is_file():
                if p.is_symlink() and not p.exists() and p.suffix.lower() in EXTENSIONS:
                    broken.append(p)
                continue
            if p.suffix.lower() in EXTENSIONS:
                files.append(p)
            elif archives is not None and is_archive(p):
                archives.append(p)
    if broken:
        raise InputError(f"{len(broken)} data file(s) are links to files that are gone: "
                         f"{', '.join(map(str, broken[:10]))}{' …' if len(broken) > 10 else ''} — restore the files "
                         "they point to, or remove the links")
    seen: set[Path] = set()
    unique = []
    for f in files:  # a file named twice (a folder and a file in it): read once
        if (real := f.resolve()) not in seen:
            seen.add(real)
            unique.append(f)
    files = unique
    unreadable = [why for f in files if (why := not_data(f)) is not None]  # only files named on the command line
    if unreadable:
        raise InputError("\n".join(unreadable))
    undecodable = undecodable_names(files)
    if undecodable is not None:
        raise undecodable
    return files


def _exports_said(data: list[Path]) -> str:
    """What the ``data`` folders hold that harmonise does not read but a user may have meant (CSV, Excel, R, SAS
    exports of the survey), said when no file of theirs can be harmonised ('' when they hold none)."""
    found = [p for d in data if d.is_dir() for p in _under(d) if p.is_file() and exported(p) is not None]
    if not found:
        return ""
    named = ", ".join(f"{p.name} ({exported(p)})" for p in found[:SHOWN]) + (" …" if len(found) > SHOWN else "")
    return (f"; it holds {len(found)} file(s) of formats harmonise does not read: {named} — {READS}, whose value "
            "labels and missing-value declarations the crosswalks rely on: download or export the survey's SPSS or "
            "Stata edition")


def _under(top: Path) -> list[Path]:
    """Every path under the folder ``top``, sorted, through linked folders too (a country's folder linked into
    the data folder was silently left out: ``Path.rglob`` does not follow links); a link back to a folder
    already walked (a loop) is not walked again."""
    out: list[Path] = []
    walked: set[str] = set()
    for folder, dirs, names in os.walk(top, followlinks=True):
        real = os.path.realpath(folder)
        if real in walked:
            dirs[:] = []
            continue
        walked.add(real)
        out.extend(Path(folder) / n for n in (*dirs, *names))
    return sorted(out)


def _mac_metadata(path: Path, top: Path) -> bool:
    """A macOS companion file, never data: AppleDouble ``._NAME`` files and the ``__MACOSX`` folder a Mac's
    ZIP archives unpack (they hold a file's resource fork under its name)."""
    return path.name.startswith("._") or "__MACOSX" in path.relative_to(top).parts


def discover(project: Project, data: list[Path], options: Options | None = None,
             cache: BuildCache | None = None, others: Sequence[tuple[Crosswalk, str]] = ()
             ) -> tuple[list[Job], list[Issue]]:
    """Assign every data file to a crosswalk wave; issues for files that are ambiguous, skipped or unmatched.

    ``others``: the project's crosswalks not loaded in ``project`` (validating named crosswalks), with their
    files: a file they would recognise otherwise in a build (by content) is a ``name-content`` warning.

    Raises UsageError for options naming no survey, wave or country, and InputError when no file
    can be harmonised or a file lacks a required variable no option supplies. With a ``cache`` that
    describes a previous build, every file is hashed first and one whose bytes it knows is not read
    again; what is read is kept in it for the next build.
    """
    opts = options or Options()
    crosswalks = _chosen(project, opts)
    country = opts.country.upper() if opts.country else None
    jobs: list[Job] = []
    issues: list[Issue] = []
    unmatched: list[tuple[Path, str]] = []
    headers: dict[Path, SourceFile] = {}  # the unmatched files' headers (how much of a wave's layout they hold)
    no_country: list[tuple[Path, bool]] = []  # and whether --city would supply it
    unreadable: list[tuple[Path, InputError]] = []  # files no reader can open (with the default encoding)
    archives: list[Path] = []
    files = data_files(data, archives)
    archived = unextracted(archives, files)
    same = SameWork()  # one wave's country files share their metadata: resolved once
    others = [] if opts.survey else [(cw, file) for cw, file in others if cw.survey not in project.crosswalks]
    files_of = {**{cw.survey: file for cw, file in others},
                **{s: e.file for s, e in project.surveys.items()}}
    # read with --survey/--wave too: a file of several waves is not harmonised as one
    content = sorted({n for cw in [*crosswalks, *(c for c, _ in others)] for w in cw.waves for n in (w.content or {})})
    shas: list[str | None] = [None] * len(files)
    if cache is not None and cache.previous is not None:
        shas = list(cache.hashes(files, min(SCAN_READERS, os.cpu_count() or 1)))
    elif cache is None and _REMEMBERED is not None:
        shas = list(hash_files(files, min(SCAN_READERS, os.cpu_count() or 1)))
    cached = [cache.scan(sha, opts.encoding, content, f) if cache is not None and sha else None
              for f, sha in zip(files, shas)]
    by_wave = cache.several_waves() if cache is not None else set()  # the previous build read them wave by wave
    whole = opts.whole | {f for f, sha in zip(files, shas) if sha and sha in by_wave}
    # by name too: the same bytes under another extension are another finding (a SAV file named .dta)
    memo = {i: (sha, opts.encoding, tuple(content), files[i].name) for i, sha in enumerate(shas) if cache is None and sha}
    read = {i: _recall(memo[i], files[i]) for i in memo if _REMEMBERED is not None and memo[i] in _REMEMBERED}
    todo = [i for i, c in enumerate(cached) if c is None and i not in read]
    read.update(zip(todo, isolated_map(partial(_scan, encoding=opts.encoding, names=content),
                                       [files[i] for i in todo], min(SCAN_READERS, os.cpu_count() or 1))))
    for i in todo:
        if i in memo and isinstance(read[i], tuple) and read[i][0] is not None:
            _remember(memo[i], read[i])
    for i, (f, sha) in enumerate(zip(files, shas)):
        hit, scan = cached[i], read.get(i)
        src: SourceFile | None
        if hit is not None:
            src, seen = hit.source, dict[str, set[str] | InputError](hit.seen)
            assume_digest(src.meta, hit.variables)  # not pickled again to be told apart
        elif isinstance(scan, tuple):
            src, seen = scan
            if cache is not None and src is not None and not any(isinstance(v, InputError) for v in seen.values()):
                cache.note_scan(f, opts.encoding, content, src, seen, sha,  # type: ignore[arg-type]
                                kept_digest(src.meta))
        else:
            # a file whose reader died or failed is opened once more the ordinary way before it is called
            # unreadable (a reader forked from a reader child can crash on a sound file: readers.isolation.isolated)
            opened = _open(f, opts.encoding)
            src, seen = (opened if isinstance(opened, SourceFile) else None), {}
            if isinstance(opened, InputError):
                unreadable.append((f, opened))
        forced = bool(opts.survey and opts.wave)  # "whatever their content"
        if src is not None and not forced and (f in whole or several_waves(src, crosswalks, seen)):
            supplied = {COUNTRY_TARGET: country} if country else {}
            first = read_rounds(src, crosswalks, project, same, supplied)  # one pass: rows per round, empty variables
            split = split_waves(f, src, crosswalks, first[:2] if first is not None else None)
            if isinstance(split, Issue):
                issues.append(split)
                continue
            if split is not None:
                issues.append(split[1])
                empty = empty_in_rows(src, split[0], project, same, supplied,
                                       {first[0]: first[2]} if first is not None else None) \
                    if project.schema is not None else {}
                for cw, wave, rows in split[0]:
                    job = Job(cw, wave, f, dict(supplied), without_variables(src, empty.get(wave.wave, set())), opts.encoding,
                              sha, True, wave_rows=rows, letters=first[3] if first is not None else None)
                    if _fit(job, f, project, same, issues, no_country, opts):
                        jobs.append(job)
                continue
        hits, why = recognise(f, src, crosswalks, opts, seen)
        if len(hits) > 1:
            names = ", ".join(f"{cw.survey} wave {w.wave}" for cw, w in hits)
            issues.append(Issue(f"{f}: {why} several waves ({names})", code="ambiguous-file",
                                hint="name the wave with --survey and --wave, or make the waves' `content` or "
                                     "`files` more specific"))
            continue
        if not hits:
            several = several_waves(src, crosswalks, seen) if src is not None else None
            if several:  # a cumulative file: its rows are several waves', none of which it matches whole
                issues.append(mixed_waves(f, f"it holds {several}", cw=None))
                continue
            unmatched.append((f, why))
            if src is not None:
                headers[f] = src
            continue
        cw, wave = hits[0]
        observed = observed_content(src, cw, seen) if forced and src is not None else {}
        if forced and any(len(v) > 1 for v in observed.values()):  # whatever wave is given, not one wave's rows
            issues.append(mixed_waves(f, "it holds " + "; ".join(f"{n} = {', '.join(sorted(v, key=natural_key))}" for n, v
                                                             in observed.items() if len(v) > 1), cw=cw.survey))
            continue
        if not forced:
            issues.extend(name_content(f, src, (cw, wave), why, crosswalks, others, files_of, seen))
        foreign = None if why == BY_CONTENT or src is None else foreign_content(src, wave, seen)
        if forced and foreign:
            issues.append(Issue(f"{f}: assigned to {cw.survey} wave {wave.wave} by --survey/--wave, but {foreign}: "
                                "it is harmonised as the wave given", code="content-overridden", severity="warning",
                                survey=cw.survey, wave=wave.wave,
                                hint="check the wave given; drop --survey/--wave to recognise the file by its content"))
            foreign = None
        elif forced and src is not None and (by_name := name_overridden(f, cw, wave)) is not None:
            issues.append(by_name)
        if foreign:
            issues.append(Issue(f"{f}: its name matches {cw.survey} wave {wave.wave}, but {foreign}: the file holds "
                                "rows of another wave (or damaged values)", code="mixed-waves", survey=cw.survey,
                                wave=wave.wave,
                                hint="split a file that holds several waves into one file per wave; if the values "
                                     "are wrong and the file is this wave, name it with --survey and --wave"))
            continue
        # a file with the wave's content variables has every row checked against them (the first rows were); one
        # assigned by --survey/--wave against the values of its first rows (one wave's, whichever)
        sampled = (src is not None and (src.meta.rows is None or src.meta.rows > CONTENT_SAMPLE)
                   and any(find_variable(src.meta.variables, n) is not None for n in wave.content or {}))
        job = Job(cw, wave, f, {COUNTRY_TARGET: country} if country else {}, src, opts.encoding, sha, sampled,
                  content_seen={n: v for n, v in observed.items() if v})
        if _fit(job, f, project, same, issues, no_country, opts):
            jobs.append(job)
    if unreadable:
        _unreadable(unreadable, jobs, opts.encoding)
    if no_country:
        raise InputError("; ".join(f"{f}: has no country variable" for f in dict.fromkeys(f for f, _ in no_country))
                         + " — pass --country CC (ISO 3166-1 alpha-2) for a single-country file"
                         + (" (or --city NAME for a one-city file of a survey whose country is read from its city)"
                            if any(by_city for _, by_city in no_country) else ""))
    issues.extend(supplied_to_several(jobs, opts))
    found = unmatched_issues(unmatched, crosswalks, error=not jobs,
                             shared=lambda f, cw: _nearest(headers[f], cw, project, same) if f in headers else None)
    if not jobs and found:
        said = grouped(found, len(found))  # files unmatched alike: one line naming them
        raise InputError("\n".join(i.message for i in said) + f"\n{said[0].hint}")
    issues.extend(found)
    if not jobs and not any(i.severity == "error" for i in issues):
        raise InputError(f"no data file in {', '.join(map(str, data))} can be harmonised"
                         + (" (only supplements)" if issues else "")
                         + "".join(f"; {i.message}; {i.hint}" for i in archived) + _exports_said(data))
    _names_apart(jobs)
    return jobs, issues + archived


def _fit(job: Job, f: Path, project: Project, same: SameWork, issues: list[Issue],
         no_country: list[tuple[Path, bool]], opts: Options) -> bool:
    """Whether ``job`` is harmonised: not when its file is a supplement or a sample-design file of its wave, or
    when ``--country``/``--city`` cannot stand for its rows (said in ``issues``); a file lacking a country
    variable no option supplies is added to ``no_country``. The file gets the variables the options supply."""
    cw, wave, src = job.crosswalk, job.wave, job.source
    if src is None or project.schema is None:
        return True
    country = opts.country.upper() if opts.country else None
    if opts.city and not _city_fits(job, f, project, same, issues, opts.city):
        return False
    apart = country_apart(job.supplied, cw, wave, project, src) if CITY_TARGET not in job.supplied else None
    if apart is not None:
        issues.append(of_file(Issue(f"{f}: --country {country} stands for {apart}: the file's rows cannot be told "
                                    "apart by the country alone", code="country-ambiguous", survey=cw.survey,
                                    wave=wave.wave,
                                    hint="give the file's city with --city NAME (a one-city file), or the file the "
                                         "variable itself, so that its rows are stored as the city they are"),
                              f.name, str(f)))
        return False
    job.stood = tuple(supply(job.supplied, cw, wave, project, src))
    plan = same.resolve(cw, wave, project, src.meta, job.supplied)
    if _supplement(cw, wave, plan.sources(), src):
        design = _design_variables(cw, src)
        if design:
            issues.append(of_file(Issue(
                f"{f}: a sample-design file of {cw.survey} wave {wave.wave} (it holds {', '.join(design)} and "
                "no item the crosswalk reads); not read as data, so its design is not attached",
                code="design-file-skipped", severity="warning", survey=cw.survey, wave=wave.wave,
                hint=f"give it with --design {f} (and keep it out of --data) to attach its "
                     f"{', '.join(sorted(cw.design or {}))} to the respondents"), f.name, str(f)))
            return False
        issues.append(of_file(Issue(f"{f}: holds only key variables and items the crosswalk does not read "
                                    f"(a supplement to the {cw.survey} wave {wave.wave} files); skipped",
                                    code="supplement-skipped", severity="note", survey=cw.survey, wave=wave.wave),
                              f.name, str(f)))
        return False
    country_plan = plan.targets.get(COUNTRY_TARGET)
    if country_plan is not None and country_plan.kind == "absent":
        city_plan = plan.targets.get(CITY_TARGET)  # LOCALMULTIDEM's country is read from its city
        no_country.append((f, bool(country_plan.source) and city_plan is not None
                           and city_plan.source == country_plan.source))
    elif country and read_from_variable(country_plan) and \
            (own := find_variable(src.meta.variables, country_plan.source or "")) is not None and \
            own.name not in src.virtual:
        issues.append(_unused(job, f, "country", own.name, f"--country {country}", code="country-unused",
                              severity="warning"))
    return True


def _unused(job: Job, f: Path, what: str, own: str, given: str, **kind: Any) -> Issue:
    """The warning that an option supplying ``what`` (``given``: the option and its value) is not used for ``f``,
    which has its own variable ``own`` (``kind``: the issue's code and severity, written at the call)."""
    return of_file(Issue(f"{f}: has its own {what} variable ({own}), whose values are used: {given} is not",
                         survey=job.crosswalk.survey, wave=job.wave.wave,
                         hint=f"--{what} is for files without a {what} variable; drop it for this file", **kind),
                   f.name, str(f))


def supplied_to_several(jobs: list[Job], opts: Options) -> list[Issue]:
    """A warning per option (``--country``, ``--city``) that stands for the variable of several files: each is
    stored as the value given, which is right only if they are all that country's or city's files (three
    countries' files without `cntry` given ``--country FI`` were all stored as Finland)."""
    out = []
    for target, given in ((COUNTRY_TARGET, opts.country), (CITY_TARGET, opts.city)):
        stood = list(dict.fromkeys(j.file_name for j in jobs if target in j.stood))
        if len(stood) > 1:
            out.append(Issue(f"--{target} {given} stands for the {target} variable of {len(stood)} files "
                             f"({', '.join(stood[:5])}{more(len(stood) - 5)}): the rows of each are stored as "
                             f"{given}'s", code="supplied-to-several", severity="warning",
                             extra={"data_files": stood},
                             hint=f"check that they are all {given}'s files; give another {target}'s files in a run "
                                  f"of their own, with its --{target}"))
    return out


def _nearest(src: SourceFile, cw: Crosswalk, project: Project, same: SameWork) -> tuple[Wave, int, int] | None:
    """The wave of ``cw`` whose rules read most of ``src``'s variables: (wave, how many of the variables it reads
    the file holds, how many it reads); None without a schema."""
    if project.schema is None:
        return None
    schema = project.schema
    best: tuple[Wave, int, int] | None = None
    for wave in cw.waves:
        reads = same.keyed(("reads", cw.survey, wave.wave),
                           partial(lambda w: resolve_wave(cw, w, schema, project.tables).sources(), wave))
        has = sum(1 for name in reads if find_variable(src.meta.variables, name) is not None)
        if reads and (best is None or has / len(reads) > best[1] / best[2]):
            best = (wave, has, len(reads))
    return best


def _city_fits(job: Job, f: Path, project: Project, same: SameWork, issues: list[Issue], text: str) -> bool:
    """Whether ``--city text`` fits ``job``'s file: the city of one of its wave's cities (``job.supplied`` gets
    it) for a file without the city variable; unused, and said so, for a file with its own or a wave whose city
    is not read from a variable; not a city the wave sampled: an error, and the file is not harmonised."""
    cw, wave, src = job.crosswalk, job.wave, job.source
    assert src is not None
    known = same.keyed(("cities", cw.survey, wave.wave), lambda: wave_cities(cw, wave, project))
    if known is None:
        issues.append(of_file(Issue(f"{f}: the city of {cw.survey} wave {wave.wave} is not read from a variable of its "
                                    f"files: --city {text} is not used", code="city-unused", severity="warning",
                                    survey=cw.survey, wave=wave.wave,
                                    hint="--city is for one-city files of a city survey released without the city "
                                         "variable; drop it for this file"), f.name, str(f)))
        return True
    own = find_variable(src.meta.variables, known.variable)
    if own is not None and own.name not in src.virtual:
        issues.append(_unused(job, f, "city", own.name, f"--city {text}", code="city-unused", severity="warning"))
        return True
    city = named(text, known.cities)
    if city is None:
        issues.append(of_file(Issue(f"{f}: --city {text} is none of the cities {cw.survey} wave {wave.wave} sampled "
                                    f"({cities_said(known.cities)})", code="city-unsampled", survey=cw.survey,
                                    wave=wave.wave,
                                    hint="give the file's city by its name or by the code the wave's files hold for "
                                         "it (e.g. --city " + known.cities[0].names[1] + "), or leave this file out"
                                    if known.cities else "leave this file out"), f.name, str(f)))
        return False
    job.supplied[CITY_TARGET] = city.code
    return True


def _unreadable(failed: list[tuple[Path, InputError]], jobs: list[Job], encoding: str | None) -> None:
    """Raise one InputError naming every file of ``failed`` that cannot be read, and why (each file's own
    message: empty, truncated, not SPSS or Stata, ...), whether or not a wave's name pattern matched it: a
    file that no wave matches is not passed over with an 'unmatched' warning when what is wrong with it is
    that it cannot be read. A matched file is tried again with its wave's encoding (which the scan did
    not use); one that opens then is left to be harmonised."""
    wave_of = {j.path: j.wave for j in jobs}
    why = []
    for f, exc in failed:
        wave = wave_of.get(f)
        if wave is not None and wave.encoding and not encoding:
            again = _open(f, wave.encoding)
            if isinstance(again, SourceFile):
                continue
            exc = again
        why.append(str(exc))
    if why:
        raise InputError("\n".join(why) + (f"\n{len(why)} data file(s) cannot be read; replace them or leave them "
                                           "out of --data" if len(why) > 1 else ""))


def _names_apart(jobs: list[Job]) -> None:
    """Files of the same name in different folders (data portals name every subset alike) are named in
    provenance by their path from the folder their paths share (`FI/ESS9-subset.sav`): by their file name,
    their rows and reports were one file's, and a rebuild kept or dropped them together."""
    by_name: dict[str, list[Job]] = {}
    for job in jobs:
        by_name.setdefault(job.path.name, []).append(job)
    for same in by_name.values():
        paths = {j.path.resolve() for j in same}
        if len(paths) > 1:
            top = Path(os.path.commonpath([p.parent for p in paths]))
            for j in same:
                j.name = j.path.resolve().relative_to(top).as_posix()


def _chosen(project: Project, opts: Options) -> list[Crosswalk]:
    if opts.wave and not opts.survey:
        raise UsageError("--wave needs --survey (the survey whose wave it is)")
    if opts.country is not None and opts.country.upper() not in (project.tables.country_codes or {opts.country.upper()}):
        raise UsageError(f"--country {opts.country}: not a country code of mappings/tables (ISO 3166-1 alpha-2, "
                         "e.g. FI)")
    if not opts.survey:
        chosen = list(project.crosswalks.values())
    else:
        cw = project.crosswalks.get(opts.survey)
        if cw is None:
            raise UsageError(f"--survey {opts.survey}: no such survey (crosswalks: {', '.join(sorted(project.crosswalks))})")
        if opts.wave and not any(w.wave == opts.wave for w in cw.waves):
            raise UsageError(f"--wave {opts.wave}: {cw.survey} has no such wave "
                             f"(waves: {', '.join(w.wave for w in cw.waves)})")
        chosen = [cw]
    if opts.city is not None:
        _city_named(project, chosen, opts)
    return chosen


def _city_named(project: Project, chosen: list[Crosswalk], opts: Options) -> None:
    """Refuse ``--city`` naming no city of the chosen crosswalks' waves, or a city of another country than
    ``--country`` (a slip in either: no file could be harmonised as said)."""
    assert opts.city is not None
    waves = [(cw, w, known) for cw in chosen for w in cw.waves if (not opts.wave or w.wave == opts.wave)
             and (known := wave_cities(cw, w, project)) is not None]
    found = [(cw, w, city) for cw, w, known in waves if (city := named(opts.city, known.cities)) is not None]
    if not found:
        every = {c.code: c for _, _, known in waves for c in known.cities}
        raise UsageError(f"--city {opts.city}: no city of that name or code in "
                         + (f"the city rules of {', '.join(sorted({cw.survey for cw, _, _ in waves}))} (cities: "
                            f"{cities_said(list(every.values()), 40)})" if waves else
                            "the chosen crosswalks, whose city is not read from a variable of their files")
                         + " — give a city by its name or by the code its survey's files hold")
    country = opts.country.upper() if opts.country else None
    if country and all(city.country not in (None, country) for _, _, city in found):
        city = found[0][2]
        raise UsageError(f"--city {opts.city}: {city.names[1]} is a city of {city.country}, not of --country "
                         f"{opts.country} — give one of them, or both of one country")


SCAN_READERS = 2  # forked children reading the files' headers and content values during discovery


def _open(path: Path, encoding: str | None) -> SourceFile | InputError:
    """The file's metadata, or the error saying why it cannot be read."""
    try:
        return open_source(path, encoding)
    except InputError as exc:
        return exc


# What discovery read of each file, by its bytes, kept by a long-lived process (the validation server)
# that calls remember_scans(): validating the same files again after an edit reads no header again.
_REMEMBERED: dict[tuple[str, str | None, tuple[str, ...], str], bytes] | None = None
_REMEMBERED_MAX = 512


def remember_scans() -> None:
    """Keep what discovery reads of each file (by its sha256) for the rest of this process."""
    global _REMEMBERED
    if _REMEMBERED is None:
        _REMEMBERED = {}


def _remember(key: tuple[str, str | None, tuple[str, ...], str], scan: tuple[SourceFile, dict[str, Any]]) -> None:
    assert _REMEMBERED is not None
    keep(_REMEMBERED, key, pickle.dumps(scan, protocol=5), _REMEMBERED_MAX)  # a copy: a job may change its SourceFile


def _recall(key: tuple[str, str | None, tuple[str, ...], str], path: Path) -> tuple[SourceFile, dict[str, Any]]:
    assert _REMEMBERED is not None
    src, seen = pickle.loads(_REMEMBERED[key])  # written by _remember above, in this process
    return dataclasses.replace(src, path=path), seen


def _scan(path: Path, encoding: str | None, names: list[str]) -> tuple[SourceFile | None, dict[str, set[str] | InputError]]:
    """In a reader child (:func:`isolated_map`): the file's metadata and the distinct values of the content
    variables ``names`` it holds (or the error reading them); the InputError of a file that cannot be read is
    :func:`isolated_map`'s answer in its place."""
    src, sample = open_sampled(path, encoding, CONTENT_SAMPLE if names else 0)  # an InputError is returned in its place
    kept_digest(src.meta)  # here, beside the other readers, not in the process that waits for them all
    seen: dict[str, set[str] | InputError] = {}
    for name in names:
        vm = find_variable(src.meta.variables, name)
        if vm is not None and vm.name not in seen:
            try:
                seen[vm.name] = sampled_values(src, vm.name) if sample is None else \
                    content_values(sample.frame(src, [vm.name])[vm.name])
            except InputError as exc:
                seen[vm.name] = exc
    return src, seen


def _design_variables(cw: Crosswalk, src: SourceFile) -> list[str]:
    """The variables of the crosswalk's ``design`` expressions (besides its respondent key) that ``src`` holds,
    when it holds them all: a sample-design file (ESS SDDF: psu, stratum), else nothing."""
    from harmonise.spec.expr import ExprError, referenced_names

    names: list[str] = []
    for expr in (cw.design or {}).values():
        try:
            names += referenced_names(expr)
        except ExprError:
            return []
    wanted = [n for n in dict.fromkeys(names) if n not in (cw.respondent_key or [])]
    return wanted if wanted and all(find_variable(src.meta.variables, n) is not None for n in wanted) else []


def _supplement(cw: Crosswalk, wave: Wave, read: list[str], src: SourceFile) -> bool:
    """True when the file gives the crosswalk nothing but keys (a supplement to the wave's main files)."""
    keys = {n.lower() for n in [*(cw.respondent_key or []), *(wave.content or {})]}
    present = {vm.name.lower() for n in read if (vm := find_variable(src.meta.variables, n)) is not None}
    return bool(present) and present <= keys and len(src.meta.variables) > len(present)
