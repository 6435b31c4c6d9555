"""Usage records, limits and budgets on the gateway (llmgateway.metering), on the store in use and on real Redis."""

import json
import multiprocessing
import threading
import time
from decimal import Decimal

import pytest

from llmgateway import gateway
from llmgateway.metering import limits, records
from llmgateway.models import Limit, UsageRecord

BASE = {"model": "remote", "messages": [{"role": "user", "content": "What does the gateway do?"}]}


def ask(text, **extra):
    return {"model": "remote", "messages": [{"role": "user", "content": text}], **extra}


def key_limits(api_key, **values):
    return Limit.objects.create(kind="key", workspace=api_key[0].workspace, api_key=api_key[0], **values)


# Records -------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_stray_records")
def test_every_completion_is_recorded_once_with_who_what_and_cost(v1, api_key, remote_model, upstream, admin_user):
    first, second = v1(BASE), v1(BASE)
    assert (first["X-Cache"], second["X-Cache"]) == ("MISS", "HIT")
    assert UsageRecord.objects.count() == 0  # buffered, not written on the request path
    assert records.drain() == 2
    miss, hit = UsageRecord.objects.order_by("created_at")
    usage = first.json()["usage"]
    assert (miss.cache, hit.cache) == ("miss", "hit")
    assert (miss.api_key_id, miss.user_id, miss.origin, miss.model) == (api_key[0].pk, admin_user.pk, "v1", "remote")
    assert (miss.prompt_tokens, miss.completion_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert miss.cost == Decimal(str(round(11 * 0.5 / 1000 + usage["completion_tokens"] * 1.5 / 1000, 6)))
    # A hit is served tokens, not spent money.
    assert (hit.prompt_tokens, hit.cost, hit.status) == (usage["prompt_tokens"], 0, 200)
    assert records.drain() == 0


def test_a_hit_with_limits_makes_no_database_query(v1, api_key, remote_model, upstream, django_assert_num_queries):
    key_limits(api_key, rpm=100, daily_budget=5)
    assert v1(BASE)["X-Cache"] == "MISS"
    with django_assert_num_queries(0):
        response = v1(BASE)
        assert response["X-Cache"] == "HIT"
        assert response["x-ratelimit-remaining-requests"] == "98"


def test_errors_and_chat_turns_are_recorded(workspace, member, remote_model, upstream):
    upstream.script(500, 500, 500)
    with pytest.raises(gateway.GatewayError):
        gateway.complete(workspace, ask("fails"), user=member, origin="chat", assistant=7)
    gateway.complete(workspace, ask("works"), user=member, origin="chat", assistant=7)
    records.drain()
    rows = list(UsageRecord.objects.order_by("created_at").values_list("cache", "status", "origin", "assistant_id"))
    assert rows == [("error", 502, "chat", 7), ("miss", 200, "chat", 7)]


@pytest.mark.usefixtures("no_stray_records")
def test_a_thousand_mixed_requests_make_exactly_a_thousand_rows(workspace):
    questions = [{"model": "offline", "messages": [{"role": "user", "content": f"q{i % 100}"}]} for i in range(1000)]
    hits = sum(gateway.complete(workspace, q).cache_hit for q in questions)
    assert hits == 900
    assert records.drain() == 1000
    assert UsageRecord.objects.count() == 1000
    assert UsageRecord.objects.filter(cache="hit").count() == 900


def test_records_of_a_deleted_key_keep_their_workspace(v1, api_key, remote_model, upstream):
    v1(BASE)
    records.flush()
    api_key[0].delete()
    records.drain()
    assert UsageRecord.objects.get().api_key_id is None


@pytest.mark.usefixtures("no_stray_records")
def test_a_drain_waits_for_a_flush_already_under_way(workspace, monkeypatch):
    """Records another thread has taken from the list but not yet put in the queue are drained too."""
    from llmgateway.cache.store import get_store

    store = get_store()
    appending, go_on = threading.Event(), threading.Event()
    real_append = store.append

    def slow_append(key, values):
        appending.set()
        go_on.wait(5)
        return real_append(key, values)

    record = (records.new_id(), workspace.pk, None, None, None, "python", "m", 1, 1, 0, "miss", 200, 1.0, time.time())
    with records._lock:
        records._pending.append(record)  # buffered, no flush scheduled yet
    monkeypatch.setattr(store, "append", slow_append)
    flusher = threading.Thread(target=records.flush)
    flusher.start()
    assert appending.wait(5)  # the flusher holds the record, on its way to the queue
    monkeypatch.setattr(store, "append", real_append)
    threading.Timer(0.2, go_on.set).start()
    assert records.drain() == 1
    flusher.join(5)
    assert UsageRecord.objects.count() == 1


# Limits --------------------------------------------------------------------------------------------


def test_sixty_requests_per_minute_then_429_with_retry_after(v1, api_key, remote_model, upstream):
    key_limits(api_key, rpm=60)
    started = time.monotonic()
    seen = [v1(BASE)]
    while seen[-1].status_code == 200 and len(seen) < 200:
        seen.append(v1(BASE))
    elapsed = time.monotonic() - started
    refused = seen.pop()
    # A burst of 60, then one more per second (the bucket refills over the minute): on a fast
    # machine the 61st is refused; a slow one earns one more request per second it took.
    assert 60 <= len(seen) <= 60 + int(elapsed) + 1
    assert seen[0]["x-ratelimit-limit-requests"] == "60"
    assert [r["x-ratelimit-remaining-requests"] for r in seen[:3]] == ["59", "58", "57"]
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert refused["x-ratelimit-remaining-requests"] == "0"
    error = refused.json()["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert "requests per minute" in error["message"] and "API key" in error["message"]
    assert upstream.calls == 1  # the rest were hits
    records.drain()
    assert UsageRecord.objects.filter(cache="refused", status=429).count() == 1


def test_tokens_per_minute(v1, api_key, remote_model, upstream):
    key_limits(api_key, tpm=50)
    # Each request reserves its input and max_tokens (40), then settles the real count.
    codes = [v1(ask(f"question {i}", max_tokens=30)).status_code for i in range(6)]
    assert codes[:3] == [200, 200, 200]
    assert 429 in codes
    refused = v1(ask("one more", max_tokens=30))
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "tokens"
    assert refused["x-ratelimit-limit-tokens"] == "50"


def test_n_answers_reserve_n_times_the_answer_tokens(workspace, remote_model):
    from llmgateway.metering import estimate

    one = estimate(gateway.prepare(workspace, ask("answers", max_tokens=30)))
    four = estimate(gateway.prepare(workspace, ask("answers", max_tokens=30, n=4)))
    # The same input; each of the four answers may be 30 tokens long, and is priced so.
    assert four[0] - one[0] == 3 * 30
    assert four[1] - one[1] == 3 * 30 * 1.5 / 1000 * 1_000_000


def test_hits_count_towards_requests_not_tokens(v1, api_key, remote_model, upstream):
    key_limits(api_key, tpm=30)
    codes = [v1(ask(f"q{i}", max_tokens=40)).status_code for i in range(5)]
    assert codes[0] == 200 and codes[-1] == 429
    # The token bucket is spent; cached answers still come, and count as requests.
    assert all(v1(ask("q0", max_tokens=40))["X-Cache"] == "HIT" for _ in range(5))
    assert v1(ask("new", max_tokens=40)).status_code == 429


def test_user_and_workspace_limits_and_staff_defaults(workspace, member, viewer, remote_model, upstream):
    Limit.objects.create(kind="user", workspace=None, user=None, rpm=2)  # each member of every workspace
    Limit.objects.create(kind="user", workspace=workspace, user=viewer, rpm=1)
    for _ in range(2):
        gateway.complete(workspace, BASE, user=member)
    with pytest.raises(gateway.GatewayError) as refused:
        gateway.complete(workspace, BASE, user=member)
    assert refused.value.status == 429 and "your account" in refused.value.message
    gateway.complete(workspace, BASE, user=viewer)
    with pytest.raises(gateway.GatewayError):
        gateway.complete(workspace, BASE, user=viewer)
    Limit.objects.create(kind="workspace", workspace=None, rpm=1)  # every workspace
    Limit.objects.filter(kind="user").delete()
    with pytest.raises(gateway.GatewayError) as refused:
        gateway.complete(workspace, BASE)  # the workspace's bucket holds 1; the first goes through
        gateway.complete(workspace, BASE)
    assert "this workspace" in refused.value.message


def test_a_daily_budget_refuses_with_insufficient_quota_until_midnight(workspace, remote_model, upstream):
    Limit.objects.create(kind="workspace", workspace=workspace, daily_budget=Decimal("0.10"))
    # A call reserves its estimate (9 input tokens at $0.5/1k, max_tokens 10 at $1.5/1k: $0.0195)
    # and spends about $0.0115 (11 input, 4 answer tokens).
    for spent in range(50):  # bounded: a budget that never refuses fails here, it does not hang the run
        try:
            gateway.complete(workspace, ask(f"q{spent}", max_tokens=10))
        except gateway.GatewayError as exc:
            assert exc.status == 429 and exc.code == "insufficient_quota"
            assert 1 <= exc.retry_after <= 86400
            assert "daily budget" in exc.message
            break
    else:
        pytest.fail("50 calls and the daily budget never refused one")
    records.drain()
    total = sum(UsageRecord.objects.values_list("cost", flat=True))
    assert 5 <= spent <= 9
    assert Decimal("0.10") - Decimal("0.0195") <= total <= Decimal("0.10") + Decimal("0.0195")


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_that_reports_no_usage_still_spends_the_budget(workspace, remote_model, upstream, stream):
    # Servers that ignore stream_options.include_usage (or send no counts) must not make answers free.
    upstream.usage_reply = "unknown"
    Limit.objects.create(kind="workspace", workspace=workspace, daily_budget=Decimal("0.05"))
    answered = 0
    for i in range(40):
        try:
            if stream:
                request = dict(ask(f"question {i}"), stream_options={"include_usage": True})
                chunks = list(gateway.stream(workspace, request))
                usage = [chunk["usage"] for chunk in chunks if chunk.get("usage")]
            else:
                usage = [gateway.complete(workspace, ask(f"question {i}")).response["usage"]]
            # The client gets token counts too, as from OpenAI: counted from the text.
            assert len(usage) == 1 and usage[0]["prompt_tokens"] == 11 and usage[0]["completion_tokens"] > 0
        except gateway.GatewayError as exc:
            assert exc.status == 429 and exc.code == "insufficient_quota"
            break
        answered += 1
    assert answered < 40, "answers without token counts were never charged"
    records.drain()
    row = UsageRecord.objects.filter(status=200).first()
    # Counted from the text: "question 0" is 3 tokens and 8 for the message; the answer's words.
    assert row.prompt_tokens == 11 and row.completion_tokens > 0 and row.cost > 0


def test_the_estimate_covers_every_answer_asked_for_with_n(workspace, remote_model):
    from llmgateway import metering

    one = gateway.prepare(workspace, ask("hello", max_tokens=100))
    four = gateway.prepare(workspace, ask("hello", max_tokens=100, n=4))
    assert metering.estimate(four)[0] - metering.estimate(one)[0] == 300
    assert metering.estimate(four)[1] > 3 * metering.estimate(one)[1]


def test_a_refused_request_leaves_one_record_even_once_collected(workspace, remote_model, upstream, monkeypatch):
    """A completion refused while it was being opened is not recorded again (as cancelled) when collected."""
    import gc

    from llmgateway.gateway import flight

    def refuse(call, prefetched=None):
        raise gateway.GatewayError(429, "refused", code="insufficient_quota")

    monkeypatch.setattr(flight, "_admit", refuse)
    try:
        gateway.complete(workspace, ask("refused"))
    except gateway.GatewayError as exc:
        assert exc.code == "insufficient_quota"
    gc.collect()  # the refused completion, in a cycle with its traceback, is collected
    records.drain()
    assert not UsageRecord.objects.exists()


def test_a_reservation_that_fills_the_budget_is_settled_before_the_answer_goes_back(workspace, remote_model, upstream):
    """A request's reservation (its answer at its longest) may reach the budget on its own: settled after the
    response, the client's next request, sent at once, would be refused for an estimate, not for what was spent."""
    from llmgateway.cache import deferred

    Limit.objects.create(kind="workspace", workspace=workspace, daily_budget=Decimal("0.05"))
    with deferred.collecting() as after_response:  # as in a view: deferred work waits for the response to be sent
        for n in range(3):
            result = gateway.complete(workspace, ask(f"question {n}", max_tokens=100_000))
            assert result.cost < 0.015  # three of them fit in the budget
        assert after_response  # the other deferred work still waits
    scope = limits.scopes_for(workspace.pk, None, None, {"workspace": {"daily_budget": 50_000}}, None)[0]
    assert limits.state_of(scope)["daily_budget"]["used"] < 0.05


def test_budgets_below_a_cent_and_waits_read_as_people_write_them(workspace):
    from llmgateway.metering.limits import Refusal, Scope, spoken_duration

    refusal = Refusal(Scope("key", "1", {"daily_budget": 500}), "day", 3600, 500, 600)
    assert "($0.0005)" in refusal.message()
    rpm = Refusal(Scope("workspace", str(workspace.pk), {"rpm": 1}), "requests", 60, 1, 1)
    assert "ask again in 1 min (at" in rpm.plain()
    assert [spoken_duration(s) for s in (1, 45, 60, 289, 3600, 7500, 86400, 90000)] == [
        "1 s",
        "45 s",
        "1 min",
        "4 min 49 s",
        "1 h",
        "2 h 5 min",
        "1 day",
        "1 day 1 h",
    ]


@pytest.mark.usefixtures("no_stray_records")
def test_a_budget_counter_lost_is_seeded_from_the_rows(workspace, remote_model, upstream):
    from django.core.cache import cache

    Limit.objects.create(kind="workspace", workspace=workspace, daily_budget=Decimal("1"))
    gateway.complete(workspace, ask("first", max_tokens=10))
    records.drain()
    cache.clear()  # the store forgot every counter
    scope = limits.scopes_for(workspace.pk, None, None, {"workspace": {"daily_budget": 1_000_000}}, None)[0]
    gateway.complete(workspace, ask("second", max_tokens=10))
    records.drain()
    total = sum(UsageRecord.objects.values_list("cost", flat=True))
    assert UsageRecord.objects.count() == 2
    assert limits.state_of(scope)["daily_budget"]["used"] == pytest.approx(float(total))


def test_settling_after_an_upstream_error_releases_the_reservation(workspace, remote_model, upstream):
    Limit.objects.create(kind="workspace", workspace=workspace, daily_budget=1, max_concurrent=1, tpm=100_000)
    scope = limits.scopes_for(
        workspace.pk, None, None, {"workspace": {"max_concurrent": 1, "tpm": 1, "daily_budget": 1}}, None
    )[0]
    upstream.script(500, 500, 500)
    with pytest.raises(gateway.GatewayError):
        gateway.complete(workspace, ask("fails", max_tokens=10))
    state = limits.state_of(scope)
    assert state["daily_budget"]["used"] == 0
    assert state["max_concurrent"]["used"] == 0
    gateway.complete(workspace, ask("works", max_tokens=10))  # the slot is free again


# On real Redis, concurrently -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_stray_records")
def test_fifty_concurrent_requests_under_a_budget_for_ten(redis_cache, workspace, remote_model, upstream, settings):
    from django.db import connections

    upstream.latency = 0.2
    upstream.stable = True  # "Echo: question number 0001": 4 answer tokens, as max_tokens asks
    # One call spends 11 prompt tokens at $0.5/1k and 4 answer tokens at $1.5/1k: $0.0115. Its estimate
    # (13 input tokens for 20 characters, max_tokens=4: $0.0125) covers it; the budget allows 10 calls.
    one = 13 * 0.0005 + 4 * 0.0015
    remote_model.price_input_per_1k, remote_model.price_output_per_1k = Decimal("0.5"), Decimal("1.5")
    remote_model.save()
    Limit.objects.create(kind="workspace", workspace=workspace, daily_budget=Decimal("0.115"))
    outcomes = []

    def run(i):
        try:
            result = gateway.complete(
                workspace,
                {
                    "model": "remote",
                    "max_tokens": 4,
                    "messages": [{"role": "user", "content": f"question number {i:04d}"}],
                },
            )
            outcomes.append(("ok", result.cost))
        except gateway.GatewayError as exc:
            outcomes.append((exc.code, 0))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    made = [cost for code, cost in outcomes if code == "ok"]
    assert upstream.calls == len(made) <= 10
    assert {code for code, _ in outcomes} <= {"ok", "insufficient_quota"}
    assert sum(made) <= 0.115 + one
    records.drain()
    assert UsageRecord.objects.count() == 50


@pytest.mark.django_db(transaction=True)
def test_concurrency_cap_on_real_redis(redis_cache, workspace, remote_model, upstream):
    from django.db import connections

    upstream.latency = 0.3
    Limit.objects.create(kind="workspace", workspace=workspace, max_concurrent=2)
    codes = []

    def run(i):
        try:
            gateway.complete(workspace, ask(f"c{i}"))
            codes.append(200)
        except gateway.GatewayError as exc:
            codes.append(exc.status)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200, 200, 429, 429, 429, 429]
    gateway.complete(workspace, ask("after"))  # the slots were freed


def _admit_many(url, prefix, count, out):
    """In another process: admit `count` requests on a 60 rpm scope."""
    from llmgateway.cache.store import RedisStore, set_store

    set_store(RedisStore.from_url(url, timeout=2))
    scope = limits.Scope("key", "multi", {"rpm": 60})
    ok = 0
    for i in range(count):
        try:
            limits.admit([scope], f"{prefix}{i}", 0, 0, 10)
            ok += 1
        except limits.Refusal:
            pass
    out.put(ok)


def test_a_limit_holds_across_processes(own_redis):
    import django
    from django.conf import settings

    url = own_redis.url(3)
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    assert settings.configured and django.VERSION
    workers = [context.Process(target=_admit_many, args=(url, f"p{n}-", 40, out)) for n in range(2)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(20)
    elapsed = time.monotonic() - started
    # 60 at once, and one more for each second the 80 attempts took (the bucket refills).
    assert 60 <= out.get(timeout=5) + out.get(timeout=5) <= 60 + int(elapsed) + 1


def test_refusal_body_is_openai_shaped(v1, api_key, remote_model, upstream):
    key_limits(api_key, max_concurrent=0, rpm=1)
    v1(BASE)
    refused = v1(BASE)
    body = json.loads(refused.content)
    assert set(body["error"]) == {"message", "type", "param", "code"}


def test_budget_alerts_mail_the_admins_once_at_80_and_once_at_100_percent(
    workspace, remote_model, upstream, mailoutbox, owner, admin_user
):
    Limit.objects.create(kind="workspace", workspace=workspace, daily_budget=Decimal("0.05"))
    # About $0.0115 a call: the 4th passes 80% ($0.04), the 5th 100%; the 6th is refused.
    for i in range(8):
        try:
            gateway.complete(workspace, ask(f"q{i}", max_tokens=10))
        except gateway.GatewayError:
            break
    subjects = [m.subject for m in mailoutbox]
    assert len(subjects) == 2, subjects
    assert "is 80% used" in subjects[0] and "is used up" in subjects[1]
    assert set(mailoutbox[0].to) == {owner.email, admin_user.email}
    assert "$0.05" in mailoutbox[1].body
