"""What a VP's current guest segment is (``VP.work``)."""

W_NONE, W_HANDLER, W_TASK, W_COMPUTE, W_WAIT = 0, 1, 2, 3, 4
