"""Activities: all of Sluice's I/O, one module per queue family."""
