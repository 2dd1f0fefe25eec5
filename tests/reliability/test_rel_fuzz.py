"""Fuzzing: schemathesis against /openapi.json, and hypothesis-made bodies, headers, query strings and path
segments for every route of rel_surfaces.FUZZ_ROUTES. Zero 5xx and zero hung requests are allowed; each
distinct 5xx (told apart by the exception and the server function in the server's log) is printed with its
smallest example.
"""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis import strategies as st

from rel_support import FULL, auth_headers, client, finding, record, size, start_server
from rel_surfaces import FUZZ_ROUTES, JSON_VALUES, SURFACES, FuzzRoute, Refused

SCHEMATHESIS_EXAMPLES = size(12, 150)  # per operation and generation mode
TABLE_EXAMPLES = size(40, 600)         # per FUZZ_ROUTES row
TIMEOUT = 10.0                         # no answer (status line and headers) within this: a hang

FRAME = re.compile(r'File "[^"]*?(src/stigmer/[^"]+)", line \d+, in (\w+)')
EXC = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning))\b:?", re.M)


class Fuzzer:
    """Sends cases, counts them, and keeps one (the shortest) example per distinct 5xx and per hung route."""

    def __init__(self, server):
        self.server = server
        self.cases = 0
        self.failures: dict[str, str] = {}  # class -> example
        self.hangs: dict[str, str] = {}
        self.fivexx = 0
        self._log_offset = 0

    def _new_log(self) -> str:
        logs = sorted(Path(self.server.data_dir).parent.glob(f"server-{self.server.port}-*.log"),
                      key=lambda p: p.stat().st_mtime)
        text = logs[-1].read_bytes()[self._log_offset:].decode(errors="replace")
        self._log_offset += len(text.encode(errors="replace"))
        return text

    def signature(self, status: int) -> str:
        log = self._new_log()
        frames = FRAME.findall(log)
        excs = EXC.findall(log)
        if not frames:
            return f"{status}, no traceback in the server log"
        path, func = frames[-1]
        return f"{status} {excs[-1] if excs else '?'} in {path}:{func}"

    def outcome(self, label: str, example: str, status: int | None, sync: requests.Session | httpx.Client) -> None:
        self.cases += 1
        if status is None:
            self.hangs.setdefault(label, example)
            if self.server.proc.poll() is not None:  # not a hang but a crash: bring it back
                self.failures.setdefault(f"server process exited on {label}", example)
                self.server.proc = None
                self.server.start()
            return
        if status < 500:
            return
        self.fivexx += 1
        try:  # on the same connection: once it answers, the server has logged the traceback
            sync.get(self.server.url + "/healthz", timeout=TIMEOUT)
        except (httpx.HTTPError, requests.RequestException):
            pass
        cls = f"{label}: {self.signature(status)}"
        if cls not in self.failures or len(example) < len(self.failures[cls]):
            self.failures[cls] = example

    def report(self, kind: str) -> str:
        record(f"fuzz: {kind} cases", self.cases)
        record("fuzz: 5xx responses", self.fivexx)
        record("fuzz: distinct 5xx classes", len(self.failures))
        record("fuzz: hung requests (routes)", len(self.hangs))
        lines = [f"{cls}\n    e.g. {ex}" for cls, ex in sorted(self.failures.items())]
        lines += [f"hang (no answer in {TIMEOUT:.0f} s) {label}\n    e.g. {ex}" for label, ex in sorted(self.hangs.items())]
        for line in lines:
            finding(f"fuzz ({kind}): {line}")
        return "\n".join(lines)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("fuzz") / "data")
    yield s
    s.kill()


def _settings(n: int):
    # the reduced run sends the same cases every time (no flaky CI); the full run explores new ones each run
    return settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck), derandomize=not FULL)


def _short(method: str, url: str, headers: dict | None, body: object) -> str:
    text = f"{method} {url}"
    if headers:
        text += f" headers={dict(headers)}"
    if body is not None:
        raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
        text += f" body={raw[:300]!r}" + ("…" if len(raw) > 300 else "")
    text = re.sub(r"(.)\1{19,}", lambda m: f"{m.group(1)}…(×{len(m.group(0))})", text)  # "1…(×5000)"
    return text[:600]


