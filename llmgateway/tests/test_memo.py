"""The request path's memos: bounded, the least recently used entry dropped first."""

from llmgateway.cache.memo import BoundedMemo


def test_a_full_memo_drops_the_least_recently_used_entry():
    memo = BoundedMemo(limit=2)
    memo.put("a", 1)
    memo.put("b", 2)
    assert memo.get("a") == 1  # "a" is now the most recently used
    memo.put("c", 3)
    assert memo.get("b") is None
    assert (memo.get("a"), memo.get("c")) == (1, 3)


def test_a_memo_forgets_everything_when_cleared():
    memo = BoundedMemo(limit=10)
    memo.put(("key", 1), "value")
    memo.clear()
    assert memo.get(("key", 1)) is None
