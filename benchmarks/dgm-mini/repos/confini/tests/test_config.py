import pytest

import confini
from confini import MissingKeyError, MissingSectionError

TEXT = """\
[DEFAULT]
timeout = 30
retries = 3

[http]
port = 0x1F90
ratio = 0.75
verbose = yes
quiet = off
hosts = a.example, b.example,
    c.example
retries = 5
"""


@pytest.fixture
def config():
    return confini.loads(TEXT)


def test_defaults_fill_in_missing_keys(config):
    assert config["http"]["timeout"] == "30"
    assert config["http"]["retries"] == "5"


def test_iteration_includes_defaults_once(config):
    assert list(config["http"]) == ["port", "ratio", "verbose", "quiet", "hosts", "retries", "timeout"]
    assert "timeout" in config["http"]
    assert "nothing" not in config["http"]


def test_default_section_is_reachable_but_not_listed(config):
    assert list(config) == ["http"]
    assert config["DEFAULT"]["timeout"] == "30"


def test_get_int_accepts_prefixes(config):
    assert config["http"].get_int("port") == 8080
    assert config["http"].get_int("retries") == 5


def test_get_float(config):
    assert config["http"].get_float("ratio") == 0.75


def test_get_bool(config):
    assert config["http"].get_bool("verbose") is True
    assert config["http"].get_bool("quiet") is False


def test_get_bool_rejects_other_words(config):
    config["http"].set("verbose", "maybe")
    with pytest.raises(ValueError, match="expected a boolean"):
        config["http"].get_bool("verbose")


def test_get_list_splits_on_commas_and_lines(config):
    assert config["http"].get_list("hosts") == ["a.example", "b.example", "c.example"]


def test_typed_getter_defaults(config):
    assert config["http"].get_int("missing", 7) == 7
    assert config["http"].get_bool("missing", None) is None
    with pytest.raises(MissingKeyError):
        config["http"].get_int("missing")


def test_bad_int(config):
    with pytest.raises(ValueError, match=r"\[http\] ratio: expected an integer"):
        config["http"].get_int("ratio")


def test_missing_section_and_key_messages(config):
    with pytest.raises(MissingSectionError) as err:
        config["nope"]
    assert str(err.value) == "no section [nope]"
    with pytest.raises(KeyError) as err:
        config["http"]["nope"]
    assert str(err.value) == "no key 'nope' in section [http]"


def test_raw_does_not_look_at_defaults(config):
    with pytest.raises(MissingKeyError):
        config["http"].raw("timeout")


def test_add_section_and_set():
    config = confini.Config()
    section = config.add_section("new")
    section.set("Key", "value")
    assert config["new"]["key"] == "value"
    with pytest.raises(ValueError):
        config.add_section("new")
    with pytest.raises(TypeError):
        section.set("n", 1)
