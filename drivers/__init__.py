"""Hardware drivers: one module per kind of hardware, each with a small interface,
its real backend(s) (imported lazily) and a simulated backend."""