# --- schemathesis: the native API as /openapi.json describes it ----------------------------------------------
@pytest.mark.slow  # make test-slow (CI runs it): make test stays under its budget
def test_schemathesis_openapi(fuzz_server):
    raw = httpx.get(fuzz_server.url + "/openapi.json", timeout=TIMEOUT).json()
    schema = schemathesis.openapi.from_dict(raw)
    fuzzer = Fuzzer(fuzz_server)
    session = requests.Session()
    session.headers.update(auth_headers())
    for result in schema.get_all_operations():
        op = result.ok()
        label = f"{op.method.upper()} {op.path}"
        for mode in schemathesis.GenerationMode:

            @_settings(SCHEMATHESIS_EXAMPLES)
            @given(op.as_strategy(generation_mode=mode))
            def one(case):
                kw = case.as_transport_kwargs(base_url=fuzz_server.url)
                if op.path == "/v1/watch" and isinstance(kw.get("params"), dict):
                    kw["params"]["wait"] = "0"  # a valid long-poll wait is a legitimate wait, not a hang
                prepared = session.prepare_request(requests.Request(
                    kw["method"], kw["url"], headers=kw.get("headers"), params=kw.get("params"),
                    json=kw.get("json"), data=kw.get("data"), cookies=kw.get("cookies")))
                example = _short(prepared.method, prepared.url, None, prepared.body)
                try:
                    r = session.send(prepared, timeout=TIMEOUT, stream=True)
                    status = r.status_code
                    if "text/event-stream" not in r.headers.get("content-type", ""):
                        r.content  # noqa: B018 (read the whole answer: a stalled body is a hang too)
                    r.close()
                except requests.Timeout:
                    status = None
                except requests.ConnectionError as exc:
                    fuzzer.failures.setdefault(f"{label}: connection dropped ({type(exc).__name__})", example)
                    return
                fuzzer.outcome(label, example, status, session)

            try:
                one()
            except Unsatisfiable:  # e.g. no invalid request exists for an operation without parameters
                assert mode is schemathesis.GenerationMode.NEGATIVE, label
    report = fuzzer.report("schemathesis")
    assert not fuzzer.failures and not fuzzer.hangs, f"{fuzzer.cases} cases:\n{report}"


# --- hypothesis: the compatible surfaces' routes, from the table --------------------------------------------
_printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
BIG = st.one_of(st.integers(min_value=2**63 - 2, max_value=10**40), st.integers(max_value=-2**63 + 2, min_value=-10**40))
NUMBERISH = st.one_of(BIG.map(str), st.integers().map(str),
                      st.sampled_from(["", "-1", "0", "1.5", "1e400", "nan", "inf", "0x10", "  7", "%FF", "%00", "1" * 5000]))
VALID_ID = st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=12).filter(
    lambda s: s not in (".", ".."))
SEGMENT = st.one_of(
    VALID_ID, VALID_ID, VALID_ID,  # mostly valid ids, so that the rest of the request is reached
    st.text(min_size=1, max_size=30).map(lambda s: requests.utils.quote(s, safe="")),
    st.binary(min_size=1, max_size=12).map(lambda b: "".join(f"%{x:02X}" for x in b)),  # non-UTF-8 escapes too
    st.sampled_from(["%2E", "%2E%2E", "%2F", "a%2Fb", "stream", "version", "%00", "%7F", "x" * 300, "%FF%FE"]),
)
HASH = st.one_of(*[st.text(alphabet="0123456789abcdefABCDEF", min_size=64, max_size=64)] * 3, SEGMENT)
HEADER = st.one_of(NUMBERISH, st.text(alphabet=_printable, max_size=40),
                   st.sampled_from(['"1"', "*", 'W/"x"', '"1", W/"2"', "Bearer x", "-1", "x" * 2000])
                   ).map(str.strip)  # the HTTP client refuses values with surrounding blanks
QUERY = st.one_of(NUMBERISH, SEGMENT)
RAW_BODIES = st.one_of(st.binary(max_size=40), st.sampled_from([
    b"", b"{", b"null", b"[]", b"NaN", b'{"key": NaN}', b'{"key":"\xff\xfe","val":1}', b'{"key":"\\ud800","val":1}',
    b"[" * 50_000, b'{"a":' * 5000, b'{"key":"k","key":"k2","val":1}', b"\xef\xbb\xbf{}"]))


