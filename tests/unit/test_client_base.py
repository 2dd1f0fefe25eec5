"""The SDK's I/O-free core: URLs, errors, retry timing, the SSE parser and watch bookkeeping."""

from __future__ import annotations

import httpx
import pytest

import stigmer.client as sdk
from stigmer.client import _base as b
from stigmer.client import errors


def test_public_names():
    assert sorted(sdk.__all__) == sorted(set(sdk.__all__))
    for name in sdk.__all__:
        assert getattr(sdk, name) is not None
    for name in ("Client", "AsyncClient", "Entry", "Change", "ChangeSet", "TxnResult", "StigmerError",
                 "NotFoundError", "VersionConflictError", "CompactedError", "Retry"):
        assert name in sdk.__all__
    error_classes = [getattr(sdk, n) for n in sdk.__all__ if n.endswith("Error")]
    assert all(issubclass(c, sdk.StigmerError) for c in error_classes)
    assert set(errors.BY_CODE.values()) <= set(error_classes)


def test_key_path_escapes_segments_but_keeps_slashes():
    assert b.key_path("ns", "a/b") == "/v1/kv/ns/a/b"
    assert b.key_path("ns", "q?x=1#f %") == "/v1/kv/ns/q%3Fx%3D1%23f%20%25"
    assert b.key_path("ns", "x/../y/./z") == "/v1/kv/ns/x/%2E%2E/y/%2E/z"
    assert b.key_path("ns", "ü") == "/v1/kv/ns/%C3%BC"
    assert b.history("ns", "a/b", None, None).path == "/v1/history/ns/a/b"


def _response(status: int, body: bytes, headers: dict | None = None) -> httpx.Response:
    return httpx.Response(status, content=body, headers=headers)


@pytest.mark.parametrize("status,code,cls", [
    (400, "invalid_argument", errors.InvalidArgumentError), (400, "invalid_json", errors.InvalidJSONError),
    (404, "not_found", errors.NotFoundError), (409, "version_conflict", errors.VersionConflictError),
    (409, "type_mismatch", errors.TypeMismatchError), (409, "patch_failed", errors.PatchFailedError),
    (409, "compare_failed", errors.CompareFailedError), (413, "value_too_large", errors.ValueTooLargeError),
    (413, "payload_too_large", errors.PayloadTooLargeError), (410, "compacted", errors.CompactedError),
    (412, "precondition_failed", errors.PreconditionFailedError),
    (405, "method_not_allowed", errors.MethodNotAllowedError), (500, "internal", errors.ServerError),
    (409, "some_new_conflict", errors.ConflictError), (503, "busy", errors.ServerError),
    (418, "teapot", errors.StigmerError),
])
def test_error_envelope_decodes_to_its_class(status, code, cls):
    body = b'{"error":{"code":"%s","message":"m","details":{"index":2},"request_id":"r1"}}' % code.encode()
    err = b.error_from_response(_response(status, body))
    assert type(err) is cls
    assert (err.code, err.status, err.message, err.details, err.request_id) == (code, status, "m", {"index": 2}, "r1")
    assert str(err) == f"{code}: m"


def test_foreign_error_body_still_gives_an_error():
    err = b.error_from_response(_response(502, b"<html>bad gateway</html>", {"x-request-id": "abc"}))
    assert isinstance(err, errors.ServerError) and err.status == 502 and "bad gateway" in err.message
    assert err.request_id == "abc" and err.details == {}


def test_error_details_accessors():
    vc = errors.VersionConflictError("x", details={"expected_version": 1, "current_version": 3})
    assert (vc.expected_version, vc.current_version) == (1, 3)
    c = errors.CompactedError("x", details={"oldest_revision": 5, "current_revision": 9})
    assert (c.oldest_revision, c.current_revision) == (5, 9)


def test_retry_delays_grow_with_jitter_and_cap():
    r = b.Retry(backoff=0.1, max_backoff=1.0)
    for attempt, cap in [(0, 0.1), (1, 0.2), (2, 0.4), (5, 1.0), (30, 1.0)]:
        for _ in range(20):
            assert cap / 2 <= r.delay(attempt) <= cap


def test_which_calls_are_retried():
    r = b.Retry(retries=2)
    read, write = b.get("n", "k"), b.put("n", "k", 1, None, None, False)
    assert read.may_retry(0, r, exc=httpx.ReadError("x")) and not read.may_retry(2, r, exc=httpx.ReadError("x"))
    assert not write.may_retry(0, r, exc=httpx.ReadError("x")), "a write that may have landed is not re-sent"
    assert write.may_retry(0, r, exc=httpx.ConnectError("x"))
    assert read.may_retry(0, r, response=_response(503, b""))
    assert not read.may_retry(0, r, response=_response(404, b""))
    assert not write.may_retry(0, r, response=_response(503, b""))


