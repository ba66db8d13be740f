"""harmonise/samework.py: metadata digests, computed once per metadata object and shared by equal metadata."""

from __future__ import annotations

import copy
import pickle

from harmonise.samework import SameWork, assume_digest, kept_digest, meta_digest
from harmonise.spec.source import SourceMeta, VarMeta


def _meta(label: str = "Gender") -> SourceMeta:
    return SourceMeta(origin="ESS11AT.sav", variables={"gndr": VarMeta("gndr", label=label, type="numeric",
                                                                         labels={1: "Male", 2: "Female"})},
                      format="sav", encoding="utf-8", rows=10)


def test_a_digest_is_kept_on_the_object_and_travels_with_it() -> None:
    meta = _meta()
    assert kept_digest(meta) == meta_digest(meta)
    meta.variables["gndr"].label = "changed in place"  # not seen: the kept digest is the object's
    assert kept_digest(meta) != meta_digest(meta)
    assert kept_digest(pickle.loads(pickle.dumps(meta))) == kept_digest(meta)  # a worker gets it with the object
    meta.variables["agea"] = VarMeta("agea", label="Age", type="numeric")  # a variable added: computed again
    assert kept_digest(meta) == meta_digest(meta)


def test_assumed_digests_tell_metadata_apart_by_their_variables_digest_format_and_encoding() -> None:
    a, b, c = _meta(), _meta(), _meta()
    assume_digest(a, "json-1")
    assume_digest(b, "json-1")
    assume_digest(c, "json-2")
    assert kept_digest(a) == kept_digest(b) != kept_digest(c)
    assert kept_digest(a) != meta_digest(_meta())  # another kind of digest: equal metadata read afresh shares nothing
    d = copy.deepcopy(_meta())
    d.encoding = "latin1"
    assume_digest(d, "json-1")
    assert kept_digest(d) != kept_digest(a)


def test_same_work_answers_once_per_digest() -> None:
    same, calls = SameWork(), []
    a, b = _meta(), _meta()
    assume_digest(a, "json-1")
    assume_digest(b, "json-1")
    for meta in (a, b, _meta()):
        same.once("step", meta, "key", lambda: calls.append(1) or len(calls))
    assert calls == [1, 1]  # a and b share their answer; the afresh-read copy computes its own
