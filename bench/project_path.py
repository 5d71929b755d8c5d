"""Put the project root on sys.path, so that `tests.seaweed` can be imported from bench scripts.

Import this module (for its side effect) before any `tests.*` import.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.append(str(PROJECT_ROOT))
