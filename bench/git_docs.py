"""Copy a corpus for bench/answer_quality.py: the prose documentation Debian's git package installs.

    .venv/bin/python bench/git_docs.py [--source /usr/share/doc/git] [--out var/corpora/git-docs]
    .venv/bin/python bench/answer_quality.py var/corpora/git-docs bench/git_docs_questions.tsv

Debian's `git` package (GNU GPL version 2) installs a few readable pages under `/usr/share/doc/git`
(Git 2.39 here): the Debian notes on serving repositories and on the packaging sources, the note
on the retired Emacs modules, and the documentation of some of contrib/'s tools (git-subtree,
git-contacts, hg-to-git and git-jump). They are plain text, reference pages for software that
nobody here wrote; each is uploaded under its own name (git-jump's page is `README`). Git's own
`README.md` is left out: bench/answer_quality.py never uploads a file of that name.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from installed_docs import main  # noqa: E402

FILES = [
    "README.Debian",
    "README.source",
    "README.emacs",
    "contrib/subtree/git-subtree.txt",
    "contrib/contacts/git-contacts.txt",
    "contrib/hg-to-git/hg-to-git.txt",
    "contrib/git-jump/README",
]


if __name__ == "__main__":
    main(__doc__, FILES, "/usr/share/doc/git", "git-docs", "install Debian's git package")
