"""The Darknet frontend: ``.cfg`` + ``.weights`` (YOLO, Darknet classifiers) -> graph IR.

    mod, params = from_darknet("yolov3-tiny.cfg")        # yolov3-tiny.weights beside it
    "yolo" in supported_ops()                            # True

Darknet itself is not needed: ``cfg`` parses the sections, ``weights`` reads the
binary weights, ``layers`` converts each section kind (``context`` holds the
converter registry and what a converter gets), ``importer`` walks the network
and finds the file pair. Importing this package registers every converter.
"""

from ember.frontend.darknet import layers  # noqa: F401 (registers the converters)
from ember.frontend.darknet.cfg import Section, parse_cfg
from ember.frontend.darknet.context import CONVERTERS
from ember.frontend.darknet.importer import darknet_files, from_darknet, supported_ops
from ember.frontend.darknet.weights import WeightsReader

__all__ = [
    "CONVERTERS",
    "Section",
    "WeightsReader",
    "darknet_files",
    "from_darknet",
    "parse_cfg",
    "supported_ops",
]
