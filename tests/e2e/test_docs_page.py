"""/docs in a real headless Chromium against the real server process: the page renders every surface's
operations from their OpenAPI documents, loads nothing from anywhere but the server, logs no error, and its
try-it form sends a real request with the API key typed in the page."""

from __future__ import annotations

import json

import httpx
import pytest

from cdp import Browser, chromium_binary
from support import assert_static_asset

ADMIN = "stg_docs-page-admin-key-0123456789abcdef"
# One operation each surface is known to have (its card's data-path and data-method).
KNOWN = {"native": ("get", "/v1/revision"), "statevec": ("get", "/v/{hash}"),
         "cntrlnode": ("post", "/v1/state/{workflowId}/{key}/version"),
         "agentstate": ("post", "/api/v1/states/query"), "statewave": ("post", "/v1/episodes"),
         "semvec": ("post", "/v1/run"), "mcp": ("post", "/mcp")}

WAIT_LOADED = """new Promise((resolve, reject) => {
  const done = () => document.body && document.body.dataset.loaded;
  if (done()) return resolve(done());
  new MutationObserver(() => done() && resolve(done())).observe(document, {attributes: true, subtree: true});
  setTimeout(() => reject(new Error("the page did not finish loading")), 30000);
})"""

TRY_REVISION = """(async () => {
  document.getElementById("api-key").value = %s;
  const card = document.querySelector('article.op[data-surface="native"][data-method="get"][data-path="/v1/revision"]');
  card.querySelectorAll("details").forEach((d) => { d.open = true; });
  card.scrollIntoView();
  const status = card.querySelector(".answer-status");
  const answered = new Promise((resolve) => new MutationObserver(() => status.dataset.status && resolve())
    .observe(status, {attributes: true}));
  card.querySelector("form.try").requestSubmit();
  await answered;
  status.scrollIntoView({block: "center"});
  return {status: status.dataset.status, answer: card.querySelector("pre.answer").textContent,
          stored: localStorage.length + sessionStorage.length + document.cookie.length};
})()"""


@pytest.fixture
def browser(tmp_path):
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium; .ci/run installs it)")
    b = Browser(binary, tmp_path / "profile")
    yield b
    b.close()


def test_docs_page_lists_every_surface_and_tries_a_request(start_server, browser, tmp_path):
    s = start_server(admin_key=ADMIN)
    key = httpx.post(s.url + "/v1/admin/keys", json={"tenant": "docs", "scopes": ["read"]},
                     headers={"Authorization": f"Bearer {ADMIN}"}).json()["secret"]

    browser.navigate(s.url + "/docs")
    assert browser.evaluate(WAIT_LOADED) == str(len(KNOWN))
    shown = browser.evaluate("""[...document.querySelectorAll("article.op")].map(
        (a) => [a.dataset.surface, a.dataset.method, a.dataset.path])""")
    surfaces = browser.evaluate("""[...document.querySelectorAll("section.surface")].map((s) => s.dataset.surface)""")
    assert surfaces == list(KNOWN)
    for surface, (method, path) in KNOWN.items():
        assert [surface, method, path] in shown, (surface, method, path)
    # every path+method of every document is on the page
    for surface in KNOWN:
        doc = httpx.get(f"{s.url}/docs/openapi/{surface}.json").json()
        for path, ops in doc["paths"].items():
            for method in ops:
                assert [surface, method, path] in shown
    # schemas where the surface declares them: a model, a hand-declared body, a native component
    for surface, (method, path), text in (("statewave", KNOWN["statewave"], "EpisodeBody {"),
                                         ("cntrlnode", KNOWN["cntrlnode"], "expectedVersion: integer"),
                                         ("native", KNOWN["native"], "RevisionOut {")):
        card = browser.evaluate(f"""document.querySelector('article.op[data-surface="{surface}"][data-method="{method}"]'
                                    + '[data-path="{path}"]').textContent""")
        assert text in card, (surface, card)
    first = browser.screenshot(tmp_path / "docs-page.png")

    answer = browser.evaluate(TRY_REVISION % json.dumps(key))
    assert answer["status"] == "200", answer
    assert json.loads(answer["answer"]) == httpx.get(s.url + "/v1/revision",
                                                     headers={"Authorization": f"Bearer {key}"}).json()
    assert answer["stored"] == 0  # the key is in the field only: no storage, no cookie
    second = browser.screenshot(tmp_path / "docs-page-try-it.png")
    print(f"screenshots: {first} {second}")

    urls = browser.requests()
    assert urls and all(u.startswith(s.url + "/") for u in urls), urls  # nothing left 127.0.0.1
    assert s.url + "/v1/revision" in urls
    assert not [u for u in urls if key in u]  # the key never travels in a URL
    assert browser.errors() == []


def test_docs_assets_have_types_cache_headers_and_a_csp_that_forbids_remote_loads(start_server):
    s = start_server(admin_key=ADMIN)  # with keys in force: the page and its assets are still public
    with httpx.Client(base_url=s.url) as c:
        for path, media in (("/docs", "text/html"), ("/docs/docs.js", "text/javascript"),
                            ("/docs/docs.css", "text/css"), ("/docs/openapi/index.json", "application/json"),
                            *((f"/docs/openapi/{n}.json", "application/json") for n in KNOWN)):
            assert_static_asset(c, path, media)
        index = c.get("/docs/openapi/index.json").json()
        assert [d["name"] for d in index] == list(KNOWN)
        assert c.get("/docs/openapi/native.json").json() == c.get("/openapi.json").json()
        assert c.get("/docs/nothing.js").status_code == 401  # not a page asset: behind the key like any route


def test_every_documented_operation_is_routed_and_every_surface_has_a_document(start_server, tmp_path):
    from stigmer.app import create_app
    from stigmer.config import Settings

    served = [s.name for s in create_app(Settings(data_dir=str(tmp_path / "app"))).state.surfaces]
    s = start_server()
    with httpx.Client(base_url=s.url, timeout=30) as c:
        index = c.get("/docs/openapi/index.json").json()
        assert sorted(d["name"] for d in index) == sorted(served)  # a surface without a document fails here
        for d in index:
            doc = c.get(d["url"]).json()
            for path, ops in doc["paths"].items():
                for method, op in ops.items():
                    media = [m for r in op["responses"].values() for m in r.get("content", {})]
                    if "text/event-stream" in media or path.endswith(("/stream", "/watch")):
                        continue  # a stream: answers 200 and stays open
                    url = path.replace("{hash}", "0" * 64)
                    while "{" in url:
                        url = url[:url.index("{")] + "docs-x" + url[url.index("}") + 1:]
                    r = c.request(method.upper(), url, json={} if "requestBody" in op else None)
                    # routed: the surface took the method on that path (a wrong table gives 405 or a route 404)
                    assert r.status_code != 405 and "route not found" not in r.text, (d["name"], method, path, r.text)
