"""Rank source variables as candidates for a target, by label and value-label similarity.

Plain token matching (standard library only): labels are lower-cased, accents dropped, split
into words, stop words removed and crudely stemmed; a source variable scores by how much of
the target's label it covers, how much of its own label the target's label and definition
explain, how well its value labels match the target's codes, and whether its storage type
fits. A known alias (``mappings/aliases.yaml``, or a name other crosswalks use for the
target) adds a fixed bonus.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from harmonise.kept import keep
from harmonise.spec.schema import Variable
from harmonise.spec.source import Code, SourceMeta, VarMeta

STOP = frozenset([
    "a", "an", "the", "of", "or", "and", "in", "on", "to", "for", "at", "by", "with", "is", "are", "be",
    "as", "from", "your", "you", "this", "that", "which", "all", "any", "its", "it", "s", "r",
    "respondent", "respondents", "there", "their", "what", "how",
])
SYNONYMS = {"gender": "sex", "man": "male", "men": "male", "woman": "female", "women": "female",
            "marked": "yes", "nationality": "citizenship", "attached": "attachment", "native": "born",
            "employ": "work", "job": "work", "satisfied": "satisfaction", "schooling": "education",
            "decile": "decile", "kid": "child"}
MISSING_LABELS: tuple[tuple[str, str], ...] = (
    (r"\bnot applicable\b|\binapplicable\b|\bn/?a\b", "not_applicable"),
    (r"\brefus", "refused"),
    (r"\bdon'?t know\b|\bdo not know\b|\bdk\b", "dont_know"),
    (r"\bno answer\b|\bnot answered\b|\bno response\b", "no_answer"),
    (r"\bnot asked\b|\bnot included\b", "not_asked"),
    (r"\bdoes not understand\b|\bdid not understand\b|\bother missing\b", "other_missing"),
    (r"\bmultiple answers\b|\binvalid\b", "invalid"),
    (r"\bnot available\b|\bmissing\b", "not_available"),
)
ALIAS_BONUS = 0.5


def fold(text: str) -> str:
    """Lower-case ASCII form of ``text`` (accents dropped)."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return SYNONYMS.get(word, word)


def key(word: str) -> str:
    """Match key of a word: words of five letters or more match on their first five."""
    return word[:5] if len(word) >= 5 else "<" + word


@lru_cache(maxsize=65536)
def tokens(text: str) -> frozenset[str]:
    """Match keys of the content words of ``text`` (also splits snake_case names)."""
    words = re.split(r"[^a-z0-9']+", fold(text).replace("_", " "))
    return frozenset(key(stem(w.strip("'"))) for w in words if w.strip("'") and w.strip("'") not in STOP)


def covered(part: frozenset[str], whole: frozenset[str]) -> float:
    """Share of the words of ``part`` found in ``whole`` (0 when ``part`` is empty)."""
    return len(part & whole) / len(part) if part else 0.0


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


YES, NO = frozenset({key("yes"), key("true")}), frozenset({key("no"), key("not")})
FALSE_ANSWERS = (frozenset({key("no")}), frozenset({key("false")}), frozenset({key("not"), key("yes")}))


@lru_cache(maxsize=65536)
def missing_reason(label: str) -> str | None:
    """The missing reason a value label spells (``Refusal`` → refused), else None."""
    text = fold(label).replace("’", "'")
    for pattern, reason in MISSING_LABELS:
        if re.search(pattern, text):
            return reason
    return None


def substantive_labels(vm: VarMeta) -> dict[Code, str]:
    """Value labels that are answers, not missing codes."""
    return {c: lab for c, lab in vm.labels.items() if not vm.declared_missing(c) and missing_reason(lab) is None}


def code_match(label: str, target: Variable) -> tuple[str | bool | None, float, float]:
    """Best target code for a source value label: (code, share of the code's words covered, Jaccard)."""
    codes = tuple((target.codes or {}).items())
    return _code_match(label, target.type, target.label, codes)


