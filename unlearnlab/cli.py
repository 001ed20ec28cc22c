"""The ``unlearnlab`` command: ``data``, ``run``, ``build`` and ``grade``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence


def cmd_data(args: argparse.Namespace) -> int:
    """Say where MNIST is, whether its files check out and how many images each split has."""
    from .data import MNISTNotFoundError, data_root, extracted_raw_dir, load_mnist, verify_files

    root = data_root(args.root)
    source = "--root" if args.root else "$UNLEARNLAB_DATA" if os.environ.get("UNLEARNLAB_DATA") else "cache folder"
    print(f"MNIST root: {root} (from {source})")
    raw = extracted_raw_dir(args.root)
    if raw is None:
        try:
            load_mnist(train=True, root=args.root, download=not args.offline)
        except MNISTNotFoundError as err:
            print(err, file=sys.stderr)
            return 1
        raw = extracted_raw_dir(args.root)
    print(f"files read from: {raw}")
    status = verify_files(args.root)
    for name, state in status.items():
        print(f"  {name:26s} {state}")
    if any(state != "ok" for state in status.values()):
        print("some files do not check out: replace them with the originals", file=sys.stderr)
        return 1
    for train, label in ((True, "train"), (False, "test")):
        data = load_mnist(train=train, root=args.root, download=False)
        print(f"{label:5s}: {len(data):,} images; per class {data.class_counts()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subcommand per job."""
    parser = argparse.ArgumentParser(prog="unlearnlab", description="The machine unlearning course's tools.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="find MNIST, check its files and count the images")
    data.add_argument("--root", help="folder containing MNIST/raw (default: $UNLEARNLAB_DATA or the cache)")
    data.add_argument("--offline", action="store_true", help="never try to download")
    data.set_defaults(func=cmd_data)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
