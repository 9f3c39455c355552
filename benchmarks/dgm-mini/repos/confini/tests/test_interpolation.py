import pytest

import confini
from confini import InterpolationError

TEXT = """\
[DEFAULT]
root = /srv/app

[paths]
data = ${root}/data
cache = ${data}/cache
price = $$5 for ${root}

[backup]
target = ${paths:cache}/backup
"""


@pytest.fixture
def config():
    return confini.loads(TEXT)


def test_reference_to_default(config):
    assert config["paths"]["data"] == "/srv/app/data"


def test_chained_references(config):
    assert config["paths"]["cache"] == "/srv/app/data/cache"


def test_cross_section_reference(config):
    assert config["backup"]["target"] == "/srv/app/data/cache/backup"


def test_escaped_dollar(config):
    assert config["paths"]["price"] == "$5 for /srv/app"


def test_raw_is_not_interpolated(config):
    assert config["paths"].raw("cache") == "${data}/cache"


def test_missing_reference():
    config = confini.loads("[a]\nx = ${nope}\n")
    with pytest.raises(InterpolationError, match="nope"):
        config["a"]["x"]


def test_stray_dollar():
    config = confini.loads("[a]\nx = costs $5\n")
    with pytest.raises(InterpolationError, match="stray"):
        config["a"]["x"]
