"""Read what a browser would show: HTML tables with their captions, and the items of a Snakemake report."""
from __future__ import annotations

import base64
import html as html_lib
import json
import re
import urllib.parse
from html.parser import HTMLParser


class Tables(HTMLParser):
    """Every <table> of a page: its caption's text and its rows of cell texts."""

    def __init__(self, html: str):
        super().__init__()
        self.tables: list[dict] = []
        self._in = None  # "caption" or "cell" while inside one
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append({"caption": "", "rows": []})
        elif self.tables and tag == "caption":
            self._in = "caption"
        elif self.tables and tag == "tr":
            self.tables[-1]["rows"].append([])
        elif self.tables and tag in ("td", "th"):
            self.tables[-1]["rows"][-1].append("")
            self._in = "cell"

    def handle_endtag(self, tag):
        if tag in ("caption", "td", "th"):
            self._in = None

    def handle_data(self, data):
        if self._in == "caption":
            self.tables[-1]["caption"] += data
        elif self._in == "cell":
            self.tables[-1]["rows"][-1][-1] += data


def html_tables(html: str) -> list[dict]:
    return Tables(html).tables


def report_items(report: str) -> dict[str, dict]:
    """The results a Snakemake report embeds (its `var results = {...}` JSON): path -> entry, each with
    its rendered caption, MIME type and `content` (the embedded file, decoded from its data URI)."""
    found = re.search(r"var results = (\{.*?\});\s*\n", report, re.S)
    assert found, "no results in the report"
    items = json.loads(found.group(1))
    for item in items.values():
        head, _, data = item["data_uri"].partition(",")
        raw = base64.b64decode(data) if head.endswith(";base64") else urllib.parse.unquote_to_bytes(data)
        item["content"] = raw
    return items


def text_of(html: str) -> str:
    """The visible text of an HTML fragment, whitespace collapsed."""
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", html))).strip()