@st.composite
def table_request(draw, route: FuzzRoute):
    path = route.path
    for name in re.findall(r"{(\w+)}", path):
        path = path.replace("{" + name + "}", draw(HASH if name == "hash" else SEGMENT), 1)
    query = [(q, draw(QUERY)) for q in route.query if draw(st.booleans())]
    if draw(st.booleans()):
        query.append((draw(st.text(alphabet=string.ascii_letters, min_size=1, max_size=6)), draw(QUERY)))
    if route.fixed_query:
        query.append(tuple(route.fixed_query.split("=", 1)))
    url = path + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")
    headers = {h: draw(HEADER) for h in route.headers if draw(st.booleans())}
    ctype = draw(st.sampled_from([None, "application/json", "text/plain", "application/x-www-form-urlencoded"]))
    if ctype:
        headers["Content-Type"] = ctype
    body = None
    if route.body_members:
        members = st.fixed_dictionaries({}, optional=route.body_members).map(lambda d: json.dumps(d).encode())
        body = draw(st.one_of(members, members, RAW_BODIES))
    elif route.body_value:
        body = draw(st.one_of(JSON_VALUES.map(lambda v: json.dumps(v).encode()), RAW_BODIES))
    return url, headers, body


@pytest.mark.parametrize("route", FUZZ_ROUTES, ids=lambda r: f"{r.surface} {r.method} {r.path}")
def test_hypothesis_surface_routes(fuzz_server, route: FuzzRoute):
    fuzzer = Fuzzer(fuzz_server)
    label = f"{route.method} {route.path}"
    with httpx.Client(base_url=fuzz_server.url, timeout=TIMEOUT, headers=auth_headers()) as c:

        @_settings(TABLE_EXAMPLES)
        @given(table_request(route))
        def one(req):
            url, headers, body = req
            example = _short(route.method, url, headers, body)
            writes = route.method in ("PUT", "PATCH", "POST", "DELETE")
            before = c.get("/v1/revision").json()["revision"] if writes else 0
            try:
                with c.stream(route.method, url, headers=headers, content=body) as r:
                    if "text/event-stream" not in r.headers.get("content-type", ""):
                        r.read()
                    status = r.status_code
            except httpx.TimeoutException:
                status = None
            except httpx.TransportError as exc:
                fuzzer.failures.setdefault(f"{label}: connection dropped ({type(exc).__name__})", example)
                return
            fuzzer.outcome(label, example, status, c)
            if writes and status is not None and status >= 400:  # a refused request must change nothing
                changes = [ch for ev in c.get("/v1/watch", params={"index": before, "wait": 0}).json()["events"]
                           for ch in ev["changes"] if ch["type"] != "expire"]  # expiries come from the sweeper
                if changes:
                    cls = f"{label}: a refused request ({status}) was written anyway"
                    fuzzer.failures.setdefault(cls, f"{example} -> logged {changes[0]}")

        one()
    report = fuzzer.report("hypothesis")
    assert not fuzzer.failures and not fuzzer.hangs, f"{fuzzer.cases} cases:\n{report}"


# --- keys: what a surface accepts it stores under exactly that key ------------------------------------------------
KEY_SURFACES = ("native", "cntrlnode")


@pytest.mark.parametrize("surface", KEY_SURFACES)
def test_keys_round_trip_exactly(fuzz_server, surface: str):
    """A key given as percent-escaped bytes is refused (4xx) unless it is valid UTF-8; an accepted one reads back
    under exactly those bytes, so two different byte strings never name the same key."""
    s = SURFACES[surface]
    problems: dict[str, str] = {}
    cases = [0]
    with client(fuzz_server.url, timeout=TIMEOUT) as c:

        @_settings(size(60, 600))
        @given(st.binary(min_size=1, max_size=8))
        def one(a: bytes):
            cases[0] += 1
            b = bytes(x ^ 1 if x >= 0x80 else x for x in a)  # other bytes, which a lossy decoder may merge with a
            esc = lambda raw: "".join(f"%{x:02X}" for x in raw)  # noqa: E731
            marker = {"key": esc(a)}
            try:
                s.put(c, esc(a), marker)
            except Refused as exc:
                if exc.resp.status_code >= 500:
                    problems.setdefault(f"{surface}: {exc.resp.status_code} on a key write", str(exc)[:300])
                return
            try:
                a.decode("utf-8")
            except UnicodeDecodeError:
                problems.setdefault(f"{surface}: a key that is not UTF-8 was accepted (decoded lossily)",
                                    f"write to key {esc(a)} answered 2xx")
            if a == b:
                return
            try:
                other = s.get(c, esc(b))
            except Refused as exc:  # `b` may itself be refused (not UTF-8): then it names nothing
                if exc.resp.status_code >= 500:
                    problems.setdefault(f"{surface}: {exc.resp.status_code} on a key read", str(exc)[:300])
                return
            if other == marker:
                problems.setdefault(f"{surface}: two different keys are one", f"wrote {esc(a)}, read it back as {esc(b)}")

        one()
    record("fuzz: key round-trip cases", cases[0])
    for cls, ex in problems.items():
        finding(f"fuzz (keys): {cls}\n    e.g. {ex}")
    assert not problems, problems
