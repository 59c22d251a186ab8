"""The measurements' pages say what the committed results say: every table block of docs/benchmarks.md and the
README, regenerated from benchmarks/results/*.json by benchmarks/tables.py, is exactly what the page holds, and
every table the script knows has its block. Nothing is run but the script's pure functions; no data is needed."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def load_tables():
    spec = importlib.util.spec_from_file_location("benchmark_tables", ROOT / "benchmarks" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tables = load_tables()
RESULTS = tables.load_results()


@pytest.mark.parametrize("page", tables.PAGES, ids=[p.name for p in tables.PAGES])
def test_the_tables_of_the_page_are_what_the_results_give(page):
    text = page.read_text()
    assert tables.tables_in(text), f"{page.name} has no table block"
    expected = tables.render(text, RESULTS)
    stale = [
        name
        for name, held, wanted in zip(
            tables.tables_in(text), tables.BLOCK.finditer(text), tables.BLOCK.finditer(expected), strict=True
        )
        if held["body"] != wanted["body"]
    ]
    assert not stale, f"{page.name}: tables {stale} differ from benchmarks/results; run python benchmarks/tables.py"
    assert expected == text


def test_every_table_the_script_knows_is_on_a_page_once():
    names = [name for page in tables.PAGES for name in tables.tables_in(page.read_text())]
    assert sorted(names) == sorted(tables.TABLES), "each table of benchmarks/tables.py belongs in exactly one block"


def test_a_changed_result_changes_its_table():
    changed = {**RESULTS, "gan": {**RESULTS["gan"], "rows": [dict(RESULTS["gan"]["rows"][0], fid=99.5)]}}
    assert "| 99.50 |" in tables.TABLES["gan-recipes"](changed)
    assert "| 99.50 |" not in tables.TABLES["gan-recipes"](RESULTS)


def test_an_unknown_table_block_is_an_error():
    with pytest.raises(KeyError, match="unknown table"):
        tables.render("<!-- table: no-such-table -->\n<!-- end table -->", RESULTS)


def test_rounding_keeps_the_stored_decimals():
    assert tables.fixed(2.605, 2) == "2.60"  # to even, from the stored 2.605 (not its binary neighbour)
    assert tables.fixed(66.5, 0, "up") == "67"
    assert tables.fixed(0.8325, 2) == "0.83"
    assert tables.whole(454.5) == "454"
