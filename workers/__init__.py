"""Worker processes: the table of kinds and the runner that serves their queues."""
