import pytest

from minicalc import CalcError, Session, UnknownNameError


def test_variables_persist():
    s = Session()
    assert s.run("r = 1.5") == 1.5
    assert s.run("area = pi * r * r") == pytest.approx(7.0685834705770345)
    assert s.variables["area"] == pytest.approx(7.0685834705770345)


def test_last_result():
    s = Session()
    s.run("6 * 7")
    assert s.run("_ + 1") == 43
    assert s.run("_ * 2") == 86


def test_blank_line():
    assert Session().run("   ") is None


def test_cannot_assign_last_result():
    with pytest.raises(CalcError):
        Session().run("_ = 3")


def test_failed_statement_changes_nothing():
    s = Session()
    s.run("x = 1")
    with pytest.raises(UnknownNameError):
        s.run("x = y + 1")
    assert s.variables["x"] == 1
