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

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=Path("/usr/lib/node_modules/npm/docs/content"))
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "corpora" / "npm-docs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        path = args.source / name
        if not path.exists():
            sys.exit(f"missing {path} (install npm, e.g. with NodeSource's nodejs package)")
        (args.out / Path(name).name).write_bytes(path.read_bytes())
    print(f"{len(FILES)} files in {args.out}")


if __name__ == "__main__":
    main()
