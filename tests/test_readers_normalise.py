"""readers.files.normalise: per distinct value, it gives what the per-value definition gives on every row."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from harmonise.readers.files import EXT_SUFFIX, normalise
from harmonise.readers.textcodec import TextCodec
from harmonise.spec.source import SourceMeta, VarMeta


def by_row(df: pd.DataFrame, meta: SourceMeta, offset: int, codec: TextCodec | None) -> pd.DataFrame:
    """The definition, one value at a time (the implementation before it was vectorised)."""
    out: dict[str, Any] = {"__row": np.arange(offset + 1, offset + len(df) + 1, dtype=np.int64)}
    for col in df.columns:
        vm = meta.variables.get(col)
        s = df[col]
        if vm is not None and vm.type == "string":
            vals = s.astype("object").where(s.notna(), None)
            if codec is not None:
                vals = vals.map(lambda v: codec.fix(v) if isinstance(v, str) else v)
            vals = vals.map(lambda v: (v.rstrip() or None) if isinstance(v, str) else v)
            out[col] = pd.array(vals.to_numpy(), dtype="string")
            continue
        if s.dtype == object or meta.format == "dta":
            letters = s.map(lambda v: v if isinstance(v, str) else None).astype("object")
            out[col] = pd.to_numeric(s.where(letters.isna(), np.nan), errors="coerce").astype("float64").to_numpy()
            out[col + EXT_SUFFIX] = pd.array(letters.to_numpy(), dtype="string")
        else:
            out[col] = s.to_numpy(dtype="float64", na_value=np.nan)
    return pd.DataFrame(out)


TEXT = st.one_of(st.none(), st.just(float("nan")), st.sampled_from(["", " ", "FR ", "a\t", "Zürich", "\xc3\xa9t\xe9  "]),
                 st.text(alphabet=" abcé\xc3\xa9\x80", max_size=4))
NUMBER = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=False, width=32), st.integers(-99, 99))
LETTER = st.one_of(NUMBER, st.sampled_from(["a", "b", "z"]))


@settings(max_examples=150)
@given(rows=st.integers(0, 12).flatmap(lambda n: st.tuples(
    st.lists(TEXT, min_size=n, max_size=n), st.lists(NUMBER, min_size=n, max_size=n),
    st.lists(LETTER, min_size=n, max_size=n))),
    fmt=st.sampled_from(["sav", "dta"]), codec=st.sampled_from([None, "cp1252", "cp1250"]),
    offset=st.integers(0, 10**6))
def test_normalise_equals_the_per_value_definition(rows: tuple[list[Any], list[Any], list[Any]], fmt: str,
                                                   codec: str | None, offset: int) -> None:
    text, number, letter = rows
    df = pd.DataFrame({"s": pd.Series(text, dtype=object),
                       "x": pd.Series([np.nan if v is None else float(v) for v in number], dtype="float64"),
                       "m": pd.Series(letter, dtype=object)})
    meta = SourceMeta("f", {"s": VarMeta("s", type="string"), "x": VarMeta("x"), "m": VarMeta("m")}, format=fmt)
    tc = TextCodec(codec, utf8=True) if codec else None
    pd.testing.assert_frame_equal(normalise(df, meta, offset, tc), by_row(df, meta, offset, tc))
