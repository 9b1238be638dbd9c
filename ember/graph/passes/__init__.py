"""Graph passes: each a pure function ``Module -> Module``, one per file.

::

    from ember.graph.passes import optimize, run_passes, default_pipeline
    mod = optimize(mod, params)          # bind weights, then the default pipeline
"""

from ember.graph.passes.activations import rewrite_activations
from ember.graph.passes.bind_params import bind_params
from ember.graph.passes.eliminate_dead_code import eliminate_dead_code
from ember.graph.passes.fold_constants import fold_constants
from ember.graph.passes.fuse_ops import fuse_ops
from ember.graph.passes.infer_types import infer_types
from ember.graph.passes.pipeline import default_pipeline, optimize, pass_name, run_passes
from ember.graph.passes.simplify import simplify

__all__ = [
    "bind_params",
    "default_pipeline",
    "eliminate_dead_code",
    "fold_constants",
    "fuse_ops",
    "infer_types",
    "optimize",
    "pass_name",
    "rewrite_activations",
    "run_passes",
    "simplify",
]
