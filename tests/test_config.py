"""The server configuration (fastdicom.config): the TOML file, its errors, the policy, flags over the file."""

from __future__ import annotations

import pytest

from fastdicom.config import ConfigError, Peer, ServerConfig, from_dict, load, parse_peer

TOML = """
[local]
ae_title = "ARCHIVE"
port = 4242
archive = "/srv/archive"

[limits]
match_limit = 50
pending_interval = 0.5

[matching]
pn_case_insensitive = false

[peers.MODALITY]
host = "10.0.0.2"
port = 104
may = ["store", "destination"]

[peers."VIEWER 1"]
may = ["query", "retrieve"]

[peers.WORKSTATION]
host = "::1"
port = 11113
"""


def test_load_the_documented_file(tmp_path):
    path = tmp_path / "fastdicom.toml"
    path.write_text(TOML)
    c = load(str(path))
    assert (c.ae_title, c.port, c.archive) == ("ARCHIVE", 4242, "/srv/archive")
    assert c.limits.match_limit == 50 and c.limits.pending_interval == 0.5 and c.limits.max_uids == 100_000
    assert c.pn_case_insensitive is False
    assert c.allowed_aes == {"MODALITY", "VIEWER 1", "WORKSTATION"}
    assert c.may("MODALITY", "store") and not c.may("MODALITY", "query")
    assert c.may("VIEWER 1", "retrieve") and not c.may("VIEWER 1", "store")
    assert not c.may("STRANGER", "store")  # only named peers, allow_any is false
    assert c.destination("MODALITY").address == "MODALITY@10.0.0.2:104"
    assert c.destination("VIEWER 1") is None  # no address
    assert c.destination("WORKSTATION").address == "WORKSTATION@[::1]:11113"  # default rights: all
    assert c.address_of("WORKSTATION") == ("::1", 11113)


def test_no_file_lets_anyone_store_query_retrieve_but_move_nowhere():
    c = load(None)
    assert c.allowed_aes is None
    assert all(c.may("ANYONE", r) for r in ("store", "query", "retrieve", "commit"))
    assert c.destination("ANYONE") is None


def test_allow_any_with_anyone_rights():
    c = from_dict({"local": {"allow_any": True, "anyone": ["store"]}, "peers": {"PACS": {"may": ["query"]}}})
    assert c.allowed_aes is None
    assert c.may("STRANGER", "store") and not c.may("STRANGER", "query")
    assert c.may("PACS", "query") and not c.may("PACS", "store")


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"local": {"port": 70000}}, "local.port"),
        ({"local": {"port": "11112"}}, "expected int"),
        ({"local": {"colour": "red"}}, "unknown keys"),
        ({"limits": {"match_limit": 0}}, "must be positive"),
        ({"limits": {"match_limit": True}}, "expected int"),
        ({"peers": {"A": {"host": "x"}}}, "both host and port"),
        ({"peers": {"A": {"may": ["fly"]}}}, "unknown rights"),
        ({"peers": {"A": {"may": ["destination"]}}}, "needs host and port"),
        ({"peers": {"WAY TOO LONG AE TITLE": {}}}, "not an AE title"),
        ({"peers": {"BACK\\SLASH": {}}}, "not an AE title"),
        ({"sections": {}}, "unknown keys"),
    ],
)
def test_errors_name_the_key(doc, message):
    with pytest.raises(ConfigError, match=message.replace("\\", "\\\\")):
        from_dict(doc)


def test_bad_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[local\nport = 1")
    with pytest.raises(ConfigError, match="bad.toml"):
        load(str(bad))
    with pytest.raises(ConfigError, match="cannot read"):
        load(str(tmp_path / "missing.toml"))


def test_flags_override_the_file():
    c = from_dict({"local": {"port": 1000}, "peers": {"A": {}}})
    o = c.override(port=2000, ae_title=None, peers=[parse_peer("DEST@127.0.0.1:4006")], limits={"match_limit": 7})
    assert o.port == 2000 and o.ae_title == "FASTDICOM" and o.limits.match_limit == 7
    assert o.allowed_aes == {"A", "DEST"} and o.destination("DEST").port == 4006
    # --peer without a file names a destination and locks nobody out; --allow admits only those named.
    assert ServerConfig().override(peers=[Peer("D", "h", 1)]).may("STRANGER", "store")
    allowed = ServerConfig().override(allow=["ONLY"])
    assert allowed.allowed_aes == {"ONLY"} and allowed.destination("ONLY") is None
    with pytest.raises(TypeError):
        c.override(colour="red")
