"""Initialisation methods for new embedding rows, one module per method, behind a registry."""

from tokengraft.methods.registry import (
    Donor,
    MethodInput,
    MethodSpec,
    Need,
    RefineInput,
    get_method,
    load_all,
    register,
)

__all__ = [
    "Donor",
    "MethodInput",
    "MethodSpec",
    "Need",
    "RefineInput",
    "get_method",
    "load_all",
    "register",
]
