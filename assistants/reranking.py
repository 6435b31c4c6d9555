"""A second reading of the retrieved passages: one found just below the cut can take the last place.

The search (documents.search, through the workspace's own passages) fuses a ranking by words with
one by a static embedding model; a question in other words than the documents' ("wipe out every
wheel pip has cached" for "`pip cache purge` will clear all wheel files") can leave the passage that
answers it 6th to 10th. The contextual sentence model of the offline answerer
(llmgateway.contextual, all-MiniLM-L6-v2) reads each candidate's heading and opening words next to
the question; a passage beyond the kept ones whose reading is clearly nearer to the question than
that of every kept passage (by PROMOTE_MARGIN) takes the last place, if both of the search's rankings
found it (by its words and by the static model's meaning): a passage that only one of them found
was promoted as often for questions the documents cannot answer ("How many days can I work from the
office in Chicago?" → the summer four-day weeks, found by words alone). The order of the others is
the search's: re-ordering them all by this reading, or adding it to the fused score with any
weight, lost as many answers as it gained on the measured sets (bench/README.md).

Cost: the candidates' texts are short (a heading and PREVIEW_WORDS words, about 45 tokens), and
their vectors are kept in the shared cache under a digest of the model and the text (the Redis of
production; a changed passage is a new text, so nothing is invalidated) as well as per process by
the model itself: a passage is read once, by whichever process first retrieves it. A first reading
of 10 candidates costs up to about 0.5 s of one core. Without the model (not installed, or failing)
the search's order is kept.
"""

import hashlib
import logging

from django.core.cache import cache

from workspaces.permissions import scoped_cache_key

log = logging.getLogger(__name__)

# Candidates read per wanted passage (10 for the default 5): measured with 10, 15, 20 and 30
# candidates, the same passages are promoted.
CANDIDATES_PER_PASSAGE = 2
# A candidate replaces the last kept passage when its cosine with the question exceeds the best
# kept passage's by this much (0.04 also promoted a passage over a kept answer; 0.08 missed one).
PROMOTE_MARGIN = 0.06
PREVIEW_WORDS = 32
READING_SECONDS = 30 * 24 * 3600  # a reading in the shared cache; it never goes stale, only unused


def preview(result):
    """What the model reads of a passage: its own heading and its first words."""
    heading = (result.section or "").split(" › ")[-1].strip()
    words = " ".join(result.text.split()[:PREVIEW_WORDS])
    return f"{heading}: {words}" if heading else words


def promote(question, results, limit, workspace):
    """The first `limit` results, with the last replaced by a clearly nearer candidate from the rest.

    workspace: whose passages these are (the readings are kept in that workspace's cache entries).
    """
    kept, rest = list(results[:limit]), list(results[limit:])
    if not kept or not rest:
        return kept
    from llmgateway import contextual

    if not contextual.available():
        return kept
    try:
        question_vector = contextual.encode([question])[0]
        vectors = readings(workspace, [preview(r) for r in kept + rest])
    except contextual.Unavailable:
        return kept
    cosines = vectors @ question_vector
    best_kept = float(cosines[: len(kept)].max())
    best = max(range(len(kept), len(cosines)), key=lambda i: cosines[i])
    candidate = rest[best - len(kept)]
    if float(cosines[best]) <= best_kept + PROMOTE_MARGIN or not (candidate.by_words and candidate.by_meaning):
        return kept
    return [*kept[:-1], candidate]


def _key(workspace, text):
    from llmgateway import contextual

    digest = hashlib.sha256(f"{contextual.NAME}\n{text}".encode()).hexdigest()
    return scoped_cache_key(workspace, "passage-reading", digest)


def readings(workspace, texts):
    """The contextual model's unit vectors of the texts (n, dims): from the workspace's shared cache
    entries, else computed and stored there (a cache outage costs the computation, never the answer).
    Kept per workspace, so no workspace can learn by timing which texts another one holds."""
    import numpy as np

    from llmgateway import contextual

    keys = [_key(workspace, text) for text in texts]
    try:
        found = cache.get_many(keys)
    except Exception:
        log.warning("passage readings: cache unavailable", exc_info=True)
        found = {}
    missing = [i for i, key in enumerate(keys) if not isinstance(found.get(key), bytes)]
    fresh = {}
    if missing:
        computed = contextual.encode([texts[i] for i in missing])
        for i, vector in zip(missing, computed, strict=True):
            found[keys[i]] = fresh[keys[i]] = vector.astype(np.float32).tobytes()
        try:
            cache.set_many(fresh, READING_SECONDS)
        except Exception:
            log.warning("passage readings: cache unavailable", exc_info=True)
    return np.stack([np.frombuffer(found[key], dtype=np.float32) for key in keys])
