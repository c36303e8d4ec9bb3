"""rag.serve.cli.main (the `rag` command) in-process with the fake embedder, and once as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from rag.serve.cli import main


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rag: error:")
    assert "Traceback" not in err
    return lines[0]


def test_index_missing_folder(tmp_path, capsys):
    code = main(["index", str(tmp_path / "nowhere"), "--index", str(tmp_path / "index"), "-q"])
    out, err = capsys.readouterr()
    assert code == 1
    line = one_error_line(err)
    assert "nowhere" in line and "does not exist" in line
    assert out == ""
    assert not (tmp_path / "index").exists()


def test_index_builds_then_reports_nothing_changed(toy_docs, tmp_path, capsys, fake_model):
    index = tmp_path / "index"
    assert main(["index", str(toy_docs), "--index", str(index), "--model", "fake-hash", "-q"]) == 0
    out, err = capsys.readouterr()
    assert "6 files" in out and "6 added" in out and err == ""
    assert main(["index", str(toy_docs), "--index", str(index), "-q"]) == 0
    out, _ = capsys.readouterr()
    assert "nothing changed" in out and "0 embedded" in out
    assert fake_model == ["fake-hash"]  # the second run needed no model


def test_index_warns_about_skipped_files(toy_docs, tmp_path, capsys, fake_model):
    (toy_docs / "blob.txt").write_bytes(b"\x00\x01\x02")
    assert main(["index", str(toy_docs), "--index", str(tmp_path / "index"), "--model", "fake-hash", "-q"]) == 0
    _, err = capsys.readouterr()
    assert [line for line in err.splitlines() if line.startswith("warning:")] == [
        line for line in err.splitlines() if line.strip()]
    assert "blob.txt" in err


def test_subprocess_index_warns_once_per_skipped_file(toy_docs, tmp_path):
    """As a real process (no pytest handler on the root logger): one line per skipped file, even though
    a library the build imports calls logging.basicConfig."""
    (toy_docs / "blob.txt").write_bytes(b"\x00\x01\x02")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import conftest, rag.index.build as b; "
            "b.document_embedder = lambda name='fake-hash': conftest.FakeEmbedder(name); "
            "from rag.serve.cli import main; sys.exit(main(sys.argv[2:]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT / "tests"), "index", str(toy_docs), "--index",
                           str(tmp_path / "index"), "--model", "fake-hash", "-q"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: skipped") and "blob.txt" in lines[0], proc.stderr


def test_index_lock_timeout_is_one_error_line(toy_docs, tmp_path, capsys, fake_model):
    from filelock import FileLock

    from rag.index.local import lock_path

    index = tmp_path / "index"
    with FileLock(lock_path(index)):  # another build holds the index
        code = main(["index", str(toy_docs), "--index", str(index), "--lock-timeout", "0.05", "-q"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    waiting, error = err.splitlines(keepends=True)  # it says it waits, then gives up in one line
    assert waiting.startswith("warning: waiting for another build") and str(lock_path(index)) in waiting
    line = one_error_line(error)
    assert "another build" in line and str(lock_path(index)) in line
    assert fake_model == [] and not index.exists()


def test_search_json(toy_index, toy_docs, capsys, fake_model):
    code = main(["search", "Why do cats purr and chase mice?", "--index", str(toy_index), "--docs", str(toy_docs),
                 "--json", "-k", "3"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert data["question"] == "Why do cats purr and chase mice?"
    passages = data["passages"]
    assert isinstance(passages, list) and 1 <= len(passages) <= 3
    for p in passages:
        assert {"doc", "start", "end", "text", "heading", "score"} <= set(p)
        assert isinstance(p["start"], int) and isinstance(p["end"], int) and isinstance(p["heading"], list)
        assert (toy_docs / p["doc"]).read_text(encoding="utf-8")[p["start"]:p["end"]] == p["text"]
    assert passages[0]["doc"] == "cat.txt"
    assert passages[0]["heading"] == ["The Cat"]
    assert [p["score"] for p in passages] == sorted((p["score"] for p in passages), reverse=True)
    assert fake_model == ["fake-hash"]


@pytest.mark.parametrize("mode", ["dense", "bm25"])
def test_search_text_output(toy_index, toy_docs, capsys, fake_model, mode):
    assert main(["search", "Do fish breathe through gills?", "--index", str(toy_index), "--mode", mode,
                 "-k", "1"]) == 0
    out, _ = capsys.readouterr()
    first = out.splitlines()[0]
    assert first.startswith("[1] ") and "fish.md:" in first and "Habitat" in first
    assert "Fish swim in rivers, lakes and oceans and breathe through gills." in out


def test_search_with_doc_and_year_filters(toy_index, capsys, fake_model):
    assert main(["search", "revenue", "--index", str(toy_index), "--doc", "report_2022", "--json"]) == 0
    assert {p["doc"] for p in json.loads(capsys.readouterr().out)["passages"]} == {"report_2022.txt"}
    assert main(["search", "revenue", "--index", str(toy_index), "--year", "2021", "--json"]) == 0
    assert {p["doc"] for p in json.loads(capsys.readouterr().out)["passages"]} == {"report_2021.txt"}


def test_search_unknown_doc(toy_index, capsys, fake_model):
    code = main(["search", "cats", "--index", str(toy_index), "--doc", "unicorn.txt"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert "unicorn.txt" in one_error_line(err)


@pytest.mark.parametrize("command", ["search", "ask"])
@pytest.mark.parametrize("k", [0, -3, 51, 1000])
def test_k_out_of_range_is_refused_not_clamped(toy_index, capsys, fake_model, command, k):
    code = main([command, "cats", "--index", str(toy_index), "-k", str(k)])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert one_error_line(err) == f"rag: error: k of {k} is out of range: choose 1 to 50 passages"


@pytest.mark.parametrize("args", [["-k", "0"], ["-k", "51"], ["?!?"]])
def test_bad_settings_cost_no_index_work(toy_docs, tmp_path, capsys, fake_model, args):
    index = tmp_path / "new-index"
    code = main(["search", "--index", str(index), "--docs", str(toy_docs), *(args if len(args) == 1 else ["cats", *args])])
    assert code == 1 and one_error_line(capsys.readouterr().err)
    assert not index.exists() and fake_model == []


def test_k_of_up_to_50_is_used_as_given(toy_index, capsys, fake_model):
    n = len([line for line in (toy_index / "passages.jsonl").read_text(encoding="utf-8").splitlines() if line])
    assert main(["search", "revenue", "--index", str(toy_index), "-k", "50", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["k"] == 50 and len(data["passages"]) == n < 50  # more than the web slider's 10 is fine
    assert main(["search", "revenue", "--index", str(toy_index), "-k", "2", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["passages"]) == 2


@pytest.mark.parametrize("command", ["search", "ask"])
def test_too_long_question_is_refused_before_any_index_work(tmp_path, toy_docs, capsys, fake_model, command):
    index = tmp_path / "index"
    code = main([command, "a" * 2001, "--index", str(index), "--docs", str(toy_docs)])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert one_error_line(err) == "rag: error: the question is 2,001 characters long; the limit is 2,000"
    assert not index.exists() and fake_model == []


def test_search_refuses_a_corrupted_index_and_rag_index_rebuilds_it(toy_index, toy_docs, capsys, fake_model):
    (toy_index / "dense.faiss").write_bytes(b"junk")
    assert main(["search", "cats purr", "--index", str(toy_index), "--json"]) == 1
    assert "dense.faiss does not match its checksum" in one_error_line(capsys.readouterr().err)
    assert main(["index", str(toy_docs), "--index", str(toy_index), "-q"]) == 0
    assert "rebuilt:" in capsys.readouterr().out
    assert main(["search", "cats purr", "--index", str(toy_index), "--json"]) == 0  # whole again: nothing to say
    out, err = capsys.readouterr()
    assert err == "" and json.loads(out)["passages"][0]["doc"] == "cat.txt"


def test_a_missing_index_other_than_the_default_is_an_error(tmp_path, capsys, fake_model):
    code = main(["search", "cats", "--index", str(tmp_path / "typo")])
    assert code == 1 and "no index at" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "typo").exists() and fake_model == []


def test_a_fresh_index_is_searched_while_a_build_holds_the_lock(toy_index, capsys, fake_model):
    from filelock import FileLock

    from rag.index.local import lock_path

    with FileLock(lock_path(toy_index)):  # another build runs: a search of an unchanged index does not wait
        assert main(["search", "cats purr", "--index", str(toy_index), "--mode", "bm25", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["passages"][0]["doc"] == "cat.txt"


def test_search_corrupted_index_without_its_documents(toy_index, toy_docs, tmp_path, capsys, fake_model):
    (toy_index / "dense.faiss").write_bytes(b"junk")
    toy_docs.rename(tmp_path / "moved")  # nothing to rebuild it from
    code = main(["search", "cats", "--index", str(toy_index), "--docs", str(tmp_path / "moved")])
    assert code == 1
    assert "dense.faiss" in one_error_line(capsys.readouterr().err)


def test_first_search_builds_the_index_and_says_so(toy_docs, tmp_path, capsys, fake_model):
    index = tmp_path / "index"
    assert main(["search", "fish gills", "--index", str(index), "--docs", str(toy_docs), "--json"]) == 0
    out, err = capsys.readouterr()
    assert err.strip() == f"no index at {str(index)!r} yet; building it from {str(toy_docs)!r}"
    assert json.loads(out)["passages"][0]["doc"] == "fish.md" and (index / "manifest.json").exists()


def test_a_stale_index_is_updated_before_searching(toy_index, toy_docs, capsys, fake_model):
    (toy_docs / "otters.md").write_text("# Otters\n\nSea otters hold hands while sleeping.\n", encoding="utf-8")
    assert main(["search", "otters hold hands", "--index", str(toy_index), "--mode", "bm25", "--json"]) == 0
    out, err = capsys.readouterr()
    [note] = err.strip().splitlines()
    assert note == f"index at {str(toy_index)!r} is stale (1 changed in {toy_docs.resolve()}: otters.md); updating it"
    assert json.loads(out)["passages"][0]["doc"] == "otters.md"


def test_ask_answers_with_citations(toy_index, toy_docs, capsys, fake_model):
    assert main(["ask", "Do fish breathe through gills?", "--index", str(toy_index), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["abstained"] is False and data["citations"] and "[1]" in data["answer"]
    c = data["citations"][0]
    assert (toy_docs / c["doc"]).read_text(encoding="utf-8")[c["start"]:c["end"]] == c["quote"]
    assert main(["ask", "Do fish breathe through gills?", "--index", str(toy_index)]) == 0
    text = capsys.readouterr().out
    assert f'"{c["quote"]}"' in text and f"[1] {c['doc']}, line " in text


def test_search_missing_index_and_docs(tmp_path, capsys):
    code = main(["search", "cats", "--index", str(tmp_path / "no-index"), "--docs", str(tmp_path / "no-docs")])
    assert code == 1
    assert "no index" in one_error_line(capsys.readouterr().err)


def test_index_into_the_documents_folder_is_refused(toy_docs, capsys, fake_model):
    before = sorted(p.name for p in toy_docs.iterdir())
    code = main(["index", str(toy_docs), "--index", str(toy_docs), "-q"])
    assert code == 1
    assert "not an index directory" in one_error_line(capsys.readouterr().err)
    assert sorted(p.name for p in toy_docs.iterdir()) == before


def test_os_error_is_one_error_line(toy_docs, tmp_path, capsys, fake_model):
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    code = main(["index", str(toy_docs), "--index", str(tmp_path / "a-file" / "index"), "-q"])
    assert code == 1
    assert "a-file" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("command", ["search", "ask"])
@pytest.mark.parametrize("question, message", [("", "the question is empty"), ("   ", "the question is empty"),
                                               ("?!?...", "no words")])
def test_question_without_words_is_one_error_line(toy_index, capsys, fake_model, command, question, message):
    code = main([command, question, "--index", str(toy_index), "--json"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert message in one_error_line(err)


@pytest.mark.parametrize("command", ["search", "ask"])
def test_unknown_year_names_the_years_there_are(toy_index, capsys, fake_model, command):
    code = main([command, "revenue", "--index", str(toy_index), "--year", "1999"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    line = one_error_line(err)
    assert "1999" in line and "2021, 2022" in line


@pytest.mark.parametrize("argv", [
    [],
    ["search"],
    ["search", "cats", "--mode", "nope"],
    ["search", "cats", "-k", "three"],
    ["search", "cats", "--year", "last"],
    ["frobnicate"],
    ["index", "--no-such-flag"],
])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_subprocess_missing_index_has_no_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-m", "rag.serve.cli", "search", "what is a cat?", "--index", str(tmp_path / "missing-index"),
         "--docs", str(tmp_path / "missing-docs")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rag: error:"), proc.stderr
    assert "missing-index" in lines[0]
    assert proc.stdout == ""
    assert not (tmp_path / "missing-index").exists()



@pytest.mark.parametrize("raw", [b"\xff cats purr", b"\xff\xfe"])
def test_subprocess_reads_undecodable_arguments_safely(toy_index, tmp_path, raw):
    """Bytes that are not UTF-8 on the command line: answered or refused in one line, never a traceback."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable.encode(), b"-m", b"rag.serve.cli", b"search", raw, b"--index",
                           str(toy_index).encode(), b"--mode", b"bm25"], cwd=tmp_path, env=env, capture_output=True,
                          timeout=120)
    assert b"Traceback" not in proc.stderr
    if raw == b"\xff\xfe":  # nothing but the undecodable bytes: no words left
        assert proc.returncode == 1 and proc.stderr.decode() == "rag: error: the question is empty\n"
    else:
        assert proc.returncode == 0 and b"cat.txt" in proc.stdout


