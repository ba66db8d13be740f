"""Output folders (harmonise/outdir.py): only files harmonise wrote are replaced or removed, links are
never followed, foreign files stop the command (exit 2) unless --force, and a failed write leaves no
partial file. Issue 20, defects 1, 4 and 9."""

from __future__ import annotations

import os
from pathlib import Path

import jinja2
import pytest

from harmonise.errors import UsageError
from harmonise.outdir import MANIFEST, SCRATCH, OutputFolder
from harmonise.reports.codebook import write_files
from harmonise.spec.project import load_project
from tests.conftest import ROOT, run

FILES = {"html/index.html": "<p>new</p>\n", "markdown/README.md": "# x\n", "ddi/a.xml": "<a/>\n"}


def tree(folder: Path) -> dict[str, bytes | str]:
    """Every file (its bytes) and link (``-> target``) under ``folder``."""
    out: dict[str, bytes | str] = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_symlink():
            out[rel] = f"-> {os.readlink(p)}"
        elif p.is_file():
            out[rel] = p.read_bytes()
    return out


def test_only_files_harmonise_wrote_are_removed(tmp_path: Path) -> None:
    write_files(FILES, tmp_path)
    (tmp_path / "html" / "mine.html").write_text("the user's page")
    (tmp_path / "markdown" / "notes.md").write_text("the user's notes")
    removed = write_files({"html/index.html": "<p>v2</p>\n"}, tmp_path)
    assert removed == 2  # markdown/README.md and ddi/a.xml: written before, not now
    assert tree(tmp_path) == {MANIFEST: tree(tmp_path)[MANIFEST], "html/index.html": b"<p>v2</p>\n",
                              "html/mine.html": b"the user's page", "markdown/notes.md": b"the user's notes"}
    assert (tmp_path / MANIFEST).read_text().splitlines()[1:] == ["html/index.html"]


def test_foreign_file_at_a_target_stops_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "markdown").mkdir()
    (tmp_path / "markdown" / "README.md").write_text("the user's readme")
    before = tree(tmp_path)
    with pytest.raises(UsageError) as err:
        write_files(FILES, tmp_path)
    assert str(err.value) == (f"{tmp_path / 'markdown' / 'README.md'}: exists and harmonise did not write it — move "
                              "them away, choose another --out folder, or pass --force to replace them")
    assert tree(tmp_path) == before
    write_files(FILES, tmp_path, force=True)
    assert (tmp_path / "markdown" / "README.md").read_text() == "# x\n"


def test_links_are_never_followed(tmp_path: Path) -> None:
    out, outside = tmp_path / "cb", tmp_path / "outside"
    outside.mkdir()
    (outside / "a.xml").write_text("linked folder's file")
    (outside / "target.md").write_text("a linked file's target")
    out.mkdir()
    (out / "ddi").symlink_to(outside)  # a linked folder
    (out / "markdown").mkdir()
    (out / "markdown" / "README.md").symlink_to(outside / "target.md")  # a linked file
    (out / "html").mkdir()
    (out / "html" / "index.html").symlink_to(tmp_path / "nowhere.html")  # a dangling link
    before, outside_before = tree(out), tree(outside)
    with pytest.raises(UsageError) as err:
        write_files(FILES, out)
    assert str(err.value).count("is a symbolic link (harmonise does not write through links)") == 3
    assert (tree(out), tree(outside)) == (before, outside_before)
    write_files(FILES, out, force=True)  # the links themselves are replaced, their targets untouched
    assert tree(outside) == outside_before and not (tmp_path / "nowhere.html").exists()
    assert {k: v for k, v in tree(out).items() if k != MANIFEST} == {k: v.encode() for k, v in FILES.items()}


def test_stale_removal_does_not_reach_through_a_link(tmp_path: Path) -> None:
    out, outside = tmp_path / "cb", tmp_path / "outside"
    write_files(FILES, out)
    outside.mkdir()
    (outside / "a.xml").write_text("keep")
    (out / "ddi" / "a.xml").unlink()
    (out / "ddi").rmdir()
    (out / "ddi").symlink_to(outside)
    assert write_files({"html/index.html": "<p>new</p>\n"}, out) == 1  # markdown/README.md only
    assert tree(outside) == {"a.xml": b"keep"}


def test_a_folder_harmonise_did_not_write_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "html" / "index.html").mkdir(parents=True)
    with pytest.raises(UsageError) as err:
        write_files(FILES, tmp_path, force=True)
    assert str(err.value) == (f"{tmp_path / 'html' / 'index.html'}: is a folder harmonise did not write — move them "
                              "away or choose another --out folder")


def test_a_failed_write_leaves_the_previous_file_and_no_partial(tmp_path: Path) -> None:
    write_files(FILES, tmp_path)
    folder = OutputFolder(tmp_path)
    with pytest.raises(RuntimeError), folder:
        folder.begin(["html/index.html"])
        with folder.path("html/index.html") as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert (tmp_path / "html" / "index.html").read_text() == FILES["html/index.html"]
    assert not (tmp_path / SCRATCH).exists()


