"""Initialisation methods for new embedding rows, one module per method, behind a registry."""

from tokengraft.methods.registry import (
    MethodInput,
    MethodSpec,
    Need,
    get_method,
    load_all,
    register,
)

__all__ = ["MethodInput", "MethodSpec", "Need", "get_method", "load_all", "register"]