PASSAGE_KEYS = {"doc", "start", "end", "heading", "title", "year", "kind", "line", "page", "page_breaks", "score",
                "text"}


def test_json_shapes_are_the_documented_contract(toy_index, capsys, fake_model):
    """Exactly the keys the README documents: none dropped, none renamed."""
    assert main(["search", "cats purr", "--index", str(toy_index), "-k", "2", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert set(found) == {"question", "mode", "k", "passages"}
    assert found["passages"] and all(set(p) == PASSAGE_KEYS for p in found["passages"])
    assert main(["ask", "What do cats chase?", "--index", str(toy_index), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert set(answer) == {"question", "original_question", "answer", "abstained", "reason", "score", "citations", "passages"}
    assert all(set(p) == PASSAGE_KEYS for p in answer["passages"])
    assert answer["citations"] and all(
        set(c) == {"n", "doc", "heading", "start", "end", "page", "quote", "paragraph", "score"}
        for c in answer["citations"])


def test_a_pdf_is_cited_by_page_in_text_and_json(tmp_path, capsys, fake_model):
    from fixture_files import pdf_bytes

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "harbour.pdf").write_bytes(pdf_bytes([
        "Miral Harbour Report\nThe old harbour of Lake Miral was rebuilt in 1998 by the town council.",
        "Grey herons nest in the tall reeds along the eastern shore of Lake Miral every spring.",
        "The Miral lighthouse keeper rings the brass fog bell forty times an hour during winter storms.",
    ]))
    index = ["--index", str(tmp_path / "index"), "--docs", str(docs)]
    question = "How often does the lighthouse keeper ring the brass fog bell?"
    assert main(["ask", question, *index, "--mode", "bm25", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["abstained"] is False, data
    [c] = [c for c in data["citations"] if "fog bell" in c["quote"]]
    assert c["doc"] == "harbour.pdf" and c["page"] == 3
    assert all(p["page"] in (1, 2, 3) for p in data["passages"])
    assert main(["ask", question, *index, "--mode", "bm25"]) == 0
    text = capsys.readouterr().out
    assert f"[{c['n']}] harbour.pdf, p. 3 (" in text and "line" not in text
    assert main(["search", "brass fog bell", *index, "--mode", "bm25", "-k", "1"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "  harbour.pdf:" in first and "  p. " in first
