"""Department event streams: the hub that fans the published stream out, and webhook delivery."""
