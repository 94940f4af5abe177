"""Studies that outgrow one process: a TOML spec, cases split into chunks of days, run on
dask.distributed, written as one Parquet dataset (docs/studies.md)."""
