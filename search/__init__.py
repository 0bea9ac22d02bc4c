"""Search spaces, benchmarks, Pareto tools and search strategies."""
