"""The tables and the claims as HTML pages, for the Snakemake report and a browser.

Snakemake's report shows an HTML file inline (an image too) but offers any other file, Markdown
included, only as a download. So every Markdown file fpq writes also gets an HTML twin, converted
from the Markdown itself: the page says exactly what the .md says. Only the subset of Markdown fpq
writes is understood: headings, paragraphs, `- ` lists, pipe tables (tabulate's, with alignment),
**bold**, *italic* and `code`. A table's caption is the heading above it with the paragraphs between
them, so every table says what it is (and carries the provenance stamp where the page puts one there).
"""
from __future__ import annotations

import re
from html import escape

STYLE = ("body{font-family:sans-serif;margin:1.5em;max-width:80em}table{border-collapse:collapse;margin:0.5em 0 1.5em}"
         "th,td{border:1px solid #bbb;padding:2px 8px;font-size:90%}caption{caption-side:top;text-align:left;"
         "padding:4px 0}caption p{margin:2px 0}")


def inline(text: str) -> str:
    """One line of Markdown text as HTML.

    >>> inline("**holds** in *2* of `3` cells, 1 < 2")
    '<strong>holds</strong> in <em>2</em> of <code>3</code> cells, 1 &lt; 2'
    """
    text = escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"(?<![*\w])\*(?!\s)(.+?)(?<!\s)\*(?![*\w])", r"<em>\1</em>", text)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _align(cell: str) -> str:
    return "right" if cell.endswith(":") and not cell.startswith(":") else "left"


def table_html(lines: list[str], caption: list[str]) -> str:
    """A pipe table (header, alignment row, body) as an HTML table with its caption."""
    header, aligns = _cells(lines[0]), [_align(c) for c in _cells(lines[1])]
    out = ["<table>"]
    if caption:
        out.append("<caption>" + "".join(caption) + "</caption>")
    out.append("<thead><tr>" + "".join(f'<th style="text-align:{a}">{inline(h)}</th>'
                                       for h, a in zip(header, aligns)) + "</tr></thead><tbody>")
    for line in lines[2:]:
        out.append("<tr>" + "".join(f'<td style="text-align:{a}">{inline(c)}</td>'
                                    for c, a in zip(_cells(line), aligns)) + "</tr>")
    return "\n".join(out + ["</tbody></table>"])


def _blocks(markdown: str) -> list[list[str]]:
    blocks, current = [], []
    for line in markdown.splitlines():
        if line.strip():
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    return blocks + ([current] if current else [])


def _is_table(block: list[str]) -> bool:
    return len(block) >= 2 and block[0].startswith("|") and re.fullmatch(r"\|[\s:|-]+\|", block[1].strip()) is not None


def body_html(markdown: str) -> str:
    """The page body: a heading and the paragraphs after it become the caption of a table that
    follows them; otherwise they stay a heading and paragraphs."""
    out, pending = [], []  # pending: (kind, html) of a heading and its paragraphs, not yet placed

    def flush() -> None:
        out.extend(html for _, html in pending)
        pending.clear()

    for block in _blocks(markdown):
        first = block[0]
        if first.startswith("#"):
            flush()
            level = min(len(first) - len(first.lstrip("#")), 6)
            pending.append(("heading", f"<h{level}>{inline(first.lstrip('#').strip())}</h{level}>"))
        elif _is_table(block):
            caption = [re.sub(r"^<h\d>(.*)</h\d>$", r"<strong>\1</strong>", h) if kind == "heading" else h
                       for kind, h in pending]
            pending.clear()
            out.append(table_html(block, caption))
        elif first.startswith("- "):
            flush()
            out.append("<ul>" + "".join(f"<li>{inline(line[2:])}</li>" for line in block) + "</ul>")
        elif pending:
            pending.append(("paragraph", f"<p>{inline(' '.join(block))}</p>"))
        else:
            out.append(f"<p>{inline(' '.join(block))}</p>")
    flush()
    return "\n".join(out)


def page(markdown: str, title: str) -> str:
    """A whole HTML page from fpq's Markdown."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style></head>\n<body>\n{body_html(markdown)}\n</body></html>\n")


def rst_caption(*parts: str) -> str:
    """A caption file for the Snakemake report (reStructuredText, which the report first reads as a
    Jinja template): the first part in bold, the others as paragraphs, RST markup characters escaped
    and the whole inside a Jinja raw block.

    >>> print(rst_caption("Table 2: x_y", "Made from config ci"), end="")
    {% raw %}**Table 2: x\\_y**
    <BLANKLINE>
    Made from config ci{% endraw %}
    """
    def plain(text: str) -> str:
        return re.sub(r"([\\*`|_])", r"\\\1", text)

    head, *rest = parts
    return "{% raw %}" + "\n\n".join([f"**{plain(head)}**"] + [plain(p) for p in rest if p]) + "{% endraw %}\n"
