"""The gateway's cache engine: what is kept where, and how concurrent identical calls share one answer.

- store.py: the shared state, Redis or this host's files, behind one small interface
  (one fast-fail pause after a Redis error, shared with the rest of the site);
- entries.py: what is cached under which key (completions, workspace policies),
  TTLs, the stored completion, and generations to drop a workspace's answers at once;
- records.py: database rows kept in the store and read through on a miss
  (API keys, model specs, workspace policies), with a "no such row" marker;
- coalesce.py: identical misses in flight share one upstream call, across workers and hosts;
- stats.py: hit, miss and coalesced counters, added up in memory and written in batches;
- deferred.py: work kept until the response has been sent (storing answers, statistics);
- memo.py: small least-recently-used maps of what a process learnt (a key's owner, a model's spec).
"""
