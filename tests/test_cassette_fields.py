"""The field table (`llmvcr.cassette.fields`) drives every writer and reader: a field added to
the table alone is written in its place by both writers, read back by both readers, kept by
appends; and the key order each of them uses is the table's."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from llmvcr.cassette import (
    Cassette,
    CassetteError,
    Chunk,
    Interaction,
    Request,
    Response,
    Style,
    appendable,
    dump_interactions,
    dumps,
    fields,
    loads,
    loads_appended,
    open_list,
)
from llmvcr.cassette.fastreader import fast_loads
from llmvcr.cassette.fields import Field, Kind, Omit, Section
from llmvcr.cassette.fullreader import full_loads
from support.reference_writer import reference_dumps

STYLES = [Style(2, True), Style(2, False), Style(4, True), Style(4, False)]


# ---- a new field, added to the table only


@dataclasses.dataclass(slots=True)
class PriorityRequest(Request):
    priority: int = 0


@dataclasses.dataclass(slots=True)
class RegionResponse(Response):
    region: str = ""


def _inserted(section: Section, model: type, after: str, new: Field) -> Section:
    at = section.names().index(after) + 1
    return Section(section.key, model, (*section.fields[:at], new, *section.fields[at:]))


@pytest.fixture
def extended(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The table with `priority` (always written) after a request's `content_length`, and
    `region` (left out when empty) after a response's `status`."""
    request = _inserted(
        fields.REQUEST, PriorityRequest, "content_length", Field("priority", Kind.INT)
    )
    response = _inserted(
        fields.RESPONSE, RegionResponse, "status", Field("region", Kind.TEXT, Omit.EMPTY)
    )
    monkeypatch.setattr(fields, "REQUEST", request)
    monkeypatch.setattr(fields, "RESPONSE", response)
    yield


def _interaction(n: int, region: str = "eu-west-1") -> Interaction:
    request = PriorityRequest(method="POST", url=f"https://api.example.com/v1/{n}", priority=n + 3)
    request.body = b'{"n":%d}' % n
    request.content_length = len(request.body)
    response = RegionResponse(body=b"{}", headers={"Content-Type": ["application/json"]})
    response.region = region
    return Interaction(request, response, n)


def _keys_of(data: bytes, section: str, style: Style) -> list[str]:
    """The keys of the first `section` mapping in `data`, in file order."""
    layout = 2 * style.indent if style.indent == 4 else 4
    text = data.decode()
    start = text.index(f"{section}:\n") + len(section) + 2
    keys = []
    for line in text[start:].split("\n"):
        m = re.fullmatch(rf" {{{layout}}}([a-z_]+):.*", line)
        if m:
            keys.append(m[1])
        elif line and not line.startswith(" " * layout):
            break
    return keys


@pytest.mark.parametrize("style", STYLES)
def test_a_field_added_to_the_table_is_written_in_its_place(extended: None, style: Style) -> None:
    data = dumps(Cassette([_interaction(0)], style))
    request_keys = _keys_of(data, "request", style)
    assert request_keys[request_keys.index("content_length") + 1] == "priority"
    response_keys = _keys_of(data, "response", style)
    assert response_keys[response_keys.index("status") + 1] == "region"
    assert " priority: 3\n" in data.decode()
    assert " region: eu-west-1\n" in data.decode()
    # the emitter-only reference writer reads the same table
    assert reference_dumps(Cassette([_interaction(0)], style)) == data


@pytest.mark.parametrize("style", STYLES)
def test_a_field_added_to_the_table_is_read_back_by_both_readers(
    extended: None, style: Style
) -> None:
    original = Cassette([_interaction(0), _interaction(1, region="")], style)
    data = dumps(original)
    fast = fast_loads(data)
    assert fast is not None, "the fast reader declined a file its own writer wrote"
    full = full_loads(data, "x.yaml")
    for loaded in (fast, full, loads(data)):
        assert loaded.interactions == original.interactions
        assert type(loaded.interactions[0].request) is PriorityRequest
        assert loaded.interactions[1].request.priority == 4  # type: ignore[attr-defined]
        assert loaded.interactions[0].response.region == "eu-west-1"  # type: ignore[attr-defined]
        assert not loaded.interactions[0].request.extra
        assert loaded.style == style
    assert dumps(full) == data


def test_the_omit_rule_of_an_added_field_comes_from_the_table(extended: None) -> None:
    empty_region = Cassette([_interaction(0, region="")], Style(2, True))
    assert b"region:" not in dumps(empty_region)
    assert b"    region: \"\"\n" in dumps(Cassette([_interaction(0, region="")], Style(2, False)))
    # `priority` is never left out: a file without it is refused
    data = dumps(Cassette([_interaction(0)], Style(2, True))).replace(b"    priority: 3\n", b"")
    with pytest.raises(CassetteError, match=r"interactions\[0\]\.request: missing key priority"):
        loads(data, "x.yaml")


