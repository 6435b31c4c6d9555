"""Copy a corpus for bench/answer_quality.py: pip's user and maintainer documentation.

    .venv/bin/python bench/pip_docs.py [--source /usr/share/doc/python3-pip/html] [--out var/corpora/pip-docs]
    .venv/bin/python bench/answer_quality.py var/corpora/pip-docs bench/pip_docs_questions.tsv

Debian's `python3-pip` package installs pip's own documentation (MIT licence) as Markdown
and reStructuredText, some of it gzip-compressed. These 13 pages (configuration, caching,
certificates, authentication, hashes, version control, release and deprecation policy,
issue triage, the user guide) are a handbook that nobody here wrote, about software rather
than people; each is uploaded under its own name (`.rst` as plain text).
"""

import argparse
import gzip
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=Path("/usr/share/doc/python3-pip/html"))
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "corpora" / "pip-docs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        plain, packed = args.source / name, args.source / f"{name}.gz"
        if plain.exists():
            data = plain.read_bytes()
        elif packed.exists():
            data = gzip.decompress(packed.read_bytes())
        else:
            sys.exit(f"missing {plain} (install Debian's python3-pip package)")
        (args.out / Path(name).name).write_bytes(data)
    print(f"{len(FILES)} files in {args.out}")


if __name__ == "__main__":
    main()
