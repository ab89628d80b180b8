"""Write the care-gap record: precision and recall of the rules on the planted set and the hand-written cases,
and the compliance of every drafted physician query (docs/GAPS.md).

    .venv/bin/python scripts/care_gap_record.py [--cases 400] [--seed 1] [--out experiments/]
"""

from __future__ import annotations

import sys

from medcoder.evaluation.care_gaps import main

if __name__ == "__main__":
    sys.exit(main())
