"""Write the shipped campaigns' watchlist examples (campaigns/watch/) from the sandbox portraits.

Example photos of the watched person (`eileen_collins/`, seeds 100-103) and of someone else as
negatives (`others/`, Grace Hopper, seeds 100-102): variants of public-domain portraits (see
gettok/sandbox/portraits/LICENCES.md). Replace them with photos of the person your study
watches. Held-out evaluation photos use other seeds (tests/test_watch_faces.py).
"""

import sys
from pathlib import Path

from gettok.sandbox.faces import write_variants


def main(root: Path) -> None:
    write_variants("eileen_collins", root / "eileen_collins", range(100, 104))
    write_variants("grace_hopper", root / "others", range(100, 103))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("campaigns/watch"))
