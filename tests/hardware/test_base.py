"""Architectures are opaque to hardware: stable cache keys and JSON-serialisable records."""

from __future__ import annotations

import json
from types import MappingProxyType

import pytest

from hardware.base import arch_cache_key, arch_record


def test_cache_key_is_the_string_or_sorted_json_of_the_mapping():
    nb201 = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|avg_pool_3x3~2|"
    assert arch_cache_key(nb201) == nb201 and arch_record(nb201) == nb201
    a = {"1<-0": "nor_conv_3x3", "2<-0": "skip_connect"}
    b = {"2<-0": "skip_connect", "1<-0": "nor_conv_3x3"}  # same arch, other insertion order
    assert arch_cache_key(a) == arch_cache_key(b) == json.dumps(a, sort_keys=True)
    assert arch_cache_key(a) != arch_cache_key({**a, "2<-0": "none"})
    frozen = MappingProxyType(a)  # any Mapping, recorded as a plain dict
    assert arch_record(frozen) == a and type(arch_record(frozen)) is dict
    with pytest.raises(TypeError, match="string or a mapping"):
        arch_cache_key(["nor_conv_3x3"])
