"""User files: uploads indexed for their owner (and their project's members) only."""