@lru_cache(maxsize=65536)
def _code_match(label: str, ttype: str, tlabel: str,
                codes: tuple[tuple[str, str], ...]) -> tuple[str | bool | None, float, float]:
    words = tokens(label)
    if ttype == "boolean":
        if words & YES and not words & NO:
            return True, 1.0, 1.0
        if words in FALSE_ANSWERS:
            return False, 1.0, 1.0
        if covered(tokens(tlabel), words) == 1.0:  # 'Self-employed' among emplrel's answers
            return True, 0.5, 0.5
        return None, 0.0, 0.0
    best: tuple[str | bool | None, float, float] = (None, 0.0, 0.0)
    for code, code_label in codes:
        for cand in (tokens(code_label), tokens(code)):
            score = (covered(cand, words), jaccard(cand, words))
            if score > best[1:]:
                best = (code, *score)
    return best


def value_fit(target: Variable, vm: VarMeta, labels: dict[Code, str] | None = None) -> float:
    """How well the source's values suit the target's type and codes (0–1)."""
    labels = substantive_labels(vm) if labels is None else labels
    t = target.type
    if t in ("category", "boolean"):
        if not labels or len(labels) > 40:
            return 0.0
        return _label_fit(t, target.label, _target(target).codes, tuple(labels.values()))
    if t in ("country", "language"):
        width = 2 if t == "country" else 3
        keys = [c for c in labels if isinstance(c, str)]
        ok = sum(len(c) == width and c.isalpha() for c in keys)
        return 1.0 if vm.type == "string" and len(keys) >= 20 and ok >= 0.8 * len(keys) else 0.0
    if t in ("integer", "number"):
        if vm.type != "numeric":
            return 0.0
        if target.range and len(labels) >= 2:
            lo, hi = target.range
            return 1.0 if lo in labels and hi in labels else 0.5
        return 1.0 if len(labels) <= 2 else 0.3
    return 0.5 if vm.type == "string" or not labels else 0.2


@lru_cache(maxsize=65536)
def _label_fit(ttype: str, tlabel: str, codes: tuple[tuple[str, str], ...], labels: tuple[str, ...]) -> float:
    """:func:`value_fit` of a category or boolean target from its source's substantive labels (many
    source variables share a label set: an agreement scale, yes/no)."""
    hits = [_code_match(lab, ttype, tlabel, codes) for lab in labels]
    if ttype == "boolean" and any(h[1] == 0.5 for h in hits):
        return 0.8
    matched = {h[0] for h in hits if h[1] == 1.0}
    wanted = 2 if ttype == "boolean" else len(codes)
    return min(1.0, len(matched) / max(wanted, 1)) * sum(h[1] == 1.0 for h in hits) / len(hits)


@dataclass(frozen=True)
class Candidate:
    name: str
    score: float
    label: str
    alias: bool = False
    parts: dict[str, float] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class _Target:
    """What scoring needs of a target, worked out once: ranking a file scores every target against every
    variable. ``codes`` as :func:`_code_match` takes them; ``words``: its label and name; ``all_words``:
    with its definition and code labels too."""

    target: Variable
    codes: tuple[tuple[str, str], ...]
    words: frozenset[str]
    all_words: frozenset[str]


_TARGETS: dict[int, _Target] = {}  # by id, holding the target (so its id is not reused while kept)


def _target(target: Variable) -> _Target:
    hit = _TARGETS.get(id(target))
    if hit is None or hit.target is not target:
        words = tokens(target.label) | tokens(target.name)
        all_words = words | tokens(target.definition) | frozenset().union(*(tokens(c) for c in (target.codes or {}).values()))
        hit = keep(_TARGETS, id(target), _Target(target, tuple((target.codes or {}).items()), words, all_words), 4096)
    return hit


def _parts(target: Variable, vm: VarMeta, aliases: frozenset[str],
           labels: dict[Code, str] | None) -> tuple[float, float, float, float, bool]:
    """(total, label recall, precision, value fit, alias) of ``vm`` for ``target``."""
    facts = _target(target)
    t_label, t_all = facts.words, facts.all_words
    s_label = tokens(vm.label) or tokens(vm.name)
    recall = covered(t_label, s_label)
    precision = covered(s_label, t_all)
    values = value_fit(target, vm, labels)
    total = 0.45 * recall + 0.3 * precision + 0.25 * values
    alias = vm.name.lower() in aliases
    if alias:
        total += ALIAS_BONUS
    return total, recall, precision, values, alias


def _candidate(vm: VarMeta, parts: tuple[float, float, float, float, bool]) -> Candidate:
    total, recall, precision, values, alias = parts
    return Candidate(vm.name, round(total, 3), vm.label, alias,
                     {"label": round(recall, 2), "precision": round(precision, 2), "values": round(values, 2)})


