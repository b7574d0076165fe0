"""Connector indexing: the run's messages, the claim-check store and the batch pipeline."""
