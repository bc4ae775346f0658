"""vsmsim: a discrete-event simulator of Hyper-V VSM execution contexts inside KVM."""

__version__ = "0.1.0"
