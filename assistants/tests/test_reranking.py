"""A passage found just below the cut takes the last place when it is clearly nearer to the question."""

import numpy as np
import pytest

from assistants import reranking
from documents.search import SearchResult
from llmgateway import contextual


class _Doc:
    pk, title, content_version = 1, "Caching", 1


def _result(chunk, heading, text, by_meaning=True):
    return SearchResult(_Doc(), chunk, chunk, None, f"Caching › {heading}", text, text, 1.0, True, by_meaning)


def read_as(monkeypatch, cosines):
    """The contextual model's reading fixed: each passage's cosine with the question by its heading."""

    def encode(texts):
        rows = []
        for text in texts:
            c = cosines.get(text.split(":")[0], 1.0)  # the question itself: 1.0
            rows.append([c, (1 - c * c) ** 0.5])
        return np.array(rows, dtype=np.float32)

    monkeypatch.setattr(contextual, "available", lambda: True)
    monkeypatch.setattr(contextual, "encode", encode)
    monkeypatch.setattr(reranking, "cache", locmem())


def locmem():
    import uuid

    from django.core.cache.backends.locmem import LocMemCache

    return LocMemCache(f"reranking-{uuid.uuid4()}", {})  # caches of one name share their entries


RESULTS = [
    _result(1, "Listing", "pip cache list will list all wheel files."),
    _result(2, "Where", "The cache is in ~/.cache/pip."),
    _result(3, "Removing", "pip cache purge will clear all wheel files from pip's cache."),
]


def test_a_clearly_nearer_candidate_takes_the_last_place(monkeypatch):
    read_as(monkeypatch, {"Listing": 0.5, "Where": 0.4, "Removing": 0.6})
    assert [r.chunk_id for r in reranking.promote("How do I wipe every cached wheel?", RESULTS, 2, 1)] == [1, 3]
    # Not clearly nearer (by less than the margin): the search's order stays.
    read_as(monkeypatch, {"Listing": 0.5, "Where": 0.4, "Removing": 0.55})
    assert [r.chunk_id for r in reranking.promote("How do I wipe every cached wheel?", RESULTS, 2, 1)] == [1, 2]


def test_a_candidate_that_only_one_ranking_found_is_not_promoted(monkeypatch):
    read_as(monkeypatch, {"Listing": 0.5, "Where": 0.4, "Removing": 0.9})
    words_only = [*RESULTS[:2], _result(3, "Removing", RESULTS[2].text, by_meaning=False)]
    assert [r.chunk_id for r in reranking.promote("How do I wipe every cached wheel?", words_only, 2, 1)] == [1, 2]


def test_without_the_model_the_search_order_is_kept(monkeypatch):
    monkeypatch.setattr(contextual, "available", lambda: False)
    assert [r.chunk_id for r in reranking.promote("How do I wipe every cached wheel?", RESULTS, 2, 1)] == [1, 2]
    assert reranking.promote("anything", RESULTS[:2], 2, 1) == RESULTS[:2]  # nothing below the cut


def test_the_model_reads_the_heading_and_the_first_words():
    long = _result(4, "Removing the cache", "word " * 100)
    assert reranking.preview(long) == "Removing the cache: " + " ".join(["word"] * reranking.PREVIEW_WORDS)


def test_the_real_model_promotes_a_paraphrased_answer():
    if not contextual.available():
        pytest.skip("the contextual model is not installed")
    results = [
        _result(1, "Locally built wheels", "pip attempts to use wheels from its local wheel cache whenever possible."),
        _result(2, "HTTP responses", "This cache functions like a web browser cache for HTTP requests."),
        _result(3, "Removing the cache", "`pip cache purge` will clear all wheel files from pip's cache."),
    ]
    promoted = reranking.promote("How do I wipe out every wheel pip has cached?", results, 2, 1)
    assert [r.chunk_id for r in promoted] == [1, 3]


def test_a_passage_is_read_once_and_its_reading_shared_through_the_cache(monkeypatch):
    monkeypatch.setattr(reranking, "cache", locmem())
    read = []

    def encode(texts):
        read.extend(texts)
        return np.array([[1.0, 0.0] if "purge" in t else [0.0, 1.0] for t in texts], dtype=np.float32)

    monkeypatch.setattr(contextual, "encode", encode)
    first = reranking.readings(1, ["Removing: pip cache purge", "Listing: pip cache list"])
    assert read == ["Removing: pip cache purge", "Listing: pip cache list"]
    again = reranking.readings(1, ["Listing: pip cache list", "Removing: pip cache purge", "Where: ~/.cache/pip"])
    assert read[2:] == ["Where: ~/.cache/pip"]  # only the new text is read (another process would share them)
    assert again.tolist() == [first[1].tolist(), first[0].tolist(), [0.0, 1.0]]
    reranking.readings(2, ["Removing: pip cache purge"])
    assert read[3:] == ["Removing: pip cache purge"]  # another workspace's entries are its own


def test_a_cache_outage_costs_the_reading_never_the_answer(monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    cache = locmem()
    monkeypatch.setattr(cache, "get_many", down)
    monkeypatch.setattr(cache, "set_many", down)
    monkeypatch.setattr(reranking, "cache", cache)
    monkeypatch.setattr(contextual, "encode", lambda texts: np.ones((len(texts), 2), dtype=np.float32))
    assert reranking.readings(1, ["a", "b"]).shape == (2, 2)
