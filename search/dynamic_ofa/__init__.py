"""Dynamic-OFA: the Pareto family of sub-networks per processor and its tools."""
