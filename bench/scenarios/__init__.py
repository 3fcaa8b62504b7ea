"""One module per benchmark scenario.  Each has ``NAME`` and ``run(stack, quick)``, which
starts what it needs on the shared :class:`bench.stack.Stack`, stops it again and returns an
:class:`bench.results.Outcome`."""
