import sys
from pathlib import Path

# The measurement tests' builder processes import the broken templates by module name.
sys.path.insert(0, str(Path(__file__).parent))
