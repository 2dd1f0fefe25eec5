"""The console's shell in a real browser: sign-in, the nav by scopes, shortcuts, sign-out; and how its page
and assets are served (public, typed, ETag + no-cache, a CSP that forbids inline and remote code)."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

import httpx
import pytest

import stigmer.api.console as console_package

from console_support import ADMIN, ROOT
from support import assert_static_asset


def test_sign_in_shows_the_tenant_and_sign_out_forgets_the_key(console):
    key = console.key("shell-a", scopes=["read", "write", "watch"])
    assert console.sign_in(key)["tenant"] == "shell-a"
    assert console.js("sessionStorage.getItem('stigmer.console.key')") == key
    assert console.js("localStorage.length + document.cookie.length") == 0
    console.wait("document.body.dataset.view === 'keys'", "the first view")
    console.js("document.querySelector('#sign-out').click()")
    console.wait("document.querySelector('form.sign-in')", "the sign-in form after sign-out")
    assert console.js("sessionStorage.length") == 0


def test_a_key_revoked_while_signed_in_leads_back_to_the_sign_in_form(console):
    key = console.key("shell-revoked", scopes=["read"])
    console.sign_in(key, "#/keys")
    key_id = console.client(key).get("/v1/whoami").json()["key_id"]
    assert console.admin.delete(f"/v1/admin/keys/{key_id}").status_code == 200
    console.go("#/leases")  # the next call is refused
    assert "sign in again" in console.wait("document.querySelector('#sign-in-error')?.textContent")
    assert console.js("sessionStorage.length") == 0


def test_a_refused_key_gets_a_clear_message(console):
    console.sign_out()
    console.open()
    console.shot("sign-in")
    console.js("""(() => { document.querySelector('#key').value = 'stg_not-a-key-0000000000000000000000';
                  document.querySelector('form.sign-in').requestSubmit(); })()""")
    assert "does not know this key" in console.wait("document.querySelector('#sign-in-error').textContent")


def test_page_and_assets_are_public_typed_cached_and_under_a_strict_csp(console):
    with httpx.Client(base_url=console.url) as c:
        for path, media in (("/console", "text/html"), ("/console/assets/console.js", "text/javascript"),
                            ("/console/assets/console.css", "text/css"),
                            ("/console/assets/views/index.js", "text/javascript"),
                            ("/console/assets/lib/api.js", "text/javascript")):
            assert_static_asset(c, path, media)
        root = Path(console_package.__file__).parent / "assets"
        on_disk = sorted(str(f.relative_to(root)) for f in root.rglob("*") if f.is_file() and f.name != "index.html")
        assert sorted(console_package.ASSETS) == on_disk  # every file a view adds is served, nothing else
        packaged = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
        patterns = packaged["stigmer.api.console"]
        for name in on_disk:
            assert c.get(f"/console/assets/{name}").status_code == 200, name
            assert any(fnmatch(f"assets/{name}", p) and name.count("/") == p.count("/") - 1 for p in patterns), \
                f"{name} would not be installed: add its pattern to package-data in pyproject.toml"
        assert c.get("/console/").headers.get("location") == "/console"
        assert c.get("/console/assets/nothing.js").status_code == 401  # not an asset: behind the key
        assert c.get("/console/assets/nothing.js", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 404


def press(console, key: str) -> None:
    down = {"type": "keyDown", "key": key, **({"text": key} if len(key) == 1 else {"code": key, "windowsVirtualKeyCode": 27})}
    console.browser.send("Input.dispatchKeyEvent", down, session=True)
    console.browser.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": key}, session=True)


def test_keyboard_shortcuts_navigate_focus_the_filter_and_show_the_help(console):
    key = console.key("shell-keys", scopes=["admin"])
    console.sign_in(key, "#/keys")
    press(console, "g")
    press(console, "l")
    console.wait("document.body.dataset.view === 'leases'", "g l: the leases view")
    press(console, "/")
    assert console.js("document.activeElement.hasAttribute('data-filter')")
    press(console, "Escape")
    assert console.js("!document.activeElement.hasAttribute('data-filter')")
    press(console, "?")
    console.wait("document.querySelector('#help').open", "the shortcuts dialog")
    console.shot("shortcuts")
    press(console, "Escape")
    console.wait("!document.querySelector('#help').open", "Esc closes it")
    nav = console.js("[...document.querySelectorAll('nav.views a')].map((a) => a.dataset.view)")
    views = console.js("""import("/console/assets/views/index.js").then((m) => m.default.map((v) => [v.id, v.hotkey]))""")
    assert nav[:3] == ["keys", "changes", "leases"] and nav == [v for v, _ in views]  # every view, in index order
    assert len({k for _, k in views}) == len(views) and len({v for v, _ in views}) == len(views)  # unique hotkeys, ids


def test_views_the_scopes_do_not_allow_are_hidden(console):
    key = console.key("shell-read", scopes=["read"])
    console.sign_in(key, "#/changes")  # needs watch: the shell opens the first view it allows instead
    console.wait("document.body.dataset.view === 'keys'", "the keys view")
    nav = console.js("[...document.querySelectorAll('nav.views a')].map((a) => a.dataset.view)")
    assert "changes" not in nav and {"keys", "leases"} <= set(nav)


DIFF_CASES = """(async () => {
  const {diff} = await import("/console/assets/lib/diff.js");
  const paths = (a, b) => diff(a, b).map((d) => [d.op, d.path]);
  return {
    equal: paths({a: [1, {b: null}]}, {a: [1, {b: null}]}),
    root: paths(1, "1"),
    kinds: paths({a: [1]}, {a: {"0": 1}}),
    nested: paths({a: {b: 1, c: 2}, l: [1, 2, 3]}, {a: {b: 1, d: 2}, l: [1, 9]}),
    escaped: paths({"x/y": 1, "t~": 1}, {"x/y": 2}),
    nulls: paths({a: null}, {a: 0}),
  };
})()"""


def test_the_json_diff(console):
    console.open()
    got = console.js(DIFF_CASES)
    assert got == {"equal": [], "root": [["changed", ""]], "kinds": [["changed", "/a"]],
                   "nested": [["removed", "/a/c"], ["added", "/a/d"], ["changed", "/l/1"], ["removed", "/l/2"]],
                   "escaped": [["changed", "/x~1y"], ["removed", "/t~0"]], "nulls": [["changed", "/a"]]}


def test_open_mode_signs_in_without_a_key(start_server, tmp_path):
    from cdp import Browser, chromium_binary

    from console_support import Console

    if chromium_binary() is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium)")
    server = start_server()  # no key exists: open mode, loopback only
    browser = Browser(chromium_binary(), tmp_path / "profile")
    try:
        c = Console(server, browser)
        assert c.sign_in("")["tenant"] == "default"
        c.wait("document.body.dataset.view === 'keys'", "the keys view")
        assert not [r for r in c.requests() if "Authorization" in r["headers"]]
        assert c.errors() == []
        c.close()
    finally:
        browser.close()


HELPERS = """(async () => {
  const chart = await import("/console/assets/lib/chart.js");
  const fmt = await import("/console/assets/lib/fmt.js");
  const {h} = await import("/console/assets/lib/dom.js");
  const el = h("div");
  const root = chart.line(el, [{name: "drift", points: [[0, 0.1], [1, 0.4], [2, 0.2]]},
                               {name: "one", points: [[1, 1]]}], {label: "drift over time"});
  const spark = chart.line(h("div"), [{name: "s", points: [[0, 1], [1, 2]]}], {spark: true});
  const empty = chart.line(h("div"), [], {});
  const line = root.querySelector("polyline").getAttribute("points").split(" ");
  const xs = line.map((p) => Number(p.split(",")[0]));
  return {
    inside: el.firstChild === root, label: root.getAttribute("aria-label"),
    polylines: root.querySelectorAll("polyline").length, circles: root.querySelectorAll("circle").length,
    points: line.length, rising: xs[0] < xs[1] && xs[1] < xs[2],
    classes: [...root.querySelectorAll("g.series")].map((g) => g.getAttribute("class")),
    sparkAxes: spark.querySelectorAll("line, text").length, empty: empty.textContent,
    fmt: [fmt.left(Date.now() / 1000 - 1), fmt.left(null), fmt.duration(75), fmt.duration(7300), fmt.bytes(512),
          fmt.bytes(1536), fmt.short({a: "x".repeat(100)}, 10), fmt.ago(new Date(Date.now() - 3000).toISOString())],
    noStyle: (() => { try { h("div", {style: "color: red"}); return false; } catch { return true; } })(),
    text: h("p", null, "<b>x</b>", 1, null, ["a", h("i", null, "b")]).innerHTML,
  };
})()"""


def test_the_shared_helpers_chart_fmt_and_h(console):
    console.open()
    got = console.js(HELPERS)
    assert got == {"inside": True, "label": "drift over time", "polylines": 1, "circles": 1, "points": 3,
                   "rising": True, "classes": ["series series-0", "series series-1"], "sparkAxes": 0,
                   "empty": "no data", "noStyle": True, "text": "&lt;b&gt;x&lt;/b&gt;1a<i>b</i>",
                   "fmt": ["expired", "", "1 min 15 s", "2 h 1 min", "512 B", "1.5 KiB", '{"a":"xxx…', "3 s ago"]}


PARSER = """(async () => {
  const {EventParser} = await import("/console/assets/lib/api.js");
  const p = new EventParser();
  const chunks = ["retry: 3000\\nid: 4\\n\\n", "id: 5\\nevent: change\\ndata: {\\"a\\"", ":1}\\n\\n: keep-alive\\nid: 9\\n\\n",
                  "data: line one\\r", "\\ndata: line two\\r\\n\\r\\n", "event: compacted\\nid: 12\\ndata: {}\\n"];
  const frames = chunks.map((c) => p.push(c));
  frames.push(p.push("\\n"));
  return frames;
})()"""


def test_the_event_stream_parser_takes_any_chunking(console):
    console.open()
    assert console.js(PARSER) == [
        [{"id": "4"}], [], [{"id": "5", "event": "change", "data": '{"a":1}'}, {"id": "9"}], [],
        [{"data": "line one\nline two"}], [], [{"event": "compacted", "id": "12", "data": "{}"}]]