@pytest.mark.parametrize("style", STYLES)
def test_appends_carry_an_added_field(extended: None, style: Style) -> None:
    existing = dumps(Cassette([_interaction(0)], style))
    assert appendable(existing, style, 1) is None
    added = dump_interactions([_interaction(1), _interaction(2)], style, 1)
    new = loads_appended(added)
    assert [i.request.priority for i in new] == [4, 5]  # type: ignore[attr-defined]
    assert [i.id for i in new] == [1, 2]
    whole = open_list(existing) + added
    assert whole == dumps(Cassette([_interaction(n) for n in range(3)], style))
    assert loads(whole).interactions == [_interaction(n) for n in range(3)]


def test_without_the_table_entry_the_key_is_unknown() -> None:
    """The control: the same file read with the table as it is keeps `priority` as an unknown
    key, so the tests above see the table at work."""
    with pytest.MonkeyPatch.context() as patch:
        request = _inserted(
            fields.REQUEST, PriorityRequest, "content_length", Field("priority", Kind.INT)
        )
        patch.setattr(fields, "REQUEST", request)
        data = dumps(Cassette([_interaction(0)], Style(2, True)))
    loaded = loads(data)
    assert type(loaded.interactions[0].request) is Request
    assert loaded.interactions[0].request.extra == {"priority": "3"}


# ---- the table is the key order of every writer and reader


def _full_interaction() -> Interaction:
    """Every field non-empty, so every key is written in every style."""
    request = Request(
        method="POST",
        url="https://api.example.com/v1/x?a=1",
        body=b"a=1",
        headers={"Content-Type": ["application/x-www-form-urlencoded"]},
        form={"a": ["1"]},
        transfer_encoding=["chunked"],
        trailer={"X-T": ["t"]},
        host="api.example.com",
        remote_addr="127.0.0.1:5",
        request_uri="/v1/x?a=1",
        content_length=3,
    )
    response = Response(
        body=b"data: x\n\n",
        headers={"Content-Type": ["text/event-stream"]},
        transfer_encoding=["chunked"],
        trailer={"X-T": ["t"]},
        uncompressed=True,
        duration=1_500_000_000,
        chunks=[Chunk(0, 9)],
    )
    return Interaction(request, response)


@pytest.mark.parametrize("style", STYLES)
def test_every_writer_writes_the_tables_key_order(style: Style) -> None:
    cassette = Cassette([_full_interaction()], style)
    for data in (dumps(cassette), reference_dumps(cassette)):
        assert _keys_of(data, "request", style) == list(fields.REQUEST.names())
        assert _keys_of(data, "response", style) == list(fields.RESPONSE.names())


def test_go_vcr_loads_every_key_in_every_style(
    tmp_path: Path, govcr_check: Callable[[Iterable[Path]], None]
) -> None:
    paths = []
    for style in STYLES:
        path = tmp_path / f"indent{style.indent}-{'omit' if style.omit_empty else 'full'}.yaml"
        path.write_bytes(dumps(Cassette([_full_interaction(), _full_interaction()], style)))
        paths.append(path)
    govcr_check(paths)


def test_the_table_names_every_attribute_of_the_model() -> None:
    for section in (fields.REQUEST, fields.RESPONSE):
        attributes = [f.name for f in dataclasses.fields(section.model) if f.name != "extra"]
        assert sorted(attributes) == sorted(section.names())
        assert len(set(section.names())) == len(section.names())


@pytest.mark.parametrize("section", [fields.REQUEST, fields.RESPONSE], ids=lambda s: s.key)
def test_both_readers_require_the_tables_required_keys(section: Section) -> None:
    data = dumps(Cassette([_full_interaction()], Style(2, True)))
    for name in section.names():
        required = name in section.required()
        pattern = rb"(?<=\n)    %s:.*\n(?:    [ -].*\n)*" % name.encode()
        text = data.decode()
        start = text.index(f"  {section.key}:\n")
        head, tail = data[:start], data[start:]
        broken = head + re.sub(pattern, b"", tail, count=1)
        assert broken != data
        if required:
            assert fast_loads(broken) is None
            with pytest.raises(CassetteError, match=f"missing key {name}"):
                loads(broken)
        else:
            loaded = full_loads(broken, "x.yaml")
            assert getattr(loaded.interactions[0], section.key).extra == {}
            assert fast_loads(broken) in (None, loaded)
