"""Data in and out: atomic writes, tables (CSV, TSV, JSON, JSON Lines, Parquet, datasets), task folders, sampling."""
