"""The training side: settings (config, presets), the run (runs, loop, evaluate), checkpoints,
MPI data parallelism, signals, FLOPs and MFU, and the benchmark driver.

Above the models and decoding; the command line (`cli/`) drives it."""
