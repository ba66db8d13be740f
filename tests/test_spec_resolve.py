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


def test_periods_resolve_as_the_same_overrides_written_in_every_wave() -> None:
    """Folding repeated overrides into `periods` changes no compiled SQL: each crosswalk, unfolded (every
    period's overrides copied into its waves), compiles to the same SQL for every wave."""
    from harmonise.compile.sql import plan_and_compile
    from harmonise.spec.project import load_project
    from tests.conftest import ROOT

    project = load_project(ROOT)
    folded = 0
    for survey, entry in project.surveys.items():
        cw = entry.crosswalk
        waves = []
        for w in cw.waves:
            shared = {t: ov for p in cw.periods if w.wave in p.waves for t, ov in p.overrides.items()}
            assert not set(shared) & set(w.overrides), "a wave overriding a period's target cannot be unfolded so"
            folded += len(shared)
            waves.append(w.model_copy(update={"overrides": {**shared, **w.overrides}}))
        unfolded = cw.model_copy(update={"periods": [], "waves": waves})
        for w, u in zip(cw.waves, waves, strict=True):
            meta = project.declared_meta(survey, w.wave)
            assert meta is not None
            assert plan_and_compile(cw, w, project, meta)[1].sql == plan_and_compile(unfolded, u, project, meta)[1].sql
    assert folded == sum(len(p.waves) * len(p.overrides) for e in project.surveys.values() for p in e.crosswalk.periods)
    assert folded > 0


ESS_CODES = {"not_applicable": [6, 66], "refused": [7, 77], "dont_know": [8, 88], "no_answer": [9, 99]}


def test_a_survey_code_takes_the_reason_its_label_names() -> None:
    """A file numbered anew in its labels' order (R's as_factor written back: vote 4 'Refusal', 5 'Don't know',
    6 'No answer') holds 'No answer' at the convention's 6: the convention made it not applicable, as it made the
    real files' 9 'Not available' (inwyys) no answer. The file's label names the reason, as a Stata letter's does
    (decision 102); a label naming none, or no label, keeps the convention's."""
    defaults = MissingDefaults(codes=ESS_CODES)
    renumbered = VarMeta("vote", labels={1: "Yes", 2: "No", 3: "Not eligible to vote", 4: "Refusal",
                                         5: "Don't know", 6: "No answer"})
    got = classify_missing(defaults, {}, {1, 2, 3}, None, renumbered)
    assert got.reasons == {4: "refused", 5: "dont_know", 6: "no_answer"}
    declared = VarMeta("inwyys", labels={9999: "Not available", 99: "Other"}, missing_values=[99, 66, 9999])
    assert classify_missing(MissingDefaults(codes={**ESS_CODES, "no_answer": [9, 99, 9999]}), {}, set(), None,
                            declared).reasons == {66: "not_applicable", 99: "no_answer", 9999: "not_available"}
    assert classify_missing(defaults, {6: "refused"}, {1, 2, 3}, None, renumbered).reasons[6] == "refused"  # the rule's
