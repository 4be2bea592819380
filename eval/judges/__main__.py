"""``python -m cloak.eval.judges train NAME | list``."""
from __future__ import annotations

import argparse
import logging
import sys

from . import JudgeError, add_judge_parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cloak.eval.judges")
    sub = parser.add_subparsers(dest="command", required=True)
    add_judge_parser(sub)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parser.parse_args(["judge", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except JudgeError as e:
        print(f"cloak: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
