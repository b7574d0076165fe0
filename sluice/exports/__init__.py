"""CSV exports: attempts, documents or errors streamed page by page into the file store."""
