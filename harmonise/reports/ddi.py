"""DDI-Codebook 2.5 XML: one document for the harmonised dataset, one per source survey-wave.

Elements follow the order of the DDI-Codebook 2.5 schema (namespace ``ddi:codebook:2_5``).
The harmonised document has one ``var`` per target with its categories, the missing-reason
categories (``missing="Y"``), per source survey-wave the rule in a ``codInstr`` and the quality
flag and notes in ``notes``, and for a derived target its expression in ``derivation``.
Every document validates against the official schema (tests/test_reports_ddi.py); all text goes
through :func:`~harmonise.reports.text.xml_text`, so a control character in a label cannot make
it unreadable.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from harmonise.reports.citation import Cited
from harmonise.reports.codebook_build import LoadedWave
from harmonise.reports.codebook_model import Codebook, Entry, WavePage
from harmonise.reports.text import xml_text
from harmonise.spec.expr import referenced_names

NS = "ddi:codebook:2_5"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = f"{NS} https://ddialliance.org/Specification/DDI-Codebook/2.5/XMLSchema/codebook.xsd"
DISCRETE = ("category", "boolean", "country", "language", "city", "string")


def xml_id(prefix: str, name: str) -> str:
    """An ``xs:ID`` (an XML NCName) for ``name``: characters an NCName cannot hold (SPSS allows ``@ # $`` in
    variable names) become ``_xHH_``, so distinct names keep distinct IDs."""
    return prefix + re.sub(r"[^A-Za-z0-9._-]", lambda m: f"_x{ord(m.group()):x}_", name)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: xml_text(v) for k, v in attrs.items()})
    if text is not None:
        el.text = xml_text(text)
    return el


def _root(doc_id: str) -> ET.Element:
    return ET.Element("codeBook", {"xmlns": NS, "xmlns:xsi": XSI, "xsi:schemaLocation": SCHEMA_LOCATION,
                                   "version": "2.5", "ID": doc_id})


def _serialise(root: ET.Element) -> str:
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _doc_dscr(root: ET.Element, title: str, banner: str) -> None:
    doc = _sub(root, "docDscr")
    cit = _sub(doc, "citation")
    _sub(_sub(cit, "titlStmt"), "titl", title)
    _sub(_sub(cit, "prodStmt"), "software", "harmonise codebook (generated from the declarations; do not edit)")
    if banner:
        _sub(doc, "notes", banner, type="synthetic")


def _rule_text(e: Entry) -> str:
    parts = [e.cell.rule]
    if e.plan.table:
        parts.append(f"code table {e.plan.table} ({e.table_codes} codes)")
    if e.rows:
        parts.append("codes " + "; ".join(f"{r.code} → {r.target}" for r in e.rows))
    if e.missing_rows:
        parts.append("missing " + "; ".join(f"{(r.variable + ' ') if len(e.sources) > 1 else ''}{r.code} → {r.reason}"
                                            for r in e.missing_rows))
    if e.system:
        parts.append(f"system-missing → {e.system}")
    return ". ".join(parts)


def harmonised_ddi(cb: Codebook, cited: dict[str, Cited], banner: str = "") -> str:
    """The DDI-Codebook 2.5 document of the harmonised ``respondents`` table (``banner``: synthetic data)."""
    root = _root("harmonised")
    _doc_dscr(root, f"Codebook of {cb.title}", banner)
    stdy = _sub(root, "stdyDscr")
    tst = _sub(_sub(stdy, "citation"), "titlStmt")
    _sub(tst, "titl", f"Harmonised migrant-integration survey data: {cb.title}")
    _sub(tst, "IDNo", "harmonised")
    info = _sub(stdy, "stdyInfo")
    _sub(info, "abstract", cb.description)
    summ = _sub(info, "sumDscr")
    countries = sorted({c for w in cb.waves if w.wave_descriptor for c in w.wave_descriptor.countries})
    for c in countries:
        _sub(summ, "nation", c, abbr=c)
    _sub(summ, "anlyUnit", "Individuals (one row per respondent and survey-wave)")
    _sub(summ, "dataKind", "Survey data, post-harmonised")
    method = _sub(stdy, "method")
    srcs = _sub(_sub(method, "dataColl"), "sources")
    for w in cb.waves:
        _sub(srcs, "dataSrc", f"{w.title} ({w.year}): {cited[w.key].full} Crosswalk {w.crosswalk_file}.")
    _sub(method, "notes", "Every source code is mapped to a target code or a typed missing reason; "
                          "each non-key variable x has a companion column x_missing holding the reason.")
    if cb.params:
        _sub(method, "notes", "Schema parameters: " + "; ".join(
            f"{p.name} = {p.shown}" + (f" (read by {', '.join(p.used_by)})" if p.used_by else "") for p in cb.params)
            + ".", type="parameters")
    use = _sub(_sub(stdy, "dataAccs"), "useStmt")
    _sub(use, "conditions", "The access conditions of each source survey apply; see the survey-wave codebooks.")
    ncols = sum(2 if t.var.has_missing_column else 1 for t in cb.targets)
    ftxt = _sub(_sub(root, "fileDscr", ID="F1"), "fileTxt")
    _sub(ftxt, "fileName", "respondents")
    _sub(ftxt, "fileCont", "One row per respondent and survey-wave; key survey, wave, respondent_id.")
    _sub(_sub(ftxt, "dimensns"), "varQnty", str(ncols))
    _sub(ftxt, "fileType", "DuckDB table")
    data = _sub(root, "dataDscr")
    for group, label in cb.groups.items():
        names = [f"V_{t.var.name}" for t in cb.targets if t.var.group == group]
        if names:
            _sub(_sub(data, "varGrp", ID=f"G_{group}", var=" ".join(names)), "labl", label)
    for t in cb.targets:
        v = t.var
        var = _sub(data, "var", ID=f"V_{v.name}", name=v.name, files="F1",
                   intrvl="discrete" if v.type in DISCRETE else "contin")
        _sub(var, "labl", v.label)
        if v.range:
            _sub(_sub(var, "valrng"), "range", min=f"{v.range[0]:g}", max=f"{v.range[1]:g}")
        _sub(var, "txt", v.definition)
        for code, label in t.codes:
            cat = _sub(var, "catgry")
            _sub(cat, "catValu", code)
            _sub(cat, "labl", label)
        if v.has_missing_column:
            for reason, label, definition in cb.reasons:
                cat = _sub(var, "catgry", missing="Y")
                _sub(cat, "catValu", reason)
                _sub(cat, "labl", label)
                _sub(cat, "txt", f"{definition} Recorded in {v.missing_column}.")
        for e in t.entries:
            _sub(var, "codInstr", f"{e.key}: {_rule_text(e)}", ID=f"R_{v.name}_{e.key}")
        if v.derive:
            names = [n for n in referenced_names(v.derive.expr) if n in cb.target_names]
            drv = _sub(var, "derivation", var=" ".join(f"V_{n}" for n in names)) if names else _sub(var, "derivation")
            _sub(drv, "drvdesc", "Derived from other harmonised variables wherever a crosswalk does not map it "
                                 "directly (see the coding instruction of each survey-wave).")
            _sub(drv, "drvcmd", v.derive.expr, syntax="harmonise expression")
        _sub(var, "varFormat", type="character" if v.type in ("category", "string", "country", "language", "city")
             else "numeric", schema="other")
        measured = [e for e in t.entries if e.cell.measured]
        _sub(var, "notes", f"Harmonised in {len(measured)} of {len(t.entries)} survey-waves; the rule of each is "
                           "its coding instruction (codInstr).", type="harmonisation")
        for e in t.entries:
            srcs_txt = ", ".join(f"{s.name} ({s.label})" if s.label else s.name for s in e.sources)
            text = f"{e.key}: quality {e.flag}." + (f" Source: {srcs_txt}." if srcs_txt else "")
            if e.cell.notes:
                text += f" {e.cell.notes}"
            _sub(var, "notes", text, type="harmonisation", subject=e.key)
    return _serialise(root)


def wave_ddi(cb: Codebook, w: WavePage, cited: Cited, banner: str = "", loaded: LoadedWave | None = None) -> str:
    """The DDI-Codebook 2.5 document of one source survey-wave: descriptor, citation and the variables read;
    with ``loaded`` (a database build) the files and respondents loaded instead of the declared ones."""
    root = _root(w.key)
    d, wd = w.descriptor, w.wave_descriptor
    _doc_dscr(root, f"Harmonisation codebook of {w.title}", banner)
    stdy = _sub(root, "stdyDscr")
    cit = _sub(stdy, "citation")
    tst = _sub(cit, "titlStmt")
    _sub(tst, "titl", f"{d.title if d else w.survey}, wave {w.wave} ({w.year})")
    if d:
        _sub(tst, "altTitl", f"{d.acronym} {w.wave}")
    _sub(tst, "IDNo", cited.doi or w.key, agency="DOI" if cited.doi else "harmonise")
    if d:
        prod = _sub(cit, "prodStmt")
        for p in d.producer:
            _sub(prod, "producer", p)
        if d.access.distributor:
            _sub(_sub(cit, "distStmt"), "distrbtr", d.access.distributor)
    ver = _sub(cit, "verStmt")
    if cited.edition:
        _sub(ver, "version", cited.edition, type="edition")
    _sub(ver, "notes", " ".join(t for t in (cited.basis, cited.missing_text) if t) or "Edition declared.")
    _sub(cit, "biblCit", cited.text)
    info = _sub(stdy, "stdyInfo")
    if w.notes:
        _sub(info, "abstract", w.notes)
    summ = _sub(info, "sumDscr")
    if wd:
        _sub(summ, "collDate", wd.fieldwork.start, event="start", date=wd.fieldwork.start)
        _sub(summ, "collDate", wd.fieldwork.end, event="end", date=wd.fieldwork.end)
    nations = [(c, n) for c, n, _ in loaded.countries] if loaded is not None else \
        [(c, c) for c in (wd.countries if wd else [])]
    for code, name in nations:
        _sub(summ, "nation", name or code, abbr=code)
    if d:
        _sub(summ, "anlyUnit", "Individuals")
        _sub(summ, "universe", d.target_population.text)
    _sub(summ, "dataKind", "Survey data")
    if d:
        coll = _sub(_sub(stdy, "method"), "dataColl")
        samp = f"{d.sampling.type.replace('_', ' ')} sampling of {', '.join(d.sampling.units)}."
        _sub(coll, "sampProc", samp + (f" {d.sampling.notes}" if d.sampling.notes else ""))
        _sub(coll, "collMode", ", ".join(d.data_collection.modes))
        weights = [wt for wt in d.weights if wd is None or wt.name in wd.weights]
        if weights:
            _sub(coll, "weight", "; ".join(f"{wt.name}: {wt.kind.replace('_', ' ')}" + (f" ({wt.label})" if wt.label else "")
                                           for wt in weights))
        use = _sub(_sub(stdy, "dataAccs"), "useStmt")
        _sub(use, "citReq", d.citation.text)
        _sub(use, "conditions", f"{d.access.mode}: {d.access.conditions}"
                                + (f" Licence: {d.access.licence}." if d.access.licence else ""))
    described: list[tuple[str, int | None, str | None, str]]
    if loaded is not None:  # the files of the database, with the rows loaded from each
        described = [(f.file_name, f.rows, None, f"loaded into the database; sha256 {f.sha256}") for f in loaded.files]
    else:
        described = [(f.name, wd.sample_size.respondents if wd else None, f.format,
                      "distributed file as declared; respondents of the whole release") for f in (wd.files if wd else [])]
    for i, (name, rows, fmt, note) in enumerate(described or [(w.key, None, None, "")], 1):
        ftxt = _sub(_sub(root, "fileDscr", ID=f"F{i}"), "fileTxt")
        _sub(ftxt, "fileName", name)
        if note:
            _sub(ftxt, "fileCont", note)
        if rows is not None:
            _sub(_sub(ftxt, "dimensns"), "caseQnty", str(rows))
        if fmt:
            _sub(ftxt, "fileType", fmt)
    file_ids = " ".join(f"F{i}" for i in range(1, len(described or [None]) + 1))
    data = _sub(root, "dataDscr")
    for s in w.sources:
        var = _sub(data, "var", ID=xml_id("V_", s.name), name=s.name, files=file_ids)
        if s.label:
            _sub(var, "labl", s.label)
        for code, label in s.labels:
            cat = _sub(var, "catgry", missing="Y") if code in s.missing_codes else _sub(var, "catgry")
            _sub(cat, "catValu", code)
            _sub(cat, "labl", label)
        if s.type:
            _sub(var, "varFormat", type="character" if s.type == "string" else "numeric", schema="other")
        feeds = [e for e in w.entries if s.name in e.cell.sources]
        text = "Feeds " + "; ".join(f"{e.cell.target} ({e.cell.kind}, {e.flag})" for e in feeds) + "."
        if s.missing:
            text += f" Declared missing: {s.missing}."
        if not s.declared:
            text += " Not in the declared codebook."
        _sub(var, "notes", text, type="harmonisation")
    return _serialise(root)
