"""Work that depends only on a file's metadata, done once per distinct metadata within a run.

The country files of a survey wave (ESS9FI.sav, ESS9NO.sav, …) usually carry the same variables,
labels and missing codes. Resolving the wave against such a file, compiling its SQL and checking
the crosswalk against it then give the same answer for each of them: :class:`SameWork` keys the
answers by a digest of the metadata (everything but the file's path, row count and header, which
these steps do not read) and hands out the first one again. An answer that names its file — a row
id made of the file name, a message naming the file — is never handed to another file.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import TypeVar

from harmonise.compile.sql import CompiledWave, plan_and_compile
from harmonise.spec.crosswalk import Crosswalk, Wave
from harmonise.spec.project import Project
from harmonise.spec.resolve import WavePlan, resolve_wave
from harmonise.spec.source import SourceMeta

T = TypeVar("T")


def meta_digest(meta: SourceMeta) -> str:
    """A digest of what resolving, compiling and the crosswalk checks read of ``meta``: its variables
    (names, types, labels, missing codes, in file order), format and encoding. Equal digests mean
    equal metadata (a pickle is a faithful serialisation; equal metadata may still differ in digest,
    which only costs a repeat)."""
    return hashlib.blake2b(pickle.dumps((meta.variables, meta.format, meta.encoding), protocol=5),
                           digest_size=16).hexdigest()


_DIGEST = "__meta_digest"  # where a metadata object keeps its digest (not a field: equality and replace() ignore it)


def kept_digest(meta: SourceMeta) -> str:
    """:func:`meta_digest`, computed once per metadata object (and again if its variables change), kept on the
    object: discovery's reader children compute it beside the header read, and harmonising's steps, the
    build cache and a worker the object is sent to share it."""
    known = vars(meta).get(_DIGEST)
    if known is not None and known[0] == len(meta.variables):
        return str(known[1])
    value = meta_digest(meta)
    vars(meta)[_DIGEST] = (len(meta.variables), value)
    return value


def assume_digest(meta: SourceMeta, variables_digest: str) -> None:
    """Give ``meta`` a digest made of a digest of its variables another way (the build cache's digest of
    their exact JSON), its format and encoding, instead of pickling them again. Another kind of digest than
    :func:`meta_digest`'s, so equal metadata read afresh and from the cache only share no answers."""
    value = hashlib.blake2b(repr(("variables-json", variables_digest, meta.format, meta.encoding)).encode(),
                            digest_size=16).hexdigest()
    vars(meta)[_DIGEST] = (len(meta.variables), value)


class SameWork:
    """Answers of metadata-only steps, shared by the files of one run whose metadata are the same."""

    def __init__(self) -> None:
        self._answers: dict[Hashable, object] = {}

    def once(self, what: str, meta: SourceMeta, key: Hashable, compute: Callable[[], T],
             names_file: Callable[[T], bool] = lambda _: False) -> T:
        """``compute()``'s answer for ``meta`` and ``key``, reused for every later file with the same
        metadata and key unless ``names_file(answer)`` says it names its file."""
        full = (what, kept_digest(meta), key)
        if full in self._answers:
            return self._answers[full]  # type: ignore[return-value]
        answer = compute()
        if not names_file(answer):
            self._answers[full] = answer
        return answer

    def keyed(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``'s answer for ``key`` (a step that reads no metadata), computed once."""
        full = ("keyed", key)
        if full not in self._answers:
            self._answers[full] = compute()
        return self._answers[full]  # type: ignore[return-value]

    def declared(self, project: Project, survey: str, wave: str) -> SourceMeta | None:
        """The wave's declared codebook as metadata (``Project.declared_meta``), built once."""
        return self.keyed(("declared", survey, wave), lambda: project.declared_meta(survey, wave))

    def resolve(self, cw: Crosswalk, wave: Wave, project: Project, meta: SourceMeta,
                supplied: Mapping[str, str] | None = None) -> WavePlan:
        """``resolve_wave`` of ``wave`` against ``meta`` (it reads only the variables)."""
        assert project.schema is not None
        schema = project.schema
        return self.once("resolve", meta, (cw.survey, wave.wave, _items(supplied)),
                         lambda: resolve_wave(cw, wave, schema, project.tables, meta.variables, supplied))

    def compile(self, cw: Crosswalk, wave: Wave, project: Project, meta: SourceMeta, stata: bool,
                supplied: Mapping[str, str] | None = None) -> tuple[WavePlan, CompiledWave]:
        """``plan_and_compile``; not shared when a rule takes row ids from the file name."""
        return self.once("compile", meta, (cw.survey, wave.wave, stata, _items(supplied)),
                         lambda: plan_and_compile(cw, wave, project, meta, stata, supplied), self.row_ids)

    @staticmethod
    def row_ids(answer: tuple[WavePlan, CompiledWave]) -> bool:
        """A ``names_file`` test of a compiled plan: a rule takes row ids from the file's name."""
        return any(tp.kind == "row_id" for tp in answer[0].targets.values())

    @staticmethod
    def names(meta: SourceMeta) -> Callable[[object], bool]:
        """A ``names_file`` test: does the answer's text mention the file (its name without suffix)?"""
        stem = Path(meta.origin).stem
        return lambda answer: stem in repr(answer)


def _items(mapping: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((mapping or {}).items()))
