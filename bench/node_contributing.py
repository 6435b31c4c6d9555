"""Copy a corpus for bench/answer_quality.py: the Node.js project's contributor process documents.

    .venv/bin/python bench/node_contributing.py [--source /usr/share/doc/nodejs/contributing] [--out var/corpora/node-contributing]
    .venv/bin/python bench/answer_quality.py var/corpora/node-contributing bench/node_contributing_questions.tsv

NodeSource's `nodejs` package installs the project's contributor documents (MIT licence) as
Markdown under `/usr/share/doc/nodejs/contributing` (Node.js 20.20.2 here). These 10 pages (the
collaborator guide, pull requests, the security release process, backporting, the commit
queue, feature requests, diagnostic tooling tiers, strategic initiatives, technical values and
security stewards' on/off-boarding) are process documents of a project nobody here runs; none of
them is in the Node.js project set (bench/nodejs_project_questions.tsv). Each is uploaded under
its own name as the package ships it.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from installed_docs import main  # noqa: E402

FILES = [
    "collaborator-guide.md",
    "pull-requests.md",
    "security-release-process.md",
    "backporting-to-release-lines.md",
    "commit-queue.md",
    "feature-request-management.md",
    "diagnostic-tooling-support-tiers.md",
    "strategic-initiatives.md",
    "technical-values.md",
    "security-steward-on-off-boarding.md",
]


if __name__ == "__main__":
    main(
        __doc__,
        FILES,
        "/usr/share/doc/nodejs/contributing",
        "node-contributing",
        "install the nodejs package, e.g. NodeSource's",
    )
