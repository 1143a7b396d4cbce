"""请你来找茬 / 办不成事 over the event store: the complaint service and its timers."""
