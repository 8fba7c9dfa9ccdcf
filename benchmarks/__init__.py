"""The benchmark (`python -m benchmarks.bench`, from the repository root) and the seed's reference
pipeline it measures against. Not part of the installed package: tests may import it, census_assets
never does."""
