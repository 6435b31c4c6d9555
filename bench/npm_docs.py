"""Copy a corpus for bench/answer_quality.py: npm's own user documentation.

    .venv/bin/python bench/npm_docs.py [--source /usr/lib/node_modules/npm/docs/content] [--out var/corpora/npm-docs]
    .venv/bin/python bench/answer_quality.py var/corpora/npm-docs bench/npm_docs_questions.tsv

The npm command-line client installs its documentation (Artistic License 2.0) as Markdown
beside its code; NodeSource's `nodejs` package puts it under `/usr/lib/node_modules/npm`
(npm 11.x here). These 13 pages (developers' guide, logging, organisations, the registry,
removal, scopes, scripts, folders, installation, `.npmrc`, and the `unpublish`,
`deprecate` and `cache` commands) are reference pages for software that nobody here wrote;
each is uploaded under its own name, YAML front matter and all, as npm ships it.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from installed_docs import main  # noqa: E402

FILES = [
    "using-npm/developers.md",
    "using-npm/logging.md",
    "using-npm/orgs.md",
    "using-npm/registry.md",
    "using-npm/removal.md",
    "using-npm/scope.md",
    "using-npm/scripts.md",
    "configuring-npm/folders.md",
    "configuring-npm/install.md",
    "configuring-npm/npmrc.md",
    "commands/npm-unpublish.md",
    "commands/npm-deprecate.md",
    "commands/npm-cache.md",
]


if __name__ == "__main__":
    main(
        __doc__,
        FILES,
        "/usr/lib/node_modules/npm/docs/content",
        "npm-docs",
        "install npm, e.g. with NodeSource's nodejs package",
    )
