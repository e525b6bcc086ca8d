"""Networks: a multi-head trunk whose units carry timestamps (see :mod:`den.models.network`)."""

from den.models.network import MultiHeadNet, build_network

__all__ = ["MultiHeadNet", "build_network"]
