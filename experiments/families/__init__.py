"""Built-in experiment families: each module registers its experiments on import."""
