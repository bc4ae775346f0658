"""The host layer: physical CPUs, host threads and a host scheduler under the VTL contexts.

A scenario's ``[host]`` section (:class:`~vsmsim.host.config.HostConfig`) turns it on;
docs/host.md explains the model. Modules: ``config`` (the section), ``layout`` (which
threads exist, where they may run), ``machine`` (CPUs, run queues, switch costs, books),
``policy`` (the plug-in interface and registry), ``fair`` and ``fifo`` (the built-in
policies), ``noise`` (background threads).
"""

from . import fair, fifo  # noqa: F401  (register the built-in policies)
from .policy import POLICIES, HostPolicy, register_policy

__all__ = ["POLICIES", "HostPolicy", "register_policy"]
