"""Copy a corpus for bench/answer_quality.py: pip's user and maintainer documentation.

    .venv/bin/python bench/pip_docs.py [--source /usr/share/doc/python3-pip/html] [--out var/corpora/pip-docs]
    .venv/bin/python bench/answer_quality.py var/corpora/pip-docs bench/pip_docs_questions.tsv

Debian's `python3-pip` package installs pip's own documentation (MIT licence) as Markdown
and reStructuredText, some of it gzip-compressed. These 13 pages (configuration, caching,
certificates, authentication, hashes, version control, release and deprecation policy,
issue triage, the user guide) are a handbook that nobody here wrote, about software rather
than people; each is uploaded under its own name (`.rst` as plain text).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from installed_docs import main  # noqa: E402

FILES = [
    "installation.md",
    "user_guide.rst",
    "topics/authentication.md",
    "topics/caching.md",
    "topics/configuration.md",
    "topics/dependency-resolution.md",
    "topics/https-certificates.md",
    "topics/local-project-installs.md",
    "topics/repeatable-installs.md",
    "topics/secure-installs.md",
    "topics/vcs-support.md",
    "development/release-process.rst",
    "development/issue-triage.md",
]


if __name__ == "__main__":
    main(__doc__, FILES, "/usr/share/doc/python3-pip/html", "pip-docs", "install Debian's python3-pip package")
