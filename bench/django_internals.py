"""Extract a corpus of real team-policy documents for bench/answer_quality.py: Django's own internals docs.

    .venv/bin/python bench/django_internals.py [--sdist PATH] [--out var/corpora/django-internals]
    .venv/bin/python bench/answer_quality.py var/corpora/django-internals bench/django_internals_questions.tsv
    .venv/bin/python bench/django_internals.py --corpus faq   # the FAQ, into var/corpora/django-faq
    .venv/bin/python bench/django_internals.py --corpus deploy   # deployment and security pages

The Django source distribution (BSD licence) holds the project's governance,
security, release and contribution policies as reStructuredText: a handbook
that nobody here wrote, in a format other than the Markdown handbook (each
file is uploaded as plain text). Without --sdist, the sdist of the installed
Django version is fetched with `pip download` (the package registry, once).
"""

import argparse
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = [
    "docs/internals/organization.txt",
    "docs/internals/security.txt",
    "docs/internals/release-process.txt",
    "docs/internals/mailing-lists.txt",
    "docs/internals/contributing/committing-code.txt",
    "docs/internals/contributing/bugs-and-features.txt",
    "docs/internals/contributing/new-contributors.txt",
    "docs/internals/contributing/triaging-tickets.txt",
    "LICENSE",
]
# A second corpus that the answerer was never tuned on: the FAQ and the "misc" pages (questions a user
# asks, answered in prose), for a fresh set of questions (bench/django_faq_questions.tsv).
FAQ_FILES = [
    *(f"docs/faq/{name}.txt" for name in ("admin", "contributing", "general", "help", "install", "models")),
    *(f"docs/faq/{name}.txt" for name in ("troubleshooting", "usage")),
    *(f"docs/misc/{name}.txt" for name in ("api-stability", "design-philosophies", "distributions")),
    "LICENSE",
]
# A third: deployment and security pages (bench/django_deploy_questions.tsv).
DEPLOY_FILES = [
    "docs/howto/deployment/checklist.txt",
    "docs/topics/security.txt",
    "docs/ref/clickjacking.txt",
    "docs/topics/pagination.txt",
    "LICENSE",
]
CORPORA = {"internals": FILES, "faq": FAQ_FILES, "deploy": DEPLOY_FILES}


def fetch_sdist(folder):
    import django

    version = django.get_version()
    subprocess.run(  # noqa: S603 - fixed arguments
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            f"django=={version}",
            "-d",
            folder,
        ],
        check=True,
        capture_output=True,
    )
    return next(Path(folder).glob("*.tar.gz"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sdist", help="a Django .tar.gz source distribution (default: fetched with pip)")
    parser.add_argument("--corpus", choices=sorted(CORPORA), default="internals")
    parser.add_argument("--out", help="default: var/corpora/django-CORPUS")
    args = parser.parse_args()
    out = Path(args.out or ROOT / "var" / "corpora" / f"django-{args.corpus}")
    files = CORPORA[args.corpus]
    with tempfile.TemporaryDirectory() as tmp:
        sdist = Path(args.sdist) if args.sdist else fetch_sdist(tmp)
        with tarfile.open(sdist) as archive:
            members = {m.name.split("/", 1)[1]: m for m in archive.getmembers() if "/" in m.name}
            if out.exists():
                shutil.rmtree(out)
            out.mkdir(parents=True)
            for name in files:
                data = archive.extractfile(members[name]).read()
                # LICENSE is kept beside the documents as README.md, which the benchmark skips.
                target = out / ("README.md" if name == "LICENSE" else Path(name).name)
                target.write_bytes(data)
    print(f"{len(files) - 1} documents from {sdist.name} in {out}")


if __name__ == "__main__":
    main()
