"""The DuckDB warehouse: the `runs` table and its cleaning, read-only access, export."""
