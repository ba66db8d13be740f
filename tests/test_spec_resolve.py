"""Resolution details that real files need: letters labelled by the file, alternatives chosen by presence."""

from __future__ import annotations

from harmonise.spec.crosswalk import MissingDefaults
from harmonise.spec.resolve import classify_missing, reason_of_label
from harmonise.spec.source import VarMeta

ESS_LETTERS = {"a": "not_applicable", "b": "refused", "c": "dont_know", "d": "no_answer"}


def test_a_file_that_labels_its_stata_letters_says_what_they_mean() -> None:
    """A data-portal subset shifts the letters (.a Refusal, .b Don't know, .c No answer): the survey's
    letter defaults would call every refusal 'not applicable'."""
    defaults = MissingDefaults(extended=ESS_LETTERS)
    shifted = VarMeta("happy", extended={"a": "Refusal", "b": "Don't know", "c": "No answer"})
    got = classify_missing(defaults, {}, set(), None, shifted)
    assert got.extended == {"a": "refused", "b": "dont_know", "c": "no_answer", "d": "no_answer"}
    unlabelled = classify_missing(defaults, {}, set(), None, VarMeta("happy"))
    assert unlabelled.extended == ESS_LETTERS
    explicit = classify_missing(defaults, {".a": "not_asked"}, set(), None, shifted)
    assert explicit.extended["a"] == "not_asked"  # the rule's own word wins


def test_only_unambiguous_labels_name_a_reason() -> None:
    assert [reason_of_label(x) for x in ["Refusal", "DON'T KNOW", "No answer", "Not applicable", "Other",
                                         "No answer/refusal", ""]] == [
        "refused", "dont_know", "no_answer", "not_applicable", None, None, None]
