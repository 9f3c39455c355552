import pytest

import confini


def section(value):
    return confini.loads(f"[app]\nflag = {value}\n")["app"]


@pytest.mark.parametrize("value", ["True", "TRUE", "Yes", "ON", "On", "1"])
def test_true_in_any_case(value):
    assert section(value).get_bool("flag") is True


@pytest.mark.parametrize("value", ["False", "NO", "Off", "oFF", "0"])
def test_false_in_any_case(value):
    assert section(value).get_bool("flag") is False


@pytest.mark.parametrize("value", ["Truthy", "Y", "enabled"])
def test_other_words_still_rejected(value):
    with pytest.raises(ValueError, match="expected a boolean"):
        section(value).get_bool("flag")
