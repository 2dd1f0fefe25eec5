"""The console in a real headless Chromium against the real server process, for tests/e2e/console/*: one
server (with an admin key) and one browser per test module, keys made per tenant, sign-in, waiting on the
page's DOM (a MutationObserver in the page: no sleeps), screenshots as artifacts, and what the browser sent."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

from cdp import Browser, chromium_binary
from server_process import ServerProcess

ADMIN = "stg_console-admin-key-0123456789abcdef0123"
ROOT = Path(__file__).resolve().parents[1]
WAIT_TIMEOUT_MS = 15000

# Resolves when `cond` (a JS expression) is true, re-checked on every DOM change and animation frame.
_WAIT = """new Promise((resolve, reject) => {
  const check = () => { try { return (%s); } catch (e) { return false; } };
  let v = check();
  if (v) return resolve(v);
  const done = (value) => { observer.disconnect(); clearTimeout(timer); resolve(value); };
  const observer = new MutationObserver(() => { const value = check(); if (value) done(value); });
  observer.observe(document, {attributes: true, childList: true, subtree: true, characterData: true});
  const timer = setTimeout(() => { observer.disconnect(); reject(new Error("timed out: " + %s)); }, %d);
})"""


def artifacts() -> Path:
    """$STIGMER_ARTIFACTS/console/ (default build/artifacts/console/): where the screenshots go."""
    out = Path(os.environ.get("STIGMER_ARTIFACTS") or ROOT / "build" / "artifacts") / "console"
    out.mkdir(parents=True, exist_ok=True)
    return out


class Console:
    """One browser tab on one server's /console."""

    def __init__(self, server: ServerProcess, browser: Browser):
        self.server, self.browser, self.url = server, browser, server.url
        self.admin = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30)

    # --- keys and clients -------------------------------------------------------------------------
    def key(self, tenant: str, scopes=("read", "write", "watch"), prefixes=()) -> str:
        r = self.admin.post("/v1/admin/keys", json={"tenant": tenant, "scopes": list(scopes), "prefixes": list(prefixes)})
        assert r.status_code == 201, r.text
        return r.json()["secret"]

    def client(self, key: str) -> httpx.Client:
        """A test client writing as `key` (the agents the console watches)."""
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)

    # --- the page -----------------------------------------------------------------------------------
    def js(self, expression: str) -> Any:
        return self.browser.evaluate(expression)

    def wait(self, condition: str, what: str | None = None, timeout_ms: int = WAIT_TIMEOUT_MS) -> Any:
        """Wait until the JS expression `condition` is true in the page; returns its value."""
        return self.js(_WAIT % (condition, json.dumps(what or condition), timeout_ms))

    def open(self, hash_: str = "") -> None:
        """A fresh load of the page (by way of about:blank: a hash-only change would not reload it)."""
        self.browser.navigate("about:blank")
        self.wait("location.href === 'about:blank'", "about:blank")
        self.browser.navigate(f"{self.url}/console{hash_}")
        self.wait("location.protocol === 'http:' && document.body && document.body.dataset.view", "the console to start")

    def sign_in(self, key: str, hash_: str = "#/keys") -> dict:
        """Sign in through the form (the browser's log starts afresh); returns the tenant the shell shows."""
        self.sign_out()
        self.browser.events.clear()
        self.open(hash_)
        self.wait("document.querySelector('form.sign-in input#key')", "the sign-in form")
        self.js(f"""(() => {{ const i = document.querySelector('#key'); i.value = {json.dumps(key)};
                    document.querySelector('form.sign-in').requestSubmit(); }})()""")
        self.wait("document.querySelector('#sign-out')", "the signed-in shell")
        return {"tenant": self.js("document.querySelector('.who').dataset.tenant")}

    def sign_out(self) -> None:
        self.js("location.protocol === 'http:' && (document.querySelector('#sign-out')?.click(), sessionStorage.clear())")

    def go(self, hash_: str, view: str | None = None) -> None:
        self.js(f"location.hash = {json.dumps(hash_)}")
        if view:
            self.wait(f"document.body.dataset.view === {json.dumps(view)}", f"the {view} view")

    def text(self, selector: str = "body") -> str:
        return self.js(f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent || ''")

    def shot(self, name: str) -> Path:
        return self.browser.screenshot(artifacts() / f"{name}.png")

    # --- what the browser did -----------------------------------------------------------------------
    def requests(self) -> list[dict]:
        """Every request the page sent: url, method, headers and body."""
        return [e["params"]["request"] for e in self.browser.events if e["method"] == "Network.requestWillBeSent"]

    def response_bodies(self) -> list[str]:
        """The bodies of every finished response (streams still open have none yet)."""
        out = []
        for e in list(self.browser.events):
            if e["method"] == "Network.loadingFinished":
                try:
                    out.append(self.browser.send("Network.getResponseBody", {"requestId": e["params"]["requestId"]},
                                                 session=True)["body"])
                except RuntimeError:
                    pass  # evicted or not kept (a redirect)
        return out

    def errors(self) -> list[str]:
        """JS errors, CSP violations and failed loads the browser logged (aborted streams left are not errors)."""
        return [e for e in self.browser.errors() if "net::ERR_ABORTED" not in e]

    def close(self) -> None:
        self.admin.close()


def start(tmp_path: Path) -> tuple[ServerProcess, Browser] | str:
    """A server with the admin key and a browser; a reason string when there is no chromium."""
    binary = chromium_binary()
    if binary is None:
        return "no chromium binary on PATH (Debian: apt-get install chromium; .ci/run installs it)"
    server = ServerProcess(tmp_path / "data", admin_key=ADMIN).start()
    try:
        browser = Browser(binary, tmp_path / "profile")
    except Exception:
        server.kill()
        raise
    return server, browser
