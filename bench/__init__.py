"""Benchmark commands (``python -m bench.<name>``): they print figures, they are not tests.

Each function folder is an import root of its own (as in its Lambda artifact); the shared layer
is installed in the virtualenv. Importing this package puts the function folders on ``sys.path``
so ``python -m bench.<name>`` works from the repository root without a ``PYTHONPATH``.
"""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
for _folder in ("functions/conversations", "functions/chat", "functions/migrate"):
    if str(_ROOT / _folder) not in sys.path:
        sys.path.append(str(_ROOT / _folder))
