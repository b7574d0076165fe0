"""Connectors: the checkpointed protocol and the sources Sluice can index."""
