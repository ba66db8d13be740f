"""Every check harmonise runs, static and on data; each returns :class:`~harmonise.errors.Issue` records.

- :mod:`~harmonise.checks.rules` — the shape of each rule in each wave (one kind, the keys it needs);
- :mod:`~harmonise.checks.crosswalk` — a crosswalk against the schema, code tables and source metadata;
- :mod:`~harmonise.checks.expressions`, :mod:`~harmonise.checks.derivations` — expressions and derivations;
- :mod:`~harmonise.checks.values` — what a valid value of each variable type is (one table);
- :mod:`~harmonise.checks.drift` — a file against its declared codebook;
- :mod:`~harmonise.checks.labels` — a file's value labels against the code tables its codes map through;
- :mod:`~harmonise.checks.renames` — variables a file holds under another name than the crosswalk reads;
- :mod:`~harmonise.checks.inputs`, :mod:`~harmonise.checks.accounting` — a wave's harmonised data;
- :mod:`~harmonise.checks.archives` — files under ``--data`` that are not SPSS or Stata files (archives, exports);
- :mod:`~harmonise.checks.frame` — the pandera schema of harmonised rows (loads pandera: import it
  from there, or through this package's lazy attributes).
"""

from __future__ import annotations

import copy
import hashlib
import pickle
from typing import TYPE_CHECKING, Any

from harmonise.checks import accounting, archives, drift, inputs, labels, renames
from harmonise.checks.crosswalk import check_crosswalk, check_target, dedupe, header_issues, wave_issues
from harmonise.checks.derivations import consistency_issues, derivation_issues
from harmonise.checks.expressions import (
    compared_codes,
    derived_code_issues,
    derived_problem,
    expr_problem,
    expr_type,
    named_arguments,
)
from harmonise.checks.rules import rule_issues, shape_issues
from harmonise.checks.values import ValueRule, value_ok, value_rules
from harmonise.errors import Issue
from harmonise.kept import keep
from harmonise.spec.project import Project, without_set_aside
from harmonise.spec.yamlload import locate

if TYPE_CHECKING:
    from harmonise.checks.frame import pandera_schema, validate_frame, validate_profile

__all__ = ["ValueRule", "accounting", "archives", "check_crosswalk", "check_target", "compared_codes",
           "consistency_issues", "declaration_issues", "derivation_issues", "derived_code_issues", "derived_problem",
           "drift", "expr_problem", "expr_type", "inputs", "labels", "named_arguments", "pandera_schema", "renames",
           "rule_issues", "shape_issues", "static_issues", "validate_frame", "validate_profile", "value_ok",
           "value_rules"]

_LAZY = {"pandera_schema", "validate_frame", "validate_profile"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:  # pandera and pandas load only when data is validated
        from harmonise.checks import frame

        return getattr(frame, name)
    raise AttributeError(name)


def declaration_issues(project: Project) -> list[Issue]:
    """What keeps a project from being built, with no source file: its loading issues and the schema's
    derivations (reported once, at schema.yaml)."""
    issues = list(project.issues)
    if project.schema is not None and project.schema_index is not None:
        issues.extend(derivation_issues(project.schema, project.schema_index, project.tables))
        issues.extend(consistency_issues(project.schema, project.schema_index, project.tables))
    return issues


def static_issues(project: Project) -> list[Issue]:
    """Every static issue: the declarations, and each crosswalk against its waves' declared codebooks."""
    project.codebooks.load_all()
    issues = declaration_issues(project)
    if project.schema is None:
        return issues
    shared = _shared_digest(project)
    for survey, entry in project.surveys.items():
        context = _context_key(project, survey, shared)
        key = hashlib.sha256(f"{context}\0{entry.text}".encode()).hexdigest()
        found = _CHECKED.get(key)
        if found is None:
            found = keep(_CHECKED, key, _checked(project, survey, context), _CHECKED_MAX)
        issues.extend(copy.copy(i) for i in without_set_aside(found, entry.set_aside))
    return issues


def _checked(project: Project, survey: str, context: str) -> list[Issue]:
    """:func:`check_crosswalk` of a survey against its declared codebooks, each wave's issues kept by what
    they follow from (an edit to one wave, or to a comment, checks that wave, or none, again)."""
    assert project.schema is not None
    entry = project.surveys[survey]
    cw = entry.crosswalk
    context += hashlib.sha256(pickle.dumps(cw.model_dump(exclude={"waves"}), protocol=5)).hexdigest()
    issues = header_issues(cw, project.schema, entry.index)
    for position, wave in enumerate(cw.waves):
        if position in entry.waves_aside:  # a malformed wave's stand-in (its errors are the loader's)
            continue
        key = hashlib.sha256(f"{context}\0{position}\0".encode() +
                             pickle.dumps(wave.model_dump(), protocol=5)).hexdigest()
        found = _WAVES.get(key)
        if found is None:
            found = keep(_WAVES, key, wave_issues(cw, wave, project.schema, project.tables,
                                                  project.declared_meta(survey, wave.wave)), _CHECKED_MAX)
        issues.extend(locate(i, entry.index, cw.survey, wave.wave) for i in found)
    return dedupe(issues)


# A crosswalk's static issues by the digest of everything they follow from (its text and its context:
# the other declarations but the other crosswalks, its declared codebooks and descriptor): a process
# that validates again (the validation server, a test session) checks again only what was edited.
_CHECKED: dict[str, list[Issue]] = {}
_CHECKED_MAX = 64
# One wave's issues (not located: an edit above it moves their lines) by the digest of the context, the
# crosswalk's model but its other waves, the wave's position and entry.
_WAVES: dict[str, list[Issue]] = {}


def _shared_digest(project: Project) -> str:
    """Digest of the project's declaration files other than crosswalks (schema, code tables, cities,
    aliases, indicators). Not of its folder: issues name files relative to it, so a copy of a project
    (as the tests make) shares the issues of its unchanged crosswalks."""
    crosswalks = {(project.root / e.file).resolve() for e in project.surveys.values()}
    h = hashlib.sha256()
    for path in sorted((project.root / "mappings").rglob("*.yaml")):
        if path.resolve() not in crosswalks:
            h.update(f"\0{path.relative_to(project.root)}\0".encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def _context_key(project: Project, survey: str, shared: str) -> str:
    """Digest of what a crosswalk's static issues follow from besides its own text: the other
    declarations (``shared``), its name, and its survey's descriptor and declared codebooks."""
    entry = project.surveys[survey]
    h = hashlib.sha256(f"{shared}\0{survey}\0{entry.file}\0".encode())
    folder = project.root / "surveys" / survey
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        if path.is_file():
            h.update(f"\0{path.relative_to(project.root)}\0".encode())
            h.update(path.read_bytes())
    for rel_path in sorted(entry.codebook_files.values()):  # declared codebooks kept elsewhere
        path = project.root / rel_path
        if path.is_file() and folder not in path.parents:
            h.update(f"\0{rel_path}\0".encode())
            h.update(path.read_bytes())
    return h.hexdigest()
