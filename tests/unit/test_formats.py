"""Export formats give back exactly the values when read by the tools they are for."""

from __future__ import annotations

import json
import subprocess

from hypothesis import given, settings
from hypothesis import strategies as st

from jobsecrets.formats import render

awkward = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=0,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(value=awkward)
def test_shell_export_round_trips_through_sh(value: str) -> None:
    script = render("shell", {"V": value}) + 'printf %s "$V"'
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout
    assert out == value.encode("utf-8"), "shell quoting changed the value"


def test_dotenv_single_quotes_every_value_for_sh() -> None:
    assert render("dotenv", {"A": "plain"}) == "A='plain'\n"
    assert render("dotenv", {"A": "it's\n$HOME"}) == "A='it'\\''s\n$HOME'\n"
    assert render("dotenv", {"A": 'q"\\`'}) == "A='q\"\\`'\n"


def test_json_is_sorted_and_exact() -> None:
    env = {"B": "x\ny", "A": "é"}
    assert json.loads(render("json", env)) == env
