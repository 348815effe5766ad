import pytest

from saelib.core.verdicts import Verdict, by_count, print_verdicts, verdict_table


def test_verdicts_are_one_of_four_and_counted_honestly(capsys):
    assert [by_count(2, 2), by_count(1, 2), by_count(0, 2), by_count(0, 0)] == [
        "reproduced",
        "partly",
        "not reproduced",
        "not testable here",
    ]
    with pytest.raises(ValueError, match="verdict must be one of"):
        Verdict("c", "", "", "mostly", "")
    rows = [Verdict("claim a", "paper 1", "ours 0.5 [0.4, 0.6]", "partly", "why")]
    assert verdict_table(rows).loc["claim a", "verdict"] == "partly"
    print_verdicts(rows)
    assert capsys.readouterr().out == "verdict · claim a: partly\n"


def test_show_verdicts_never_cuts_a_cell(capsys):
    from saelib.core.verdicts import show_verdicts

    why = "a long reason " * 20 + "END"
    show_verdicts([Verdict("claim b", "", "ours", "reproduced", why)])
    assert "END" in capsys.readouterr().out
