"""Delivery channels: each a small port that sends one rendered message and classifies the outcome."""
