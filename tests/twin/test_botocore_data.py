"""botocore's data files come back from the cache exactly as botocore decodes them."""

from __future__ import annotations

import logging
from pathlib import Path

import botocore
import botocore.loaders
import pytest

from threadline.twin.botocore_data import CachedJSONFileLoader

MODEL = "sqs/2012-11-05/service-2"  # small enough to decode many times, with nested maps and lists


def _model_path() -> str:
    return str(Path(botocore.__file__).parent / "data" / MODEL)


def _entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("botocore-*.marshal"))


def test_a_model_is_decoded_once_then_read_from_the_cache_equal_to_botocore_s(tmp_path, monkeypatch):
    expected = botocore.loaders.JSONFileLoader().load_file(_model_path())
    loader = CachedJSONFileLoader(tmp_path)

    first = loader.load_file(_model_path())
    assert first == expected and list(first) == list(expected)  # same data, same order
    assert len(_entries(tmp_path)) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although the cache holds the file")

    monkeypatch.setattr(botocore.loaders.JSONFileLoader, "_load_file", no_decoding)
    again = CachedJSONFileLoader(tmp_path).load_file(_model_path())
    assert again == expected
    assert list(again["shapes"]) == list(expected["shapes"])


def test_a_missing_file_is_none_as_botocore_says(tmp_path):
    assert CachedJSONFileLoader(tmp_path).load_file(str(tmp_path / "no-such-model")) is None
    assert _entries(tmp_path) == []


def test_an_unreadable_entry_is_decoded_again_and_replaced(tmp_path, caplog):
    loader = CachedJSONFileLoader(tmp_path)
    expected = loader.load_file(_model_path())
    [entry] = _entries(tmp_path)
    entry.write_bytes(b"\x00 not marshal")

    with caplog.at_level(logging.WARNING, logger="threadline.twin"):
        assert CachedJSONFileLoader(tmp_path).load_file(_model_path()) == expected
    assert "unreadable botocore cache entry" in caplog.text
    assert CachedJSONFileLoader(tmp_path).load_file(_model_path()) == expected  # the entry was written anew
    assert entry.read_bytes() != b"\x00 not marshal"


def test_a_changed_file_is_a_new_entry(tmp_path):
    source = tmp_path / "data" / "model.json"
    source.parent.mkdir()
    source.write_text('{"version": 1, "shapes": {"b": 1, "a": 2}}', encoding="utf-8")
    cache = tmp_path / "cache"
    assert CachedJSONFileLoader(cache).load_file(str(source.with_suffix(""))) == {"version": 1,
                                                                                 "shapes": {"b": 1, "a": 2}}
    source.write_text('{"version": 22, "shapes": {}}', encoding="utf-8")
    assert CachedJSONFileLoader(cache).load_file(str(source.with_suffix(""))) == {"version": 22, "shapes": {}}
    assert len(_entries(cache)) == 2


def test_a_cache_folder_that_cannot_be_written_still_answers(tmp_path):
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("", encoding="utf-8")
    expected = botocore.loaders.JSONFileLoader().load_file(_model_path())
    assert CachedJSONFileLoader(blocked / "cache").load_file(_model_path()) == expected


@pytest.mark.parametrize("service", ["ec2", "stepfunctions"])
def test_a_client_made_on_the_cached_loader_knows_every_operation(tmp_path, service):
    import botocore.session

    for _ in range(2):  # decoded, then from the cache
        session = botocore.session.get_session()
        loader = botocore.loaders.create_loader()
        loader.file_loader = CachedJSONFileLoader(tmp_path)
        session.register_component("data_loader", loader)
        model = session.get_service_model(service)
        plain = botocore.session.get_session().get_service_model(service)
        assert model.operation_names == plain.operation_names
        assert model.metadata == plain.metadata