def score(target: Variable, vm: VarMeta, aliases: frozenset[str] = frozenset(),
          labels: dict[Code, str] | None = None) -> Candidate:
    """Similarity of source variable ``vm`` to ``target`` (``labels``: its substantive labels, if known)."""
    return _candidate(vm, _parts(target, vm, aliases, labels))


def rank(target: Variable, meta: SourceMeta, aliases: frozenset[str] = frozenset(), n: int = 5,
         labels: dict[str, dict[Code, str]] | None = None) -> list[Candidate]:
    """The ``n`` best candidates, best first (ties by variable order in the file).

    ``labels`` caches :func:`substantive_labels` per variable when ranking many targets.
    """
    labels = labels if labels is not None else {}
    for name, vm in meta.variables.items():
        if name not in labels:
            labels[name] = substantive_labels(vm)
    # every variable is scored, only the best n become candidates (ordered by the score they show)
    scored = [(-round(p[0], 3), i, vm, p) for i, vm in enumerate(meta.variables.values())
              for p in [_parts(target, vm, aliases, labels[vm.name])]]
    scored.sort(key=lambda x: x[:2])
    return [_candidate(vm, p) for _, _, vm, p in scored[:n]]


def name_key(text: str) -> str:
    """A name compared loosely: folded, punctuation dropped, words sorted ('Korea, Republic of' =
    'Republic of Korea')."""
    return " ".join(sorted(re.split(r"[^a-z0-9]+", fold(text)))).strip()


def row_names(row: dict[str, object]) -> frozenset[str]:
    """Every name a reference row goes by: its name, its aliases, and each part of a '; ' list."""
    names = [str(row.get("name", "")), *map(str, row.get("aliases", []) or [])]  # type: ignore[call-overload]
    parts = [p for n in names for p in (n, *n.split("; "))]
    return frozenset(name_key(p) for p in parts if p.strip())


def table_conflicts(labels: dict[Code, str], values: dict[Code, object],
                    rows: dict[str, dict[str, object]]) -> list[tuple[Code, str, str, str]]:
    """Codes whose value label in the file names another country or language than the code's target:
    (code, file label, target code, target name). Codes without a label or a reference row are skipped."""
    out = []
    for code, label in labels.items():
        target = values.get(code)
        row = rows.get(str(target)) if target is not None else None
        if row is not None and name_key(label) not in row_names(row) and not _residual(label, row):
            out.append((code, label, str(target), str(row.get("name", target))))
    return out


def _residual(label: str, row: dict[str, object]) -> bool:
    """'Other EU country' agrees with a residual row ('Other or unspecified country'): both name the rest."""
    return fold(label).lstrip().startswith("other") and fold(str(row.get("name", ""))).startswith("other")


def map_conflicts(var: Variable, values: dict[Code, object], labels: dict[Code, str]) -> list[tuple[Code, str, object, object]]:
    """Codes a rule maps against their value label: the label names another target code clearly and shares
    no word with the mapped one ('Male' mapped to female). (code, label, mapped, what the label names)."""
    out: list[tuple[Code, str, object, object]] = []
    codes = var.codes or {}
    for code, label in labels.items():
        if code not in values:
            continue
        mapped = values[code]
        best, cover, jac = code_match(label, var)
        if best is None or best == mapped or cover < 1.0 or jac < 0.5:
            continue
        if var.type == "boolean" or not (tokens(label) & (tokens(str(codes.get(str(mapped), ""))) | tokens(str(mapped)))):
            out.append((code, label, mapped, best))
    return out


def _words(text: str) -> frozenset[str]:
    """Match keys of ``text`` without numbers and question numbers ('(0-10)', '(Q63)')."""
    return frozenset(w for w in tokens(text) if not re.fullmatch(r"<?[a-z]{0,2}[0-9]+[a-z]?", w))


def label_recall(target: Variable, vm: VarMeta) -> float:
    """Share of the target label's words that the source's label names."""
    return covered(_words(target.label), _words(vm.label) or tokens(vm.name))


def label_precision(target: Variable, vm: VarMeta) -> float:
    """Share of the source label's words that the target's label, name, definition or codes explain."""
    explained = tokens(target.label) | tokens(target.name) | tokens(target.definition)
    explained |= frozenset().union(*(tokens(c) for c in (target.codes or {}).values()))
    return covered(_words(vm.label) or tokens(vm.name), explained)