def test_write_calls_carry_conditions_and_ttl():
    put = b.put("n", "k", {"a": 1}, 5, None, True)
    assert put.headers == {"If-None-Match": "*"} and put.params == {"ttl": 5} and put.content == b'{"a":1}'
    assert b.put("n", "k", 1, None, 3, False).headers == {"If-Match": '"3"'}
    incr = b.patch_op("n", "k", b.incr_body(2, "f", None), None, None)
    assert incr.method == "PATCH" and incr.content == b'{"op":"incr","amount":2,"field":"f"}'
    assert b.incr_body(1, "f", ["a", "b"]) == {"op": "incr", "amount": 1, "path": ["a", "b"]}
    assert b.append_body(1, 3) == {"op": "append", "value": 1, "max": 3}
    assert b.delete("n", "k", 4).headers == {"If-Match": '"4"'}
    txn = b.txn([sdk.Compare("n", "k", version=0)], [sdk.Op("put", "n", "k", value=None)])
    assert txn.content == b'{"compare":[{"namespace":"n","key":"k","version":0}],' \
                          b'"ops":[{"op":"put","namespace":"n","key":"k","value":null}]}'


def _feed(dec: b.SSEDecoder, text: str) -> list[b.SSEvent]:
    return [ev for line in text.split("\n") if (ev := dec.feed(line)) is not None]


def test_sse_decoder():
    dec = b.SSEDecoder()
    events = _feed(dec, "retry: 3000\nid: 7\n\n: keep-alive\n\nid: 8\nevent: change\ndata: {\"a\":\ndata:1}\n\n"
                        "data:no-space\nunknown: x\n\n")
    assert events == [b.SSEvent("", "", "7", 3000), b.SSEvent("change", '{"a":\n1}', "8"),
                      b.SSEvent("", "no-space", None)]
    assert _feed(dec, "id: 9\nevent: change\ndata: {") == [], "no event before its blank line"


def _change(rev: int, key: str = "k") -> str:
    return (f'id: {rev}\nevent: change\ndata: {{"revision":{rev},"changes":[{{"type":"put","namespace":"n",'
            f'"key":"{key}","value":{rev},"version":1,"revision":{rev},"ts":"2026-01-01T00:00:00.000Z"}}]}}\n\n')


def _feed_state(state: b.WatchState, text: str) -> list[int]:
    return [cs.revision for line in text.split("\n") if (cs := state.feed(line)) is not None]


def test_watch_state_resumes_from_the_last_revision():
    state = b.WatchState("n", None, "k", 5, b.Retry())
    assert state.params() == {"namespace": "n", "key": "k", "from": 5}
    assert "Last-Event-ID" not in state.headers()
    assert _feed_state(state, "retry: 3000\nid: 4\n\n" + _change(5) + _change(6)) == [5, 6]
    assert state.last == 6
    assert state.params() == {"namespace": "n", "key": "k"}, "after the first frame, Last-Event-ID rules"
    assert state.headers()["Last-Event-ID"] == "6"
    state.connected(httpx.Response(200))  # a new connection: a half-read event is dropped
    assert _feed_state(state, "id: 6\n\n" + _change(6) + _change(7)) == [7], "a repeat is never yielded"


def test_watch_state_from_now_takes_the_opening_id():
    state = b.WatchState(None, None, None, None, b.Retry())
    assert state.params() == {}
    _feed_state(state, "retry: 3000\nid: 41\n\n")
    assert state.headers()["Last-Event-ID"] == "41"


def test_watch_state_compacted_raises():
    state = b.WatchState("n", None, None, 1, b.Retry())
    with pytest.raises(errors.CompactedError) as info:
        _feed_state(state, 'event: compacted\nid: 90\ndata: {"oldest_revision":50,"current_revision":90}\n\n')
    assert (info.value.oldest_revision, info.value.current_revision, info.value.status) == (50, 90, 410)


def test_watch_state_reconnect_budget_and_errors():
    state = b.WatchState("n", None, None, None, b.Retry(backoff=0.1, max_backoff=0.4, max_reconnects=2))
    delays = [state.dropped(httpx.ReadError("x")) for _ in range(2)]
    assert 0.05 <= delays[0] <= 0.1 and 0.1 <= delays[1] <= 0.2
    with pytest.raises(errors.ConnectionFailedError):
        state.dropped(httpx.ReadError("x"))
    with pytest.raises(errors.InvalidArgumentError):
        state.connected(_response(400, b'{"error":{"code":"invalid_argument","message":"m","request_id":"r"}}'))
    with pytest.raises(b._Retryable):
        state.connected(_response(503, b""))


def test_watch_state_follows_progress_ids_on_keep_alives():
    """A keep-alive carrying `id:` moves the resume point forward (never back), and yields nothing."""
    state = b.WatchState("n", None, "k", None, b.Retry())
    assert _feed_state(state, "retry: 3000\nid: 4\n\n" + _change(5) + ": keep-alive\nid: 9\n\n") == [5]
    assert state.last == 9 and state.headers()["Last-Event-ID"] == "9"
    assert _feed_state(state, ": keep-alive\nid: 3\n\n") == [] and state.last == 9
    assert _feed_state(state, _change(9) + _change(10)) == [10], "a change at or below the progress id is old"
