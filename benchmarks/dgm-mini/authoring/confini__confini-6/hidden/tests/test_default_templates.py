import pytest

import confini
from confini import InterpolationError

SERVICES = """\
[DEFAULT]
url = http://${host}:${port}/
port = 80
health = ${url}health

[staging]
host = staging.example.com

[prod]
host = example.com
port = 8080

[links]
prod_health = ${prod:health}
"""


@pytest.fixture
def config():
    return confini.loads(SERVICES)


def test_inherited_value_uses_the_sections_keys(config):
    assert config["prod"]["url"] == "http://example.com:8080/"


def test_inherited_value_falls_back_to_defaults(config):
    assert config["staging"]["url"] == "http://staging.example.com:80/"


def test_inherited_value_referring_to_inherited_value(config):
    assert config["prod"]["health"] == "http://example.com:8080/health"


def test_cross_section_reference_to_inherited_value(config):
    assert config["links"]["prod_health"] == "http://example.com:8080/health"


def test_reading_default_itself_still_uses_default(config):
    with pytest.raises(InterpolationError, match="host"):
        config["DEFAULT"]["url"]


def test_typed_getter_on_inherited_template():
    config = confini.loads("[DEFAULT]\ntimeout = ${base}0\n[a]\nbase = 3\n")
    assert config["a"].get_int("timeout") == 30
