"""Cross-city 通办 between independent deployments: signed messages, partners, outbox and inbox."""
