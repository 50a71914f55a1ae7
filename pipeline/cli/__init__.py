"""The command line: `promptreel COMMAND` (also `python -m pipeline`, `python -m jobs.render`).

parser.py turns flags into a RunConfig, commands.py does each command and prints; the
work lives in the library. Exit codes are the design's: 0, 2, 3, 4 (130: interrupted).
"""

from __future__ import annotations

import sys

from pipeline.driver.stopping import StoppedNow
from pipeline.errors import PromptreelError


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(argv)
    except KeyboardInterrupt:  # also one that lands while an error above is printed
        print(
            "\ninterrupted: finished work is saved; run the same command to resume", file=sys.stderr
        )
        return 130


def _run(argv: list[str] | None) -> int:
    from pipeline.cli import commands
    from pipeline.cli.parser import build_parser

    args = build_parser().parse_args(argv)
    try:
        return getattr(commands, f"cmd_{args.command}")(args)
    except PromptreelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except StoppedNow as exc:
        print(f"\n{exc}: finished work is saved; run the same command to resume", file=sys.stderr)
        return 4


if __name__ == "__main__":
    sys.exit(main())
