"""Docs stay true: generated pages match the code, and every native route and error code is documented."""

import re
from pathlib import Path

from stigmer.api.kit import errors
from stigmer.api.native import docs as native_docs
from stigmer.config import SETTINGS, settings_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_settings_page_is_generated_from_the_table():
    assert (DOCS / "settings.md").read_text() == settings_markdown(), "run `make docs`"
    assert len(SETTINGS) == settings_markdown().count("\n## ")


def test_every_native_endpoint_is_in_the_api_docs():
    text = (DOCS / "api.md").read_text()
    for op in native_docs.OPS:
        assert f"`{op.path}`" in text, op.path


def test_every_engine_error_code_is_in_the_api_docs():
    text = (DOCS / "api.md").read_text()
    for cls in errors.STATUS:
        assert f"`{cls.code}`" in text, cls.code
    for code in ("invalid_json", "payload_too_large", "precondition_failed", "method_not_allowed"):
        assert f"`{code}`" in text


def test_every_relative_link_names_a_file_that_exists():
    link = re.compile(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)")
    pages = [*DOCS.glob("*.md"), DOCS.parent / "README.md"]
    broken = [f"{page.name}: {target}" for page in pages for target in link.findall(page.read_text())
              if not target.startswith(("http:", "https:")) and not (page.parent / target).exists()]
    assert broken == []
