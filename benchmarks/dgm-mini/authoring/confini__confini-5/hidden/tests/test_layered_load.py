import pytest

import confini
from confini import DuplicateKeyError, DuplicateSectionError, ParseError

DEFAULTS = """\
[DEFAULT]
log_dir = /var/log/app
level = info

[server]
host = 127.0.0.1
port = 8080
allowed =
    10.0.0.0/8
    192.168.0.0/16

[worker]
threads = 4
"""

SITE = """\
[DEFAULT]
level = warning

[server]
host = 0.0.0.0
allowed =
    172.16.0.0/12

[metrics]
enabled = yes
"""


@pytest.fixture
def files(tmp_path):
    defaults = tmp_path / "defaults.ini"
    defaults.write_text(DEFAULTS, encoding="utf-8")
    site = tmp_path / "site.ini"
    site.write_text(SITE, encoding="utf-8")
    return defaults, site


def test_later_files_override_keys(files):
    config = confini.load(files)
    assert config["server"]["host"] == "0.0.0.0"
    assert config["server"].get_int("port") == 8080
    assert config["worker"].get_int("threads") == 4
    assert config["metrics"].get_bool("enabled") is True


def test_sections_keep_first_appearance_order(files):
    assert list(confini.load(files)) == ["server", "worker", "metrics"]


def test_default_section_is_layered(files):
    config = confini.load(files)
    assert config["worker"]["level"] == "warning"
    assert config["worker"]["log_dir"] == "/var/log/app"


def test_multi_line_value_is_replaced_not_extended(files):
    config = confini.load(files)
    assert config["server"].get_list("allowed") == ["172.16.0.0/12"]


def test_any_iterable_of_paths(files):
    config = confini.load(str(path) for path in files)
    assert config["server"]["host"] == "0.0.0.0"


def test_single_path_still_works(files):
    assert confini.load(files[0])["server"]["host"] == "127.0.0.1"


def test_duplicates_within_one_file_are_still_errors(tmp_path, files):
    bad = tmp_path / "bad.ini"
    bad.write_text("[server]\nport = 1\nport = 2\n", encoding="utf-8")
    with pytest.raises(DuplicateKeyError) as err:
        confini.load([files[0], bad])
    assert err.value.source == str(bad)
    assert str(err.value) == f"{bad}, line 3: key 'port' already defined in section [server]"


def test_parse_error_names_the_file(tmp_path, files):
    broken = tmp_path / "local.ini"
    broken.write_text("[server]\nport = 9000\nthis is not valid\n", encoding="utf-8")
    with pytest.raises(ParseError) as err:
        confini.load([*files, broken])
    assert err.value.source == str(broken)
    assert err.value.lineno == 3
    assert str(err.value) == f"{broken}, line 3: expected '[section]' or 'key = value'"


def test_duplicate_section_error_names_the_file(tmp_path):
    path = tmp_path / "dup.ini"
    path.write_text("[a]\n[a]\n", encoding="utf-8")
    with pytest.raises(DuplicateSectionError) as err:
        confini.load(path)
    assert str(err.value) == f"{path}, line 2: section [a] already defined"


def test_loads_errors_have_no_source():
    with pytest.raises(ParseError) as err:
        confini.loads("[a]\n  stray\n")
    assert err.value.source is None
    assert str(err.value) == "line 2: indented line does not continue a value"


def test_parse_into_existing_config():
    config = confini.loads("[a]\nx = 1\ny = 2\n")
    result = confini.parse("[a]\nx = 10\n[b]\nz = 3\n", into=config)
    assert result is config
    assert dict(config["a"]) == {"x": "10", "y": "2"}
    assert config["b"]["z"] == "3"
