"""File-level I/O helpers: atomic writes and log file discovery."""
