"""Copy a corpus for bench/answer_quality.py: Valgrind's own user documentation.

    .venv/bin/python bench/valgrind_docs.py [--source /usr/share/doc/valgrind/html] [--out var/corpora/valgrind-docs]
    .venv/bin/python bench/answer_quality.py var/corpora/valgrind-docs bench/valgrind_docs_questions.tsv

Debian's `valgrind` package installs the Valgrind manual as HTML (GNU Free Documentation
License, no invariant sections) under `/usr/share/doc/valgrind/html` (Valgrind 3.19 here).
These 4 pages (the quick start guide, the FAQ, the manual's introduction and the notes for
packagers) are reference pages for software that nobody here wrote; each is uploaded under
its own name as Debian ships it, navigation links and all.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from installed_docs import main  # noqa: E402

FILES = [
    "quick-start.html",
    "faq.html",
    "manual-intro.html",
    "dist.readme-packagers.html",
]


if __name__ == "__main__":
    main(__doc__, FILES, "/usr/share/doc/valgrind/html", "valgrind-docs", "install Debian's valgrind package")
