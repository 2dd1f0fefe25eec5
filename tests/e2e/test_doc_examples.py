"""Every `sh` and `python` example in README.md and docs/*.md runs against a real server, with a timeout.

`sh` blocks run under `sh -e` with `curl` made strict (-sS -f, --max-time); a streaming `curl -N` runs for a
moment and passes once it has connected (status 200). `python` blocks run as scripts. Port 7474 in an
example becomes the test server's port, and STIGMER_URL points at it. A block that cannot run is marked
`<!-- not-run: reason -->` on a line before it; every other `sh` or `python` block must pass. A `python`
block that imports crewai runs in crewai's own environment (tests/crewai_support.py: crewai's pins conflict
with ours), with our `src` on PYTHONPATH and a longer timeout (importing crewai takes seconds).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from crewai_support import crewai_env, crewai_python

ROOT = Path(__file__).resolve().parents[2]
LANGS = {"sh": "sh", "bash": "sh", "shell": "sh", "python": "python", "py": "python"}  # `console` is a transcript
TIMEOUT = 30
CREWAI_TIMEOUT = 120
CREWAI = re.compile(r"^\s*(from|import) crewai\b", re.M)
STREAM_SECONDS = 2
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(.*?)\s*-->")

# `curl` as the examples' reader means it, but failing on HTTP errors and never hanging.
CURL = r"""
curl() {
  case " $* " in
    *" -N "*|*" --no-buffer "*)
      hdr=$(mktemp); rc=0; command curl -sS -f --max-time %(stream)d -D "$hdr" "$@" || rc=$?
      if [ "$rc" -eq 28 ] && grep -q "^HTTP/[0-9.]* 200" "$hdr"; then rc=0; fi   # connected, streamed, cut off
      rm -f "$hdr"; return "$rc" ;;
    *) command curl -sS -f --max-time %(timeout)d "$@" ;;
  esac
}
""" % {"stream": STREAM_SECONDS, "timeout": TIMEOUT // 3}


def blocks(path: Path) -> list[tuple[int, str, str, str | None]]:
    """(line, language, code, not-run reason) of each fenced block in a Markdown file."""
    out, lines, i = [], path.read_text().splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.groups()
        start, body = i + 1, []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence[0] * len(fence)):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1
        before = next((line for line in reversed(lines[:start - 1]) if line.strip()), "")
        reason = NOT_RUN.search(before)
        out.append((start, lang.lower(), "\n".join(body) + "\n", reason.group(1) if reason else None))
    return out


def examples() -> list:
    params = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for line, lang, code, reason in blocks(path):
            if lang in LANGS:
                # A crewai example may build crewai's environment first (minutes on a fresh cache).
                marks = [pytest.mark.timeout(900)] if LANGS[lang] == "python" and CREWAI.search(code) else []
                params.append(pytest.param(LANGS[lang], code, reason, id=f"{path.relative_to(ROOT)}:{line}",
                                           marks=marks))
    return params


def test_the_examples_are_found():
    ids = [p.id for p in examples()]
    assert any(i.startswith("README.md:") for i in ids) and len(ids) >= 5, ids


@pytest.mark.parametrize(("lang", "code", "reason"), examples())
def test_example_runs(request, shared_server, lang, code, reason):
    if reason is not None:
        pytest.skip(f"not-run: {request.node.callspec.id}: {reason}")
    code = re.sub(r"\b(localhost|127\.0\.0\.1):7474\b", rf"\g<1>:{shared_server.port}", code)
    if lang == "sh":
        assert re.search(r"^\s*curl\b", code, re.M), \
            "an sh example without curl: make it runnable here or mark it <!-- not-run: reason -->"
        argv = ["sh", "-e", "-c", CURL + code]
    env = {**os.environ, "STIGMER_URL": shared_server.url, "NO_COLOR": "1"}
    timeout = TIMEOUT
    if lang == "python" and CREWAI.search(code):
        argv, env, timeout = [crewai_python(), "-c", code], crewai_env(env), CREWAI_TIMEOUT
    elif lang == "python":
        argv = [sys.executable, "-c", code]
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the example did not finish in {timeout}s; output so far: {exc.stdout!r} {exc.stderr!r}")
    assert p.returncode == 0, f"exit {p.returncode}\n--- stdout\n{p.stdout}\n--- stderr\n{p.stderr}"
