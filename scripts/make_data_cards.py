"""Fill the `<!-- generated:stats -->` block of every card in data_cards/ with generated statistics.

    .venv/bin/python scripts/make_data_cards.py                 # all cards (what `make cards` runs)
    .venv/bin/python scripts/make_data_cards.py --only codiesp.md --no-baseline

The embedded corpus is generated in memory with the same notes/seed as `make train` (3000, 1).
External datasets are read from the shared data folder unless a path is given; MIMIC is
credentialed and its card says so when the files are absent. Logic: `medcoder.cards.data_cards`.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from medcoder.cards.data_cards import GENERATORS, CardOptions, fill_cards
from medcoder.paths import project_root


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards-dir", type=Path, default=project_root() / "data_cards", help="folder of the card files")
    parser.add_argument("--only", nargs="+", choices=sorted(GENERATORS), default=None, help="regenerate only these cards")
    parser.add_argument("--notes", type=int, default=3000, help="embedded corpus size (default 3000, as `make train`)")
    parser.add_argument("--seed", type=int, default=1, help="embedded corpus seed (default 1, as `make train`)")
    parser.add_argument("--codiesp-dir", type=Path, default=None, help="CodiEsp folder (default <shared data>/codiesp)")
    parser.add_argument("--mdace-dir", type=Path, default=None, help="MDACE folder (default <shared data>/mdace)")
    parser.add_argument("--mimic-iv-dir", type=Path, default=None, help="MIMIC-IV hosp folder (default: the loader's)")
    parser.add_argument("--mimic-iii-dir", type=Path, default=None, help="MIMIC-III folder (default: the loader's)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the TF-IDF baseline numbers (fast)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    options = CardOptions(
        notes=args.notes, seed=args.seed, codiesp_dir=args.codiesp_dir, mdace_dir=args.mdace_dir,
        mimic_iv_dir=args.mimic_iv_dir, mimic_iii_dir=args.mimic_iii_dir, run_baseline=not args.no_baseline,
        command=" ".join(["python scripts/make_data_cards.py", *map(shlex.quote, argv)]),
    )
    for card, outcome in fill_cards(args.cards_dir, options, only=args.only).items():
        print(f"{card}: {outcome}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
