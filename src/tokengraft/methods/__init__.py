"""Initialisation methods for new embedding rows, one module per method, behind a registry."""

from tokengraft.methods.registry import (
    Donor,
    Extras,
    MethodInput,
    MethodRows,
    MethodSpec,
    Need,
    Param,
    RefineInput,
    get_method,
    load_all,
    register,
)

__all__ = [
    "Donor",
    "Extras",
    "MethodInput",
    "MethodRows",
    "MethodSpec",
    "Need",
    "Param",
    "RefineInput",
    "get_method",
    "load_all",
    "register",
]
