import sys
from pathlib import Path

# The user's module of custom ops (example_ops.py) is imported by name, here and in the
# tuner's worker processes (which start with this sys.path).
sys.path.insert(0, str(Path(__file__).parent))
