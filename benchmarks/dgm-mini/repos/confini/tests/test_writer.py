import confini

TEXT = """\
[server]
host = 0.0.0.0
port = 8080

[worker]
threads = 4
name =
"""


def test_dumps_simple_config():
    assert confini.dumps(confini.loads(TEXT)) == TEXT


def test_dumps_empty_config():
    assert confini.dumps(confini.Config()) == ""


def test_dumps_built_config():
    config = confini.Config()
    config.add_section("a").set("x", "1")
    config.add_section("b").set("y", "two words")
    assert confini.dumps(config) == "[a]\nx = 1\n\n[b]\ny = two words\n"
