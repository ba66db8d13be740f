"""ESS rounds 1, 3 and 5 (no real file of them under ../shared): the declared codebooks against the public
metadata found for them, and files laid out as those rounds' integrated files are (variable names, string
country and language codes, SPSS user-missing declarations as ESS declares them, and the Stata release of
the same data) validated and built with the shipped crosswalk; every value checked against pyreadstat and
the YAML code tables alone.

Sources (tool library): the ESS1 e06.7 codebook (variable list, value labels, codes marked missing), an SPSS
syntax listing every variable of ESS3e03_5.sav, and scripts naming the round-5 variables (docs: the
report of this check)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyreadstat
import pytest
import yaml
from conftest import ROOT, run

YN = {1: "Yes", 2: "No", 7: "Refusal", 8: "Don't know", 9: "No answer"}
MARK = {0: "Not marked", 1: "Marked"}
EDULVLA = {0: "Not possible to harmonise into 5-level ISCED", 1: "Less than lower secondary education (ISCED 0-1)",
           2: "Lower secondary education completed (ISCED 2)", 3: "Upper secondary education completed (ISCED 3)",
           4: "Post-secondary non-tertiary education completed (ISCED 4)",
           5: "Tertiary education completed (ISCED 5-6)", 55: "Other", 77: "Refusal", 88: "Don't know",
           99: "No answer"}
COUNTRIES = {"DE": "Germany", "TR": "Turkey", "PL": "Poland", "RU": "Russian Federation", "66": "Not applicable",
             "77": "Refusal", "88": "Don't know", "99": "No answer"}
LANGS = {"GER": "German", "TUR": "Turkish", "POL": "Polish", "RUS": "Russian", "QAA": "Local language, Italy",
         "777": "Refusal", "888": "Don't know", "999": "No answer"}


@cache
def codebook(wave: int) -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load((ROOT / "surveys" / "ess" / f"codebook_{wave}.yaml").read_text(encoding="utf-8"))
    return {v["name"]: v for v in doc["variables"]}


@cache
def table(name: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "mappings" / "tables" / f"{name}.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


# ---------------------------------------------------------------------------------------------------------
# the declared round-1 codebook is the ESS1 e06.7 codebook


def test_round1_country_lists_are_the_iso_codes_of_2002() -> None:
    for name in ("cntbrth", "ctzship"):
        var = codebook(1)[name]
        codes = {str(c) for c in var["labels"]} - {"66", "77", "88", "99"}
        assert var["type"] == "string" and var["evidence"] == "seen"
        assert len(codes) == 241
        assert {"AN", "CS", "SU", "TP", "YU"} <= codes
        assert not codes & {"AX", "BL", "GG", "IM", "JE", "MF", "ME", "RS", "TL", "XK", "01", "02"}
        assert (var["labels"]["CS"], var["labels"]["MK"], var["labels"]["66"]) == (
            "Czechoslovakia", "Macedonia", "Not applicable")


def test_round1_language_lists_are_the_iso_639_2_codes_of_their_time() -> None:
    first, second = codebook(1)["lnghoma"], codebook(1)["lnghomb"]
    codes = {str(c) for c in first["labels"]}
    assert first["evidence"] == "seen" and len(codes) == 450
    assert {"QAA", "QTR", "SCC", "SCR", "MOL", "777", "888", "999"} <= codes
    assert not codes & {"ADY", "ZXX", "ZZA", "000"}
    assert {str(c) for c in second["labels"]} == codes | {"000"}
    assert second["labels"]["000"] == "No second language mentioned"


def test_round1_wrkctr_has_no_no_contract_code() -> None:
    var = codebook(1)["wrkctr"]
    assert (var["evidence"], sorted(var["labels"])) == ("seen", [1, 2, 6, 7, 8, 9])


@pytest.mark.parametrize("wave", [2, 3, 4, 5])
def test_rounds_2_to_5_country_lists_are_those_of_the_ess_data_portal_codebook(wave: int) -> None:
    names = ("cntbrtha", "ctzshipa", "fbrncnt", "mbrncnt") if wave < 4 else ("cntbrthb", "ctzshipb", "fbrncnta", "mbrncnta")
    lists = {str(c) for c in codebook(wave)[names[2]]["labels"]}
    assert codebook(wave)[names[2]]["evidence"] == "seen"
    for name in names:
        assert {str(c) for c in codebook(wave)[name]["labels"]} == lists, name
    if wave < 4:  # 2004-07: CS is Serbia and Montenegro, the former states are numbered 01-05
        assert len(lists) == 250 and codebook(wave)["fbrncnt"]["labels"]["CS"] == "Serbia and Montenegro"
        assert {"01", "02", "03", "04", "05", "65", "AN", "AX", "TL"} <= lists
        assert not lists & {"06", "SU", "TP", "YU", "ME", "RS", "XK", "BL", "JE"}
    else:  # 2008-11: CS gone, 06 Serbia and Montenegro, ME and RS
        assert len(lists) == 255 and codebook(wave)["fbrncnta"]["labels"]["06"] == "Serbia and Montenegro"
        assert {"01", "06", "65", "AN", "BL", "JE", "ME", "MF", "RS"} <= lists
        assert not lists & {"CS", "XK", "CW", "SX", "BQ", "SS", "GG", "IM"}


@pytest.mark.parametrize("wave", [2, 3, 4, 5])
def test_every_country_code_of_rounds_2_to_5_is_mapped_by_the_crosswalk(wave: int) -> None:
    cw = yaml.safe_load((ROOT / "mappings" / "ess.yaml").read_text(encoding="utf-8"))
    period = next(p for p in cw["periods"] if str(wave) in p["waves"] and "country_of_birth" in p["overrides"])
    rule = period["overrides"]["country_of_birth"]
    known = set(table("ess_country_codes")["map"]) | set(table("ess_country_codes")["missing"])
    known |= set(rule.get("map", {}))
    assert {str(c) for c in codebook(wave)[rule["source"]]["labels"]} - known == set()
    assert rule.get("map", {}) == ({"CS": "CSXX"} if wave < 4 else {})


def test_every_round1_country_and_language_code_is_mapped_by_the_crosswalk() -> None:
    cw = yaml.safe_load((ROOT / "mappings" / "ess.yaml").read_text(encoding="utf-8"))
    wave1 = next(w for w in cw["waves"] if w["wave"] == "1")["overrides"]
    rounds_1_4 = next(p for p in cw["periods"] if p["waves"] == ["1", "2", "3", "4"])["overrides"]
    for name, rule in (("cntbrth", wave1["country_of_birth"]), ("ctzship", wave1["citizenship"]),
                       ("lnghoma", rounds_1_4["home_language"])):
        assert rule["source"] == name
        known = set(table(rule["table"])["map"]) | set(table(rule["table"])["missing"]) | set(rule.get("map", {}))
        unmapped = {str(c) for c in codebook(1)[name]["labels"]} - known
        assert unmapped == set(), name


# every variable of ESS3e03_5.sav but the few an SPSS syntax (tool library) keeps: it drops all the others by name
ESS3E03_5_LIST = """
    name essround edition proddate idno cntry tvtot tvpol rdtot rdpol nwsptot nwsppol netuse polintr polcmpl
    poldcs vote prtvtaat prtvtabe prtvtbg prtvtach prtvtcy prtvbde1 prtvbde2 prtvtadk prtvtaee prtvtaes
    prtvtfi prtvtafr prtvtagb prtvtahu prtvtie prtvtlv prtvtbnl prtvtno prtvtapl prtvtapt prtvtro prtvtru
    prtvtse prtvtbsi prtvtask prtvtaua contplt wrkprty wrkorg badge sgnptit pbldmn bctprd clsprty prtclaat
    prtclabe prtclbg prtclach prtclcy prtclbde prtcladk prtclaee prtclaes prtclfi prtclafr prtclagb prtclahu
    prtclaie prtcllv prtclnl prtclno prtclbpl prtclbpt prtclro prtclru prtclse prtclbsi prtclask prtclaua
    prtdgcl mmbprty prtmbaat prtmbabe prtmbbg prtmbach prtmbcy prtmbbde prtmbadk prtmbaee prtmbaes prtmbfi
    prtmbafr prtmbagb prtmbahu prtmbie prtmblv prtmbnl prtmbno prtmbbpl prtmbapt prtmbro prtmbru prtmbse
    prtmbbsi prtmbask prtmbaua lrscale stflife stfeco stfgov stfdem stfedu stfhlth gincdif freehms prtyban
    scnsenv euftf imsmetn imdfetn impcntr imbgeco imueclt imwbcnt happy sclmeet inmdisc sclact crmvct aesfdrk
    brghmwr brghmef crvctwr crvctef trrenyr trrcnyr trrprsn trrtort health hlthhmp rlgblg rlgdnm rlgblge
    rlgdnme rlgdgr rlgatnd pray dscrgrp dscrrce dscrntn dscrrlg dscrlng dscretn dscrage dscrgnd dscrsex
    dscrdsb dscroth dscrdk dscrref dscrnap dscrna ctzcntr ctzshipa brncntr cntbrtha livecntr lnghoma lnghomb
    blgetmg facntr fbrncnt mocntr mbrncnt evpdemp pdempyr lvpntyr evlvptn lvptnyr evmar maryr bthcld nbthcld
    fcldbrn ycldbyr ngchld ygcdbyr ggchld brnmm icsbfm ageadlt agemage ageoage adllvhm adftjob adlvptn adpnt
    oldfrl oldgpnt oldhlpo iaglptn iaglvmr iagpnt iagrtr tygledu tygsexi tyglvp tyglvmr tygpnt tygrtr tolvpnt
    tochld towkht anvcld alvgptn acldnmr aftjbyc advcyc rpntyng rwkold rnvcld rlvgptn rcldnmr rftjbyc rdvcyc
    plnftr wrinco rspslvo svclvo wkvlorg hlpoth atnoact optftr pstvms flrms lfcllk fltdpr flteeff slprl wrhpp
    fltlnl enjlf fltsd cldgng enrglot fltanx flttrd absddng fltpcfl fltbrd fltrstm dclvlf enjstm lchshcp
    lrnnew accdng plprftr wrbknrm pactlot stflfsf stfsdlv fmlenj fmlstrs chlrnnw pplahlp trtrsp trtunf rcndsrv
    dngval hlprtrn nhpftr ppllfcr lfwrs flclpla fstwttv pdwrkcr stfjb stfjbot jbintr jbstrs uempnyr pdaprp
    inccmp inccmpw hhmmb gndr gndr2 gndr3 gndr4 gndr5 gndr6 gndr7 gndr8 gndr9 gndr10 gndr11 gndr12 gndr13
    gndr14 gndr15 yrbrn age agea yrbrn2 yrbrn3 yrbrn4 yrbrn5 yrbrn6 yrbrn7 yrbrn8 yrbrn9 yrbrn10 yrbrn11
    yrbrn12 yrbrn13 yrbrn14 yrbrn15 rshipa2 rshipa3 rshipa4 rshipa5 rshipa6 rshipa7 rshipa8 rshipa9 rshipa10
    rshipa11 rshipa12 rshipa13 rshipa14 rshipa15 domicil edulvla eisced edlvbe edlvbg edlvbch edlvcy edlvade
    edlvadk edlvaee edlvaes edlvafr edlvgb edlvahu edlvaie edlvlv edlvnl edlvno edlvapl edlvapt edlvro edlvru
    edlvase edlvsi edlvsk edlvua edufld eduyrs pdwrk edctn uempla uempli dsbld rtrd cmsrv hswrk dngoth dngdk
    dngref dngna mainact mnactic rtdsbyr ablrtr crpdwk pdjobev pdjobyr emplrel emplno wrkctra estsz jbspv
    njbspv wkdcorga iorgact wkhct wkhtot iscoco nacer11 wrkac6m uemp3m uemp12m uemp5yr mbtru hincsrca hinctnt
    hincfel brwmny partner edulvlpa pdwrkp edctnp uemplap uemplip dsbldp rtrdp cmsrvp hswrkp dngothp dngdkp
    dngnapp dngrefp dngnap mnactp crpdwkp iscocop emprelp emplnop jbspvp njbspvp wkdcorp ioactp wkhtotp
    edulvlfa emprf14 emplnof jbspvf occf14a edulvlma emprm14 emplnom jbspvm occm14a atncrse maritala lvghwa
    lvgptna lvgptne dvrcdev chldhm chldhhe fxltph mbltph inttph ipcrtiv imprich ipeqopt ipshabt impsafe
    impdiff ipfrule ipudrst ipmodst ipgdtim impfree iphlppl ipsuces ipstrgv ipadvnt ipbhprp iprspot iplylfr
    impenv imptrad impfun regionat regionbe regionbg regioach regioncy regionde regiondk regionee regioaes
    regioafi regionfr regiongb regionhu regioaie regionlv regionnl regionno regionpl regionpt regionro
    regionru regionse regionsi regionsk regionua intewde inwdds inwmms inwyys inwshh inwsmm inwdde inwmme
    inwyye inwehh inwemm inwtm spltadmb supqad1 supqad2 supqdd supqmm supqyr dweight pspwght pweight
