"""Payload parsing in bulk (sagewatch.payloads), checked against independent implementations.

The JSON text the pyarrow reader sees is compared with what the regex rewrite it replaced produces
(RE2, through pyarrow); CSV and JSON rows are compared with Python's csv and json modules.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sagewatch import payloads

# The rewrite sagewatch applied with RE2 before the NumPy scan: a number or boolean standing as a
# list element is quoted. Two passes, because a match consumes the comma the next element needs.
LIST_SCALAR = r"([\[,]\s*)(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false)(\s*[,\]])"


def regex_lines(documents: list[str], quote: bool) -> str:
    """The reader's text as the regex rewrite and a Python join make it."""
    texts = pa.array(documents, pa.string())
    for _ in range(2 if quote else 0):
        texts = pc.replace_substring_regex(texts, LIST_SCALAR, r'\1"\2"\3')
    return "".join('{"v":' + document + "}\n" for document in texts.to_pylist())


def our_lines(documents: list[str], quote: bool) -> str:
    text, longest = payloads._json_text(pa.array(documents, pa.string()), quote)
    lines = bytes(text).decode().splitlines()
    assert longest >= max(len(line.encode()) for line in lines)
    return bytes(text).decode()


@pytest.mark.parametrize(
    "documents",
    [
        ['{"instances": [{"features": [1.5, -2, "north", true, false, null]}]}'],
        ["[1,2,3]", "[ 1 , 2 ,\t3 ]", "[[1],[2, [3]]]"],
        ['{"a": 1, "b": [0, 01, 1e5, 1E-5, -0.0, 2.]}'],  # 01 and 2. are not JSON numbers
        ['["x,1,y", "[2]"]'],  # inside strings too (the read then fails: the slow path decides)
        ['{"a":1,2:3}'],  # a number before `:` is a key, never quoted
        ["1.5", "[1", "2]", ",3]"],  # no context across documents
        ["[" + "1" * 60 + ", -" + "2" * 45 + "]"],  # longer than the automaton's span
        ["[          7          ]", "[\f8\r]", "[\x0b9]"],  # long runs of whitespace; VT is not \s
        ["[truex, true1, falsey, nul, -, -x, 1-2, 1.5.5, 1e, 1e+, .5]"],
        ['["é", 3, "ü"]'],
    ],
)
def test_json_text_matches_the_regex_rewrite(documents: list[str]) -> None:
    assert our_lines(documents, quote=True) == regex_lines(documents, quote=True)
    assert our_lines(documents, quote=False) == regex_lines(documents, quote=False)


JSONISH = st.lists(
    st.sampled_from(
        [
            *'[]{},:"-+.eE0123456789 \t\f\r\x0bxé',
            *["true", "false", "null", "1.5", "-0", "01", "1e5", "       ", "12345678901234567890" * 3],
        ]
    ),
    min_size=1,
    max_size=40,
).map("".join)


@pytest.mark.fuzz
@settings(max_examples=500, deadline=None)
@given(st.lists(JSONISH.filter(lambda d: d.strip() != ""), min_size=1, max_size=6))
def test_json_text_matches_the_regex_rewrite_on_any_text(documents: list[str]) -> None:
    assert our_lines(documents, quote=True) == regex_lines(documents, quote=True)


def naive_csv(bodies: list[str], width: int) -> list[tuple[int, list[str] | int]]:
    """(body index, values or the count found) of every non-blank line, by Python's csv module."""
    found = []
    for body_index, body in enumerate(bodies):
        for line in body.replace("\r", "").split("\n"):
            if not line.strip():
                continue
            values = next(csv.reader(io.StringIO(line)))
            found.append((body_index, values if len(values) == width else len(values)))
    return found


@pytest.mark.parametrize(
    "bodies",
    [
        ["1,2,north\n", "3,4,south"],  # with and without a final newline
        ["1,2,north\r\n3,4,south\r\n"],
        ["\n\n1,2,north\n\n", "", "   \n\t\n", "5,6,west"],  # empty and blank lines, an empty body
        ["\u00a0\n1,2,north\n\u2003 \n"],  # lines of Unicode whitespace are blank too
        ['1,"2,5","a ""quoted"" region"\n', "1,2\n", "1,2,3,4\n7,8,east\n"],  # wrong counts
        ['" x",, \n', "é,ü,ß\n"],
    ],
)
def test_csv_rows_match_pythons_csv_module(bodies: list[str]) -> None:
    names = ["age", "income", "region"]
    rows = payloads.csv_rows(pa.array(bodies, pa.string()), np.arange(len(bodies)) * 10, names)
    expected = naive_csv(bodies, len(names))
    assert rows.event.tolist() == [10 * body for body, _ in expected]
    got = [
        [rows.columns[name][i].as_py() for name in names] if rows.problem[i] is None else rows.problem[i]
        for i in range(rows.count)
    ]
    assert got == [
        values
        if isinstance(values, list)
        else f"expected 3 comma-separated values (age, income, region), got {values}"
        for _, values in expected
    ]


