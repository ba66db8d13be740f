"""docs/crosswalk.md: its key reference is generated from the crosswalk model and kept in sync."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from harmonise.authoring.formatdoc import BEGIN, DOC_PATH, END, MODELS, reference, splice, type_name
from harmonise.spec.crosswalk import Code, TargetValue
from tests.conftest import ROOT, run


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_model_field_is_described(model: type[BaseModel]) -> None:
    undescribed = [name for name, info in model.model_fields.items() if not (info.description or "").strip()]
    assert undescribed == [], f"add description= to these fields of {model.__name__} in harmonise/spec/crosswalk.py"


def test_every_key_is_in_the_reference() -> None:
    ref = reference()
    for model in MODELS:
        for name, info in model.model_fields.items():
            assert f"| `{info.alias or name}` |" in ref, (model.__name__, name)
            assert " ".join((info.description or "").split()) in ref, (model.__name__, name)


def test_committed_page_is_up_to_date() -> None:
    page = (ROOT / DOC_PATH).read_text(encoding="utf-8")
    assert page.count(BEGIN) == page.count(END) == 1
    assert splice(page) == page, "docs/crosswalk.md is stale: run `python -m harmonise.authoring.formatdoc`"


def test_splice_refuses_a_page_without_markers() -> None:
    with pytest.raises(ValueError, match="lacks the marker lines"):
        splice("# no markers\n")


def test_type_names() -> None:
    assert type_name(dict[Code, str] | None) == "mapping code (number or text) → text"
    assert type_name(TargetValue | None) == "value (boolean, number or text)"
    assert type_name(dict[str, Code | list[Code]]) == "mapping text → code (number or text) or list of code (number or text)"
    assert type_name(tuple[float, float]) == "[number, number]"


def test_readme_links_the_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "[crosswalk format](docs/crosswalk.md)" in readme


def test_the_shape_example_validates_but_for_the_targets_it_leaves_out(project: Path) -> None:
    """The example at the top of docs/crosswalk.md, as mappings/ess.yaml, is a crosswalk whose only errors are the
    schema targets it does not show (no-rule); its survey-wide missing codes had no `no_answer`, so gndr 9 and
    agea 999 were unmapped codes for an author who copied it."""
    page = (ROOT / "docs" / "crosswalk.md").read_text(encoding="utf-8")
    example = re.search(r"^```yaml\n(.*?)^```", page, re.DOTALL | re.MULTILINE)
    assert example is not None
    (project / "mappings" / "ess.yaml").write_text(example.group(1), encoding="utf-8")
    code, out, _ = run("validate", str(project / "mappings" / "ess.yaml"), "--format", "json", project=project)
    issues = json.loads(out)["issues"]
    assert code == 1 and issues and {i["code"] for i in issues} == {"no-rule"}
    assert not {"sex", "age", "country", "citizenship", "region_nuts"} & {i["path"].split(".")[1] for i in issues}
