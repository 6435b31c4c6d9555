"""Copy documentation pages a package installed on this machine into a corpus folder for bench/answer_quality.py.

Shared by the corpus builders over installed documentation (bench/pip_docs.py, bench/npm_docs.py,
bench/valgrind_docs.py): each names its pages, where they are installed and what installs them.
"""

import argparse
import gzip
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(doc, files, source, name, missing):
    """Copy `files` (paths under `source`; a page kept gzip-compressed as `NAME.gz` is unpacked) into
    var/corpora/`name` (or --out), each under its own file name; `missing` says what installs them."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=Path(source))
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "corpora" / name)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for file in files:
        plain, packed = args.source / file, args.source / f"{file}.gz"
        if plain.exists():
            data = plain.read_bytes()
        elif packed.exists():
            data = gzip.decompress(packed.read_bytes())
        else:
            sys.exit(f"missing {plain} ({missing})")
        (args.out / Path(file).name).write_bytes(data)
    print(f"{len(files)} files in {args.out}")
