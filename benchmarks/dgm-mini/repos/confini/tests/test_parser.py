import pytest

import confini
from confini import DuplicateKeyError, DuplicateSectionError, ParseError

APP = """\
# application settings
[DEFAULT]
log_dir = /var/log/app

[server]
host = 0.0.0.0
Port: 8080
; keep this off in production
debug = no
allowed =
    10.0.0.0/8
    192.168.0.0/16

[worker]
threads = 4
"""


def test_sections_and_keys():
    config = confini.loads(APP)
    assert list(config) == ["server", "worker"]
    assert config["server"]["host"] == "0.0.0.0"
    assert config["worker"]["threads"] == "4"


def test_keys_are_case_insensitive():
    config = confini.loads(APP)
    assert config["server"]["port"] == "8080"
    assert config["server"]["PORT"] == "8080"


def test_multi_line_value():
    config = confini.loads(APP)
    assert config["server"]["allowed"] == "10.0.0.0/8\n192.168.0.0/16"


def test_value_keeps_delimiters_after_the_first():
    config = confini.loads("[a]\nurl = http://example.com:8080/?q=1\n")
    assert config["a"]["url"] == "http://example.com:8080/?q=1"


def test_empty_value():
    config = confini.loads("[a]\nkey =\nother = 1\n")
    assert config["a"]["key"] == ""


def test_comment_inside_multi_line_value_is_skipped():
    config = confini.loads("[a]\nitems =\n    one\n    # two\n    three\n")
    assert config["a"]["items"] == "one\nthree"


def test_blank_line_ends_multi_line_value():
    with pytest.raises(ParseError) as err:
        confini.loads("[a]\nitems =\n    one\n\n    two\n")
    assert err.value.lineno == 5


def test_key_outside_section():
    with pytest.raises(ParseError) as err:
        confini.loads("# header\nkey = value\n")
    assert err.value.lineno == 2
    assert str(err.value) == "line 2: key outside of any section"


def test_garbage_line():
    with pytest.raises(ParseError) as err:
        confini.loads("[a]\nx = 1\nthis is not valid\n")
    assert err.value.lineno == 3
    assert err.value.line == "this is not valid"


def test_duplicate_section_is_an_error_in_strict_mode():
    with pytest.raises(DuplicateSectionError) as err:
        confini.loads("[a]\nx = 1\n[a]\ny = 2\n")
    assert err.value.lineno == 3


def test_duplicate_key_is_an_error_in_strict_mode():
    with pytest.raises(DuplicateKeyError):
        confini.loads("[a]\nx = 1\nX = 2\n")


def test_lenient_mode_merges_and_last_value_wins():
    config = confini.loads("[a]\nx = 1\n[b]\n[a]\nx = 2\ny = 3\n", strict=False)
    assert dict(config["a"]) == {"x": "2", "y": "3"}


def test_load_reads_files(tmp_path):
    path = tmp_path / "app.ini"
    path.write_text(APP, encoding="utf-8")
    assert confini.load(path)["server"]["host"] == "0.0.0.0"
