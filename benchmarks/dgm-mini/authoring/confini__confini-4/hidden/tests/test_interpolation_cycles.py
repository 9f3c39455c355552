import re

import pytest

import confini
from confini import ConfigError, InterpolationError


def read(text, section, key):
    return confini.loads(text)[section][key]


def cycle(*links):
    return re.escape(" -> ".join(links))


def test_self_reference():
    with pytest.raises(InterpolationError, match=cycle("[a] x", "[a] x")):
        read("[a]\nx = ${x}\n", "a", "x")


def test_two_key_cycle_is_reported_from_the_key_read():
    text = "[paths]\ndata = ${cache}/data\ncache = ${data}/cache\n"
    with pytest.raises(InterpolationError, match=cycle("[paths] data", "[paths] cache", "[paths] data")):
        read(text, "paths", "data")
    with pytest.raises(InterpolationError, match=cycle("[paths] cache", "[paths] data", "[paths] cache")):
        read(text, "paths", "cache")


def test_cycle_across_sections():
    text = "[a]\nx = ${b:y}\n[b]\ny = ${a:x}\n"
    with pytest.raises(InterpolationError, match=cycle("[a] x", "[b] y", "[a] x")):
        read(text, "a", "x")


def test_cycle_further_down_the_chain():
    text = "[a]\nstart = ${x}\nx = ${y}\ny = ${x}\n"
    with pytest.raises(InterpolationError, match=cycle("[a] x", "[a] y", "[a] x")):
        read(text, "a", "start")


def test_cycle_through_default_section():
    text = "[DEFAULT]\nx = ${y}\n[a]\ny = ${x}\n"
    with pytest.raises(InterpolationError, match=cycle("[a] y", "[a] x", "[a] y")):
        read(text, "a", "y")


def test_cycle_is_a_config_error_for_typed_getters():
    config = confini.loads("[a]\nn = ${n}\n")
    with pytest.raises(ConfigError):
        config["a"].get_int("n")


def test_repeated_reference_is_not_a_cycle():
    assert read("[a]\nx = ${y}-${y}\ny = ${z}\nz = 1\n", "a", "x") == "1-1"


def test_long_chain_is_not_a_cycle():
    lines = [f"k{i} = ${{k{i + 1}}}" for i in range(60)] + ["k60 = end"]
    assert read("[a]\n" + "\n".join(lines) + "\n", "a", "k0") == "end"