"""
ESS3E03_5 = set(ESS3E03_5_LIST.split())


def test_round3_declared_names_are_those_of_ess3e03_5() -> None:
    declared = set(codebook(3)) - {"trstprl"}  # kept by the syntax, so not in its list
    assert declared - ESS3E03_5 == set()
    assert {"inwyys", "cntbrtha", "ctzshipa", "fbrncnt", "mbrncnt", "livecntr", "lnghoma", "wrkctra", "hinctnt"} <= declared
    assert not {"anweight", "inwyr", "region", "regunit", "livecnta", "hinctnta"} & ESS3E03_5


# ---------------------------------------------------------------------------------------------------------
# files laid out as the rounds' integrated files


def layout(round_: int, n: int = 240) -> tuple[pd.DataFrame, dict[str, dict[Any, str]], dict[str, list[Any]]]:
    """One country file of the round: the data, its value labels and its user-missing declarations."""
    rng = np.random.default_rng(round_)
    names = {1: ("cntbrth", "ctzship", "livecntr", "lnghoma", "edulvla", "wrkctr", "hinctnt", "inwyr"),
             3: ("cntbrtha", "ctzshipa", "livecntr", "lnghoma", "edulvla", "wrkctra", "hinctnt", "inwyys"),
             5: ("cntbrthb", "ctzshipb", "livecnta", "lnghom1", "edulvlb", "wrkctra", "hinctnta", "inwyys")}[round_]
    cntbrth, ctzship, live, lang, edu, contract, income, year = names
    born = rng.choice([1, 1, 1, 2, 2, 8], n)
    citizen = rng.choice([1, 1, 2, 7], n)
    # the former states' codes of the round (ISO alpha-2 then; ESS legacy numbers from round 2)
    old = {1: ["CS", "SU", "YU", "TP", "AN"], 3: ["CS", "02", "03", "04", "65", "AN", "TL"],
           5: ["06", "02", "65", "AN", "ME", "RS"]}[round_]
    df = pd.DataFrame({
        "name": f"ESS{round_}e0x", "essround": float(round_), "edition": "6.7", "idno": np.arange(1, n + 1) * 7.0,
        "cntry": "BE",
        "dweight": rng.uniform(0.6, 1.6, n).round(6), "pspwght": rng.uniform(0.4, 2.2, n).round(6), "pweight": 0.53,
        "gndr": rng.choice([1.0, 2.0, 9.0], n), "agea": rng.choice([19.0, 45.0, 70.0, 999.0], n),
        "brncntr": born.astype(float),
        cntbrth: np.where(born == 2, rng.choice(["DE", "TR", "PL", "RU", "77", "88"] + old, n), "66"),
        "ctzcntr": citizen.astype(float),
        ctzship: np.where(citizen == 2, rng.choice(["DE", "TR", "RU", "99"] + old, n), "66"),
        lang: rng.choice(["GER", "TUR", "POL", "RUS", "QAA", "777"] + (["SCC", "SCR", "QTR"] if round_ < 5 else []), n),
        "pdwrk": rng.choice([0.0, 1.0], n), "uempla": rng.choice([0.0, 0.0, 1.0], n),
        "emplrel": rng.choice([1.0, 2.0, 3.0, 6.0, 8.0], n),
        contract: rng.choice([1.0, 2.0, 6.0, 8.0] + ([3.0] if round_ > 1 else []), n),
        income: rng.choice([1.0, 4.0, 10.0, 77.0, 88.0], n),
        "trstprl": rng.choice([0.0, 7.0, 10.0, 77.0, 88.0, 99.0], n), "domicil": rng.choice([1.0, 2.0, 4.0, 5.0, 8.0], n),
    })
    for var in ("facntr", "mocntr", "blgetmg", "dscrgrp"):
        df[var] = rng.choice([1.0, 2.0, 2.0, 8.0], n)
    for var in ("edctn", "dscrrce", "dscrntn", "dscretn", "dscrlng"):
        df[var] = rng.choice([0.0, 1.0], n)
    for var in ("stflife", "imbgeco", "imueclt", "imwbcnt"):
        df[var] = rng.choice([0.0, 5.0, 10.0, 88.0], n)
    drawn = rng.choice([1931.0, 1958.0, 1984.0, 7777.0], n)  # whether the year of birth is answered (7777 refused)
    df["yrbrn"] = np.where((drawn == 7777) | (df["agea"] == 999), drawn, 2002 + 2 * (round_ - 1) - df["agea"])
    df["mnactic"] = rng.choice([1.0, 2.0, 3.0, 6.0, 9.0, 66.0, 88.0], n)
    df["wkhtot"] = rng.choice([12.0, 40.0, 666.0, 888.0], n)
    df["hincfel"] = rng.choice([1.0, 2.0, 3.0, 4.0, 8.0], n)
    df["health"] = rng.choice([1.0, 3.0, 5.0, 7.0], n)
    df["vote"] = rng.choice([1.0, 2.0, 3.0, 8.0], n)
    if round_ > 1:
        father, mother = ("fbrncnt", "mbrncnt") if round_ < 4 else ("fbrncnta", "mbrncnta")
        df[father] = np.where(df.facntr == 2, rng.choice(["DE", "TR", "88"], n), "66")
        df[mother] = np.where(df.mocntr == 2, rng.choice(["PL", "RU", "77"], n), "66")
    if round_ < 5:
        df[live] = np.where(born == 2, rng.choice([1, 2, 3, 4, 5, 8], n), 6).astype(float)
        df[edu] = rng.choice([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 55.0, 88.0], n)
    else:
        df[live] = np.where(born == 2, rng.choice([1961, 1990, 2008, 8888], n), 6666).astype(float)
        df[edu] = rng.choice([0.0, 113.0, 213.0, 313.0, 520.0, 720.0, 800.0, 5555.0, 8888.0], n)
        df["region"] = rng.choice(["BE1", "BE2", "BE3", "99999"], n)
        df["regunit"] = 1.0
    df[year] = rng.choice([2002 + 2 * (round_ - 1), 2003 + 2 * (round_ - 1), 9999], n).astype(float)
    labels: dict[str, dict[Any, str]] = {
        "cntry": {"BE": "Belgium"}, "gndr": {1: "Male", 2: "Female", 9: "No answer"}, "agea": {999: "Not available"},
        "brncntr": YN, "ctzcntr": YN, "pdwrk": MARK, "uempla": MARK,
        cntbrth: COUNTRIES | {c: c for c in old}, ctzship: COUNTRIES | {c: c for c in old},
        lang: LANGS | ({"SCC": "Serbian", "SCR": "Croatian", "QTR": "Local languages, Turkey"} if round_ < 5 else {}),
        "emplrel": {1: "Employee", 2: "Self-employed", 3: "Working for own family business", 6: "Not applicable",
                    7: "Refusal", 8: "Don't know", 9: "No answer"},
        contract: {1: "Unlimited", 2: "Limited"} | ({3: "No contract"} if round_ > 1 else {})
        | {6: "Not applicable", 7: "Refusal", 8: "Don't know", 9: "No answer"},
        income: {77: "Refusal", 88: "Don't know", 99: "No answer"},
        "trstprl": {0: "No trust at all", 10: "Complete trust", 77: "Refusal", 88: "Don't know", 99: "No answer"},
        "domicil": {1: "A big city", 2: "Suburbs or outskirts of big city", 3: "Town or small city",
                    4: "Country village", 5: "Farm or home in countryside", 7: "Refusal", 8: "Don't know",
                    9: "No answer"},
        year: {9999: "Not available"},
    }
    for var in (cntbrth, ctzship):  # labelled as the round's list labels them (CS: Czechoslovakia, then Serbia and Montenegro)
        labels[var].update({c: str(codebook(round_)[cntbrth]["labels"][c]) for c in old})
    missing: dict[str, list[Any]] = {
        "gndr": [9], "agea": [999], "brncntr": [7, 8, 9], "ctzcntr": [7, 8, 9], "emplrel": [{"lo": 6, "hi": 9}],
        contract: [{"lo": 6, "hi": 9}], income: [77, 88, 99], "trstprl": [77, 88, 99], "domicil": [7, 8, 9],
        year: [9999], cntbrth: ["66", "99"], ctzship: ["66", "99"], lang: ["999"],
    }
    for var in ("facntr", "mocntr", "blgetmg", "dscrgrp"):
        labels[var], missing[var] = YN, [7, 8, 9]
    for var in ("edctn", "dscrrce", "dscrntn", "dscretn", "dscrlng"):
        labels[var] = MARK
    for var in ("stflife", "imbgeco", "imueclt", "imwbcnt"):
        labels[var], missing[var] = {77: "Refusal", 88: "Don't know", 99: "No answer"}, [77, 88, 99]
    labels["yrbrn"], missing["yrbrn"] = {7777: "Refusal", 8888: "Don't know", 9999: "No answer"}, [7777, 8888, 9999]
    labels["mnactic"] = {1: "Paid work", 2: "Education", 3: "Unemployed, looking for job",
                         4: "Unemployed, not looking for job", 5: "Permanently sick or disabled", 6: "Retired",
                         7: "Community or military service", 8: "Housework, looking after children, others",
                         9: "Other", 66: "Not applicable", 77: "Refusal", 88: "Don't know", 99: "No answer"}
    missing["mnactic"] = [{"lo": 66, "hi": 99}]
    labels["wkhtot"] = {666: "Not applicable", 777: "Refusal", 888: "Don't know", 999: "No answer"}
    missing["wkhtot"] = [{"lo": 666, "hi": 999}]
    labels["hincfel"] = {1: "Living comfortably on present income", 2: "Coping on present income",
                         3: "Difficult on present income", 4: "Very difficult on present income", 7: "Refusal",
                         8: "Don't know", 9: "No answer"}
    labels["health"] = {1: "Very good", 2: "Good", 3: "Fair", 4: "Bad", 5: "Very bad", 7: "Refusal",
                        8: "Don't know", 9: "No answer"}
    labels["vote"] = {1: "Yes", 2: "No", 3: "Not eligible to vote", 7: "Refusal", 8: "Don't know", 9: "No answer"}
    missing.update({"hincfel": [7, 8, 9], "health": [7, 8, 9], "vote": [7, 8, 9]})
    if round_ > 1:
        for var in (father, mother):
            labels[var], missing[var] = dict(COUNTRIES), ["66", "99"]
    if round_ < 5:
        labels[live] = {1: "Within last year", 2: "1-5 years ago", 3: "6-10 years ago", 4: "11-20 years ago",
                        5: "More than 20 years ago", 6: "Not applicable", 7: "Refusal", 8: "Don't know",
                        9: "No answer"}
        labels[edu] = EDULVLA
        missing.update({live: [{"lo": 6, "hi": 9}], edu: [77, 88, 99]})
    else:
        labels[live] = {6666: "Not applicable", 7777: "Refusal", 8888: "Don't know", 9999: "No answer"}
        labels[edu] = {int(k): str(v) for k, v in table("ess_edulvlb")["labels"].items() if str(k).isdigit()}
        labels["region"] = {"BE1": "Région de Bruxelles-Capitale", "BE2": "Vlaams Gewest", "BE3": "Région wallonne",
                            "99999": "Not available"}
        labels["regunit"] = {1: "NUTS level 1", 2: "NUTS level 2", 3: "NUTS level 3"}
        missing.update({live: [{"lo": 6666, "hi": 9999}], edu: [{"lo": 5555, "hi": 9999}], "region": ["99999"]})
    return df, labels, missing


def write(path: Path, round_: int) -> None:
    df, labels, missing = layout(round_)
    if path.suffix == ".sav":
        pyreadstat.write_sav(df, str(path), variable_value_labels=labels, missing_ranges=missing)
    else:  # the Stata release: the same codes, numeric labels only (Stata strings carry none), no declarations
        pyreadstat.write_dta(df, str(path), variable_value_labels={
            k: v for k, v in labels.items() if all(isinstance(c, int) for c in v)})


def expected(path: Path, round_: int) -> pd.DataFrame:
    """The harmonised values, computed from the file with pyreadstat and the YAML code tables only."""
    read = pyreadstat.read_sav if path.suffix == ".sav" else pyreadstat.read_dta
    raw, _ = read(str(path))  # SPSS: declared missing -> NaN
    df, _, _ = layout(round_)
    cntbrth, live, lang, edu, contract, income, year = {
        1: ("cntbrth", "livecntr", "lnghoma", "edulvla", "wrkctr", "hinctnt", "inwyr"),
        3: ("cntbrtha", "livecntr", "lnghoma", "edulvla", "wrkctra", "hinctnt", "inwyys"),
        5: ("cntbrthb", "livecnta", "lnghom1", "edulvlb", "wrkctra", "hinctnta", "inwyys")}[round_]
    countries = table("ess_country_codes")["map"] | {1: {"CS": "CSHH"}, 3: {"CS": "CSXX"}, 5: {}}[round_]
    languages = table("ess_language_codes")["map"] | {"QTR": "MIS", "SCC": "SRP", "SCR": "HRV"}

    def valid(s: pd.Series, bad: set[Any]) -> pd.Series:
        return s.where(~s.isin(bad))

    out = pd.DataFrame({"respondent_id": "BE-" + df.idno.astype(int).astype(str)})
    out["year"] = df[year].where(df[year] != 9999, 2002 + 2 * (round_ - 1)).astype(int)
    out["sex"] = valid(df.gndr, {9}).map({1: "male", 2: "female"})
    out["age"] = valid(df.agea, {999})
    out["country_of_birth"] = df[cntbrth].map(countries)
    out["home_language"] = df[lang].map(languages)
    # employees only: a family business's worker (emplrel 3) is not applicable; an answer without emplrel is kept;
    # the current job's: not applicable for those not in paid work (pdwrk 0), whose answers are the last job's
    out["temporary_contract"] = valid(df[contract], {6, 7, 8, 9}).map({1: False, 2: True, 3: False}).where(
        (df.emplrel != 3) & (df.pdwrk != 0))
    out["self_employed"] = valid(df.emplrel, {6, 7, 8, 9}).map({1: False, 2: True, 3: False}).where(df.pdwrk != 0)
    out["hours_worked"] = valid(df.wkhtot, {666, 777, 888, 999}).where(df.pdwrk != 0)
    out["labour_status"] = np.where(df.pdwrk == 1, "employed", np.where(df.uempla == 1, "unemployed", "inactive"))
    out["trust_parliament"] = valid(df.trstprl, {77, 88, 99})
    out["weight"] = df.pspwght * df.pweight
    out["birth_year"] = valid(df.yrbrn, {7777, 8888, 9999})
    out["main_activity"] = valid(df.mnactic, {66, 77, 88, 99}).map(
        dict(enumerate(["paid_work", "education", "unemployed_looking", "unemployed_not_looking", "sick_disabled",
                        "retired", "community_military", "housework_care", "other"], start=1)))
    father = {1: None, 3: "fbrncnt", 5: "fbrncnta"}[round_]
    out["father_country_of_birth"] = df[father].map(countries) if father else None
    if round_ < 5:
        out["education_level"] = df[edu].map({1: "low", 2: "low", 3: "medium", 4: "medium", 5: "high"})
        out["income_decile"] = np.nan if round_ < 4 else valid(df[income], {77, 88, 99})
        out["year_of_arrival"] = np.nan
        out["region_nuts"] = None
    else:
        isced = table("ess_edulvlb")["map"]
        out["education_isced"] = df[edu].map(lambda c: isced.get(int(c)))
        out["income_decile"] = valid(df[income], {77, 88, 99})
        out["year_of_arrival"] = valid(df[live], {6666, 7777, 8888, 9999})
        out["region_nuts"] = valid(df.region, {"99999"})
    assert raw.shape[0] == out.shape[0]
    return out.set_index("respondent_id").sort_index()


@pytest.mark.parametrize(("round_", "name"), [(1, "ESS1BE.sav"), (1, "ESS1e06_7.dta"), (3, "ESS3BE.sav"),
                                              (3, "ESS3e03_5.dta"), (5, "ESS5BE.sav"), (5, "ESS5e03_5.dta")])
def test_a_file_laid_out_as_the_round_validates_and_builds_the_values_of_the_raw_file(
        tmp_path: Path, round_: int, name: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    path = data / name
    write(path, round_)
    code, out, err = run("validate", "mappings/ess.yaml", "--data", str(data))
    assert code == 0, out + err
    assert "0 error(s), 0 warning(s)" in out + err
    db = tmp_path / "h.duckdb"
    code, out, err = run("build", "--data", str(data), "--db", str(db))
    assert code == 0, out + err
    want = expected(path, round_)
    con = duckdb.connect(str(db), read_only=True)
    got = con.execute(f"SELECT respondent_id, wave, {', '.join(want.columns)}, income_decile_missing, "
                      "year_of_arrival_missing FROM respondents").df().set_index("respondent_id").sort_index()
    con.close()
    assert list(got.index) == list(want.index)
    assert set(got.wave) == {str(round_)}
    for column in want.columns:
        g, w = got[column], want[column]
        if column in ("age", "trust_parliament", "weight", "income_decile", "year_of_arrival", "birth_year",
                      "hours_worked"):
            np.testing.assert_allclose(g.astype(float).to_numpy(), w.astype(float).to_numpy(), equal_nan=True,
                                       err_msg=column)
        else:
            assert g.astype(object).where(g.notna(), None).tolist() == w.astype(object).where(w.notna(), None).tolist(), column
    if round_ < 4:
        assert set(got.income_decile_missing) == {"not_asked"}
    if round_ < 5:
        assert set(got.year_of_arrival_missing) == {"not_asked"}


@pytest.mark.parametrize("round_", [1, 3, 5])
def test_codes_and_labels_of_the_whole_country_lists_raise_no_label_contradiction(tmp_path: Path, round_: int) -> None:
    """Every code of the round's country list (and round 1's language list) present in a file, labelled as the
    ESS codebooks label it ('Czechoslovakia', 'Serbia and Montenegro', 'Timor-Leste', 'Alien's passport',
    'Libyan Arab Jamahiriya', 'Local languages, Turkey' ...): all mapped, none contradicted by its label."""
    df, labels, missing = layout(round_, n=450)
    rng = np.random.default_rng(11)
    cb = codebook(round_)
    cntbrth, ctzship = {1: ("cntbrth", "ctzship"), 3: ("cntbrtha", "ctzshipa"), 5: ("cntbrthb", "ctzshipb")}[round_]
    countries = [str(c) for c in cb[cntbrth]["labels"] if str(c) not in ("66", "77", "88", "99")]
    df[cntbrth] = np.where(df.brncntr == 2, rng.permutation(np.resize(countries, len(df))), "66")
    df[ctzship] = rng.permutation(np.resize(countries, len(df)))
    df["ctzcntr"] = 2.0
    names = ["cntry", cntbrth, ctzship]
    if round_ == 1:
        languages = [str(c) for c in cb["lnghoma"]["labels"] if str(c) not in ("777", "888", "999")]
        df["lnghoma"] = rng.permutation(np.resize(languages, len(df)))
        names.append("lnghoma")
    for name in names:
        labels[name] = {str(k): str(v) for k, v in cb[name]["labels"].items()}
    (tmp_path / "data").mkdir()
    pyreadstat.write_sav(df, str(tmp_path / "data" / f"ESS{round_}BE.sav"), variable_value_labels=labels,
                         missing_ranges=missing)
    code, out, err = run("validate", "mappings/ess.yaml", "--data", str(tmp_path / "data"))
    assert code == 0, out + err
    assert "0 error(s), 0 warning(s)" in out + err
