"""Report sections and plots of the methods' results (forgetting and auditing today)."""
