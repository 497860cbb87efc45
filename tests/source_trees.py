"""One parse per source file per test process.

Four unit tests read the project's own code as syntax trees (the layers, the parsing discipline,
the node group, the paths into inventories/); parsing every file costs about a second, so each
worker parses a file once and they share the tree. The trees are read, never changed.
"""
from __future__ import annotations

import ast
import gc
import functools


@functools.lru_cache(maxsize=None)
def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    tree = ast.parse(source, filename)
    gc.freeze()     # kept for the session: the cyclic collector need not walk its nodes again
    return tree
