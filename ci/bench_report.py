"""Turn pytest-benchmark JSON into the tables of benchmarks/RESULTS.md (medians and ratios)."""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def main(path: str) -> None:
    data = json.load(open(path))
    groups: dict[str, list] = defaultdict(list)
    for b in data["benchmarks"]:
        groups[b["group"]].append(b)
    for group, rows in groups.items():
        print(f"\n### {group}\n")
        print("| implementation | median | per file | ratio to pydicom | correct | extra |")
        print("|---|---|---|---|---|---|")
        # The reference is pydicom alone (not pydicom with another library's codec).
        anchors = [r for r in rows if "pydicom" in r["name"] and "fastdicom" not in r["name"]]
        alone = [r for r in anchors if "+" not in r["name"]]
        ref = (alone or anchors)[0]["stats"]["median"] if anchors else None
        for r in sorted(rows, key=lambda r: r["stats"]["median"]):
            med = r["stats"]["median"]
            extra = dict(r.get("extra_info", {}))
            files = extra.pop("files", None)
            correct = extra.pop("correct", "")
            per = f"{med / files * 1e6:.1f} µs ({files / med:,.0f} files/s)" if files else ""
            ratio = f"{ref / med:.2f}×" if ref else ""
            name = r["name"].split("[")[-1].rstrip("]") if "[" in r["name"] else r["name"]
            print(f"| {name} | {med * 1000:.1f} ms | {per} | {ratio} | {correct} | {extra or ''} |")


if __name__ == "__main__":
    main(sys.argv[1])
