"""The runtime: load and run compiled artifacts with numpy and ctypes only.

Imports nothing from the compiler, so an artifact runs on a device that has
only numpy installed.
"""

from ember.runtime.model import Model, TensorInfo, load

__all__ = ["Model", "TensorInfo", "load"]
