"""What the benchmark scripts share (`support`: model, batches, clock) and `make bench`'s figures and record
(`record`). A package, not scripts: tests/test_scripts_import.py runs every `scripts/*.py`, and these have no
`main()`. Imported as `bench_kit.*` by scripts run as `python scripts/NAME.py`, whose folder is on sys.path."""
