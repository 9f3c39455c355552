import pytest

import confini

CANONICAL = """\
[DEFAULT]
root = /srv/app
mode = fast

[server]
data = ${root}/data
allowed = 10.0.0.0/8
    192.168.0.0/16
empty =
mode = slow

[worker]
log = ${server:data}/worker.log
"""


def snapshot(config):
    sections = {"DEFAULT": config.defaults}
    sections.update((name, config[name]) for name in config)
    return {name: {k: s.raw(k) for k in s.own_keys()} for name, s in sections.items()}


def test_canonical_text_round_trips_exactly():
    assert confini.dumps(confini.loads(CANONICAL)) == CANONICAL


def test_multi_line_values_are_indented():
    config = confini.loads("[a]\nallowed =\n    one\n    two\n")
    text = confini.dumps(config)
    assert confini.loads(text)["a"]["allowed"] == "one\ntwo"


def test_references_are_written_unexpanded():
    text = confini.dumps(confini.loads(CANONICAL))
    assert "data = ${root}/data" in text
    assert confini.loads(text)["worker"]["log"] == "/srv/app/data/worker.log"


def test_defaults_are_not_copied_into_sections():
    text = confini.dumps(confini.loads(CANONICAL))
    assert text.count("root = ") == 1
    reloaded = confini.loads(text)
    assert reloaded["worker"].own_keys() == ["log"]
    assert reloaded["worker"]["mode"] == "fast"
    assert reloaded["server"]["mode"] == "slow"


def test_built_config_round_trips():
    config = confini.Config()
    config.defaults.set("base", "/opt")
    web = config.add_section("web")
    web.set("static", "${base}/static")
    web.set("banner", "line one\nline two\nline three")
    web.set("blank", "")
    config.add_section("empty")
    reloaded = confini.loads(confini.dumps(config))
    assert snapshot(reloaded) == snapshot(config)
    assert list(reloaded) == ["web", "empty"]


def test_unrepresentable_value_raises():
    config = confini.Config()
    config.add_section("web").set("banner", "one\n\nthree")
    with pytest.raises(ValueError, match=r"\[web\] banner"):
        confini.dumps(config)