def test_csv_numbers_read_as_numbers_only_when_all_are_plain() -> None:
    names = ["age", "income"]
    numbers = {"age": pa.int64(), "income": pa.float64()}
    clean = payloads.csv_rows(pa.array(["1,2.5\n", " 3 ,\n"]), np.arange(2), names, numbers)
    assert clean.clean == {"age", "income"}
    assert clean.columns["age"].type == pa.int64()
    assert clean.columns["age"].to_pylist() == [1, 3]
    assert clean.columns["income"].to_pylist() == [2.5, None]
    for odd in ("1,inf\n", "1,NaN\n", "1.5,2\n", "x,2\n", '1,""\n'):
        rows = payloads.csv_rows(pa.array([odd]), np.arange(1), names, numbers)
        assert rows.columns["age"].type == pa.string(), odd  # left to values.coerce, with its messages
        assert rows.clean == frozenset()
        assert [rows.columns[n][0].as_py() for n in names] == next(csv.reader(io.StringIO(odd)))


def test_json_rows_of_a_group_with_one_broken_body() -> None:
    """GIVEN JSON bodies of several shapes, one of them invalid
    WHEN they are read together
    THEN every good body gives its rows, as json.loads reads them, and the broken one its reason."""
    names = ["age", "income", "region"]
    bodies = [
        json.dumps({"instances": [{"features": [1, 2.5, "north"]}, {"features": [3, 4.5, "south"]}]}),
        '{"instances": [[5, 6.5, "east"]',
        json.dumps([[7, 8.5, "west"]]),
        json.dumps({"instances": [{"age": 9, "income": 10.5, "region": "north"}]}),
        json.dumps({"instances": [[11, 12.5]]}),
    ]
    rows = payloads.json_rows(pa.array(bodies), np.arange(len(bodies)), names, mixed_lists=True)
    assert rows.event_problems == {1: "invalid JSON: Expecting ',' delimiter at character 31"}
    with pytest.raises(json.JSONDecodeError) as error:
        json.loads(bodies[1])
    assert (error.value.msg, error.value.pos) == ("Expecting ',' delimiter", 31)
    assert rows.event.tolist() == [0, 0, 2, 3, 4]
    values = [
        [str(rows.columns[n][i].as_py()) for n in names] for i in range(rows.count) if rows.problem[i] is None
    ]
    assert values == [
        [str(v) for v in row]
        for row in ([1, 2.5, "north"], [3, 4.5, "south"], [7, 8.5, "west"], [9, 10.5, "north"])
    ]
    assert rows.problem[4] == "expected 3 values (age, income, region), got 2"


def test_json_rows_of_pretty_printed_bodies_and_json_lines() -> None:
    """GIVEN a pretty-printed body (CRLF line ends), a JSON Lines body and a one-line body
    WHEN they are read together
    THEN each gives the rows json.loads finds in it, line by line for JSON Lines."""
    names = ["age", "income", "region"]
    pretty = json.dumps({"instances": [[1, 2.5, "north"], [3, 4.5, "south"]]}, indent=2).replace("\n", "\r\n")
    lines = "\n".join(json.dumps([v]) for v in ([5, 6.5, "east"], [7, 8.5, "west"])) + "\n"
    single = json.dumps({"instances": [[9, 10.5, "north"]]})
    rows = payloads.json_rows(pa.array([pretty, lines, single]), np.array([0, 1, 2]), names, mixed_lists=True)
    assert rows.event.tolist() == [0, 0, 1, 1, 2]
    assert all(problem is None for problem in rows.problem)
    values = [[str(rows.columns[n][i].as_py()) for n in names] for i in range(rows.count)]
    expected = [*json.loads(pretty)["instances"], *(json.loads(line)[0] for line in lines.splitlines())]
    expected += json.loads(single)["instances"]
    assert values == [[str(v) for v in row] for row in expected]