def test_out_that_is_a_file_or_a_dangling_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "missing")
    with pytest.raises(UsageError, match="exists and is not a folder; pass a folder as --out"):
        OutputFolder(tmp_path / "f")
    with pytest.raises(UsageError, match="is a dangling symbolic link"):
        OutputFolder(tmp_path / "dangling")
    assert not (tmp_path / "missing").exists()


def test_fixtures_do_not_overwrite_real_data_files(tmp_path: Path) -> None:
    code, out, _ = run("fixtures", "--out", str(tmp_path), "--survey", "ties", "--rows", "30")
    assert code == 0
    written = [Path(p) for p in out.splitlines()]
    code, again, _ = run("fixtures", "--out", str(tmp_path), "--survey", "ties", "--rows", "30")
    assert (code, again) == (0, out)  # its own files are replaced
    (tmp_path / MANIFEST).unlink()  # as if the files were the real release files
    real = {p: p.read_bytes() + b"real" for p in written}
    for p, data in real.items():
        p.write_bytes(data)
    code, _, err = run("fixtures", "--out", str(tmp_path), "--survey", "ties", "--rows", "30")
    found = "; ".join(f"{p}: exists and harmonise did not write it" for p in written)  # one file a TIES wave
    assert code == 2 and err == (f"error: {found} — move them away, choose another --out folder, or pass --force to "
                                 "replace them\n")
    assert all(p.read_bytes() == data for p, data in real.items())
    code, _, _ = run("fixtures", "--out", str(tmp_path), "--survey", "ties", "--rows", "30", "--force")
    assert code == 0 and all(p.read_bytes() == data[:-4] for p, data in real.items())


def test_export_replaces_its_own_file_and_refuses_foreign_ones(fr_db: Path, tmp_path: Path) -> None:
    target = tmp_path / "respondents.sav"
    target.symlink_to(tmp_path / "elsewhere.sav")  # dangling: must not be followed
    code, _, err = run("export", "--format", "sav", "--out", str(tmp_path), "--db", str(fr_db))
    assert code == 2 and err.startswith(f"error: {target}: is a symbolic link")
    assert not (tmp_path / "elsewhere.sav").exists()
    target.unlink()
    target.write_bytes(b"the user's own file")
    code, _, err = run("export", "--format", "sav", "--out", str(tmp_path), "--db", str(fr_db))
    assert code == 2 and target.read_bytes() == b"the user's own file"
    code, out, _ = run("export", "--format", "sav", "--out", str(tmp_path), "--db", str(fr_db), "--force")
    assert (code, out) == (0, f"{target}\n")
    first = target.read_bytes()
    code, out, _ = run("export", "--format", "sav", "--out", str(tmp_path), "--db", str(fr_db))
    assert (code, out) == (0, f"{target}\n") and target.read_bytes()[:4] == first[:4] == b"$FL2"
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST, "respondents.sav"]


def test_a_failed_export_leaves_no_partial_file(fr_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyreadstat

    def fail(frame: object, path: str, **kw: object) -> None:
        Path(path).write_bytes(b"$FL2 half a file")
        raise OSError(28, "No space left on device", path)

    monkeypatch.setattr(pyreadstat, "write_sav", fail)
    code, _, err = run("export", "--format", "sav", "--out", str(tmp_path), "--db", str(fr_db))
    assert code == 2 and "No space left on device; check the path, free space and permissions" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST]
    monkeypatch.undo()
    code, _, _ = run("export", "--format", "sav", "--out", str(tmp_path), "--db", str(fr_db))
    assert code == 0 and (tmp_path / "respondents.sav").read_bytes()[:4] == b"$FL2"


def test_codebook_refuses_a_foreign_file_before_rendering_anything(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """`codebook --out` into a folder holding a file of the user's rendered the whole codebook (1–3 s) before it
    said the file was in the way; the paths are known before rendering, and are checked first."""
    from harmonise.reports import codebook

    (tmp_path / "html").mkdir()
    (tmp_path / "html" / "index.html").write_text("the user's page")

    def rendered(*_: object) -> str:
        raise AssertionError("rendered before the folder was checked")

    monkeypatch.setattr(codebook, "wave_ddi", rendered)
    monkeypatch.setattr(codebook, "harmonised_ddi", rendered)
    monkeypatch.setattr(jinja2.Template, "render", rendered)
    code, _, err = run("codebook", "--out", str(tmp_path))
    assert (code, err) == (2, (f"error: {tmp_path / 'html' / 'index.html'}: exists and harmonise did not write it — "
                              "move them away, choose another --out folder, or pass --force to replace them\n"))
    assert (tmp_path / "html" / "index.html").read_text() == "the user's page"
    monkeypatch.undo()
    assert codebook.codebook_paths(codebook.build_codebook(load_project(ROOT))) == sorted(
        codebook.render_codebook(codebook.build_codebook(load_project(ROOT))))
