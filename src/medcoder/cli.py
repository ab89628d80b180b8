"""The `medcoder` command: corpus generation, prediction, registry and card operations.

Each subcommand is a thin argparse wrapper over a library function, so everything a user can do
here is also callable (and tested) from Python. Errors a user can fix (bad paths, invalid input
records) are printed as one line and exit with status 2, never as a stack trace.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medcoder.data.schema import RecordError


def _cmd_synth(args: argparse.Namespace) -> int:
    from medcoder.data.synth import write_corpus

    counts = write_corpus(Path(args.out), n_notes=args.notes, seed=args.seed)
    for split, n in counts.items():
        print(f"{split}: {n} notes -> {Path(args.out) / (split + '.jsonl')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medcoder", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser("synth", help="write the embedded synthetic corpus (train/val/test.jsonl)")
    synth.add_argument("--out", required=True, help="output directory")
    synth.add_argument("--notes", type=int, default=3000, help="number of notes in all splits (default 3000)")
    synth.add_argument("--seed", type=int, default=1, help="random seed; the same seed gives identical files")
    synth.set_defaults(func=_cmd_synth)

    from medcoder.cards.model_card import add_card_arguments, cmd_card

    card = sub.add_parser("card", help="write the model card of a registered model version (Markdown + HTML)")
    add_card_arguments(card)
    card.set_defaults(func=cmd_card)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (RecordError, FileNotFoundError, ValueError) as err:
        print(f"medcoder {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
