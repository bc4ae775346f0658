"""What a VP's current guest segment is (``VP.work``)."""

W_NONE, W_HANDLER, W_TASK, W_COMPUTE, W_WAIT = 0, 1, 2, 3, 4

#: A VP's residency accumulator ``VP.acc`` has one slot per VTL (0..V-1), then these, at
#: ``V + offset``: time in VTL transitions, in other exits, and halted (all ns).
RESIDENCY_EXTRA = ("transition", "exit", "idle")
OFF_TRANSITION, OFF_EXIT, OFF_IDLE = range(len(RESIDENCY_EXTRA))

#: Where a context stands for a delivery starting now (Simulation.situation): its VTL runs,
#: the VP is halted in it, it is an inactive higher VTL (the VP running or halted below
#: it), or it is below the active VTL.
SIT_RUNNING, SIT_HALTED, SIT_INACTIVE, SIT_INACTIVE_HALTED, SIT_LOWER = range(5)
