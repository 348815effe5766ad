from dataclasses import MISSING, fields

import pytest

from saelib.core.verdicts import Verdict, by_count, print_verdicts, verdict_table

RULES = {
    "rule": "reproduced if the interval lies above 0",
    "precondition": "none: nothing checks that the test can decide",
    "negative_control": "none that can fail: a random direction has cos² ≈ 1/576 with it",
    "positive_control": "token detectors score near 1 (checked)",
    "unit": "prompts,\n not clustered by name",
}


def test_verdicts_are_one_of_four_and_counted_honestly(capsys):
    assert [by_count(2, 2), by_count(1, 2), by_count(0, 2), by_count(0, 0)] == [
        "reproduced",
        "partly",
        "not reproduced",
        "not testable here",
    ]
    with pytest.raises(ValueError, match="verdict must be one of"):
        Verdict("c", "", "", "mostly", "", **RULES)
    rows = [Verdict("claim a", "paper 1", "ours 0.5 [0.4, 0.6]", "partly", "why", **RULES)]
    assert verdict_table(rows).loc["claim a", "verdict"] == "partly"
    assert list(verdict_table(rows).columns) == [f.name for f in fields(Verdict)][1:]
    print_verdicts(rows)
    assert capsys.readouterr().out == (
        "verdict · claim a: partly\n"
        "    rule: reproduced if the interval lies above 0\n"
        "    precondition: none: nothing checks that the test can decide\n"
        "    negative control: none that can fail: a random direction has cos² ≈ 1/576 with it\n"
        "    positive control: token detectors score near 1 (checked)\n"
        "    intervals over: prompts, not clustered by name\n"
    )


def test_a_verdict_cannot_omit_its_rule_precondition_controls_or_unit():
    with pytest.raises(TypeError, match="missing 5 required"):
        Verdict("claim a", "paper 1", "ours", "partly", "why")
    for name in RULES:
        partial = {k: v for k, v in RULES.items() if k != name}
        with pytest.raises(TypeError, match=name):
            Verdict("claim a", "paper 1", "ours", "partly", "why", **partial)
    assert all(f.default is MISSING and f.default_factory is MISSING for f in fields(Verdict))  # no defaults


def test_show_verdicts_never_cuts_a_cell(capsys):
    from saelib.core.verdicts import show_verdicts

    why = "a long reason " * 20 + "END"
    show_verdicts([Verdict("claim b", "", "ours", "reproduced", why, **{**RULES, "unit": "features END2"})])
    out = capsys.readouterr().out
    assert "END" in out and "END2" in out and "negative_control" in out
