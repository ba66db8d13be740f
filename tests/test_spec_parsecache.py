"""The parse cache of YAML declarations: reused when unchanged, never trusted beyond plain data."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from harmonise.spec import parsecache
from harmonise.spec.yamlload import load_yaml_file

DOC = "survey: ess\nwaves:\n  - wave: '9'\n    date: 2018-09-01\n    codes: {1: yes, 2: no}\n"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("HARMONISE_CACHE_DIR", str(folder))
    return folder


def test_a_clean_document_is_cached_and_reloads_equal(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(DOC)
    first = load_yaml_file(path, "x.yaml")
    assert [p.name for p in cache.iterdir()] == [parsecache.key(path.read_bytes(), "x.yaml")]
    again = load_yaml_file(path, "x.yaml")
    assert (again.data, again.index.lines, again.issues, again.text) == \
        (first.data, first.index.lines, [], DOC)
    assert again.index.line_of(("waves", 0, "codes", 2)) == 5


def test_an_edit_is_a_new_key_and_issues_are_never_cached(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(DOC)
    load_yaml_file(path, "x.yaml")
    path.write_text(DOC + "survey: evs\n")  # duplicate key: an issue, so not cached
    bad = load_yaml_file(path, "x.yaml")
    assert [i.code for i in bad.issues] == ["yaml-duplicate-key"]
    assert [i.code for i in load_yaml_file(path, "x.yaml").issues] == ["yaml-duplicate-key"]
    assert len(list(cache.iterdir())) == 1


def test_an_entry_holding_anything_but_plain_data_is_ignored(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(DOC)
    cache.mkdir()
    entry = cache / parsecache.key(path.read_bytes(), "x.yaml")
    entry.write_bytes(pickle.dumps((os.getcwd, {})))  # a global: refused by the unpickler, never called
    assert parsecache.get(entry.name) is None
    assert load_yaml_file(path, "x.yaml").data["survey"] == "ess"
    entry.write_bytes(b"\x80\x05garbage")
    assert load_yaml_file(path, "x.yaml").data["survey"] == "ess"


def test_off_disables_and_an_unwritable_folder_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(DOC)
    monkeypatch.setenv("HARMONISE_CACHE_DIR", "off")
    assert parsecache.folder() is None
    assert load_yaml_file(path, "x.yaml").data["survey"] == "ess"
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("HARMONISE_CACHE_DIR", str(blocker / "sub"))
    assert load_yaml_file(path, "x.yaml").data["survey"] == "ess"
    assert not (blocker / "sub").exists()
