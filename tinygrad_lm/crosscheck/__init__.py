"""Independent PyTorch implementations used by the optional cross-check tests and benchmarks.
Importing a module here needs torch; nothing in the core imports this package."""
