"""Lightning systems: supernet training and sub-network evaluation."""
