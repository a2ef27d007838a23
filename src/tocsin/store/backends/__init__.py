"""Store backends: one module per database, each a function ``open_<name>(url) -> Store``."""
