"""Booking hall appointments: the service over the event store, its timers, and the person key."""
