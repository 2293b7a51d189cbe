"""Write one row of docs/compat.md from the environment this interpreter runs in and a pytest log.

    python tests/compat/record.py SETTING PYTEST_LOG [docs/compat.md]

The row of SETTING is replaced (or added): the date, the Python, each package of `PACKAGES` as
installed here, what ran (the quick tier) and pytest's summary ('689 passed, 1 skipped in 281s').
The row passes when pytest's summary counts no failure and no error.
"""
from __future__ import annotations

import datetime
import importlib.metadata
import platform
import re
import sys
from pathlib import Path

PACKAGES = ("torch", "torchvision", "numpy", "pandas", "scipy", "snakemake")
COLUMNS = ("setting", "date", "python", *PACKAGES, "what ran", "result", "passed")
SUMMARY = re.compile(r"^=*\s*(\d+ (?:passed|failed|error|errors|skipped|deselected).*?)\s*=*$")


def summary(log: str) -> str:
    """pytest's last summary line, without its '=' rules ('' where the log has none)."""
    lines = [m.group(1) for m in map(SUMMARY.match, log.splitlines()) if m]
    return lines[-1] if lines else ""


def passed(result: str) -> bool:
    return bool(re.search(r"\d+ passed", result)) and not re.search(r"\d+ (failed|errors?)\b", result)


def installed(name: str) -> str:
    try:
        return importlib.metadata.version(name).split("+")[0]
    except importlib.metadata.PackageNotFoundError:
        return "—"


def row(setting: str, result: str, what: str = "quick tier (`python -m pytest`)") -> dict[str, str]:
    return {"setting": setting, "date": datetime.date.today().isoformat(), "python": platform.python_version(),
            **{p: installed(p) for p in PACKAGES}, "what ran": what, "result": result or "no summary",
            "passed": "yes" if passed(result) else "no"}


def read_rows(text: str) -> list[dict[str, str]]:
    """The table's rows (the Markdown table whose header is `COLUMNS`)."""
    rows, header = [], None
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if cells is None:
            header = None if rows else header
            continue
        if tuple(cells) == COLUMNS:
            header = cells
        elif header and not set(line) <= set("|-: "):
            rows.append(dict(zip(header, cells)))
    return rows


def table(rows: list[dict[str, str]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    return "\n".join(lines + ["| " + " | ".join(r.get(c, "—") for c in COLUMNS) + " |" for r in rows])


def replace_row(text: str, new: dict[str, str]) -> str:
    """`text` with its table's row of `new["setting"]` replaced by `new` (added where absent)."""
    rows = read_rows(text)
    old = table(rows) if rows else None
    rows = [new if r["setting"] == new["setting"] else r for r in rows]
    if new["setting"] not in {r["setting"] for r in rows}:
        rows.append(new)
    if old is None:
        return text.rstrip("\n") + "\n\n" + table(rows) + "\n"
    return text.replace(old, table(rows))


def main(argv: list[str]) -> int:
    setting, log = argv[0], Path(argv[1]).read_text()
    target = Path(argv[2] if len(argv) > 2 else "docs/compat.md")
    new = row(setting, summary(log))
    target.write_text(replace_row(target.read_text(), new))
    print(" | ".join(new.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
