"""Copy a corpus for bench/answer_quality.py: Valgrind's own user documentation.

    .venv/bin/python bench/valgrind_docs.py [--source /usr/share/doc/valgrind/html] [--out var/corpora/valgrind-docs]
    .venv/bin/python bench/answer_quality.py var/corpora/valgrind-docs bench/valgrind_docs_questions.tsv

Debian's `valgrind` package installs the Valgrind manual as HTML (GNU Free Documentation
License, no invariant sections) under `/usr/share/doc/valgrind/html` (Valgrind 3.19 here).
These 4 pages (the quick start guide, the FAQ, the manual's introduction and the notes for
packagers) are reference pages for software that nobody here wrote; each is uploaded under
its own name as Debian ships it, navigation links and all.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = [
    "quick-start.html",
    "faq.html",
    "manual-intro.html",
    "dist.readme-packagers.html",
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=Path("/usr/share/doc/valgrind/html"))
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "corpora" / "valgrind-docs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        path = args.source / name
        if not path.exists():
            sys.exit(f"missing {path} (install Debian's valgrind package)")
        (args.out / name).write_bytes(path.read_bytes())
    print(f"{len(FILES)} files in {args.out}")


if __name__ == "__main__":
    main()
