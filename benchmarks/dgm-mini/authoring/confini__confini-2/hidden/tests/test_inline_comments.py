import confini


def test_hash_comment_after_value():
    config = confini.loads("[server]\nport = 8080  # default http port\n")
    assert config["server"]["port"] == "8080"
    assert config["server"].get_int("port") == 8080


def test_semicolon_comment_after_value():
    config = confini.loads("[server]\nhost = example.com\t; production\n")
    assert config["server"]["host"] == "example.com"


def test_comments_after_continuation_lines():
    text = "[server]\nallowed =\n    10.0.0.0/8     # office\n    192.168.0.0/16 # vpn\n"
    config = confini.loads(text)
    assert config["server"].get_list("allowed") == ["10.0.0.0/8", "192.168.0.0/16"]


def test_prefix_without_whitespace_is_part_of_the_value():
    text = "[a]\ncolor = #ff0000\npath = /opt/a;/opt/b\nurl = http://host/page#anchor\n"
    section = confini.loads(text)["a"]
    assert section["color"] == "#ff0000"
    assert section["path"] == "/opt/a;/opt/b"
    assert section["url"] == "http://host/page#anchor"


def test_value_starting_with_hash_can_have_a_comment():
    config = confini.loads("[a]\ncolor = #ff0000  # red\n")
    assert config["a"]["color"] == "#ff0000"


def test_comment_after_interpolated_value():
    config = confini.loads("[a]\nroot = /srv\ndata = ${root}/data  # big\n")
    assert config["a"]["data"] == "/srv/data"
