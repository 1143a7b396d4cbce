"""好差评 over the event store: the rating service, its invitations and its timers."""
