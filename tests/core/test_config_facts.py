"""What a config implies is derived when it is made, into frozen values; caches key on the
config itself, so equal configs must hash alike and nothing on one may be mutable."""

from __future__ import annotations

from dataclasses import fields, replace

from webhook.core.config import Config, load_config

TEXT = """
mirrors:
  - endpoint: http://plain.example:5000
    hosts: [docker.io]
  - endpoint: https://skip.example
    hosts: [quay.io]
    insecureSkipVerify: true
"""


def test_the_facts_say_what_the_config_declares_of_each_mirror_host() -> None:
    config = load_config(TEXT, source="cfg.yaml")
    facts = config.facts
    assert facts.http_hosts == {("plain.example", 5000)}
    assert facts.insecure_hosts == {("skip.example", 443), ("skip.example", None)}
    assert facts.declarations[("skip.example", None)].host == "skip.example"
    assert facts.declarations[("plain.example", 5000)].says("http")
    assert not facts.declarations[("plain.example", 5000)].says("insecure")


def test_equal_configs_hash_alike_and_a_changed_one_gets_its_own_facts() -> None:
    config = load_config(TEXT, source="cfg.yaml")
    again = load_config(TEXT, source="cfg.yaml")
    assert config == again and hash(config) == hash(again)
    assert hash(config.mirrors) == hash(again.mirrors)
    fewer = replace(config, mirrors=config.mirrors[:1])
    assert fewer.facts.insecure_hosts == frozenset()
    assert fewer.facts.http_hosts == config.facts.http_hosts


def test_a_config_holds_no_mutable_value() -> None:
    config = load_config(TEXT, source="cfg.yaml")
    for field in fields(Config):
        value = getattr(config, field.name)
        assert not isinstance(value, dict | list | set), field.name
