"""``python -m scripts.docs_reference [--check]``: rewrite the generated
reference pages, or (``--check``) list the stale ones and exit 1."""

from __future__ import annotations

import argparse
import sys

from scripts.docs_reference import REGENERATE, ROOT, pages, stale


def main() -> int:
    parser = argparse.ArgumentParser(prog=REGENERATE, description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a page is stale")
    args = parser.parse_args()
    if args.check:
        old = stale()
        for path in old:
            print(f"stale: {path.relative_to(ROOT)} (run: {REGENERATE})", file=sys.stderr)
        return 1 if old else 0
    for path, write in pages().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(write(), encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
