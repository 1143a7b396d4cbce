"""智慧大厅 queueing over the event store: the commands, and the 爽约 of a missed booked ticket."""
