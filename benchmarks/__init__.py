"""ganenc's benchmarks: ``python -m benchmarks`` (CPU) and ``python -m benchmarks.gpu`` (CUDA).

See ``benchmarks/README.md`` and ``docs/benchmarks.md``.
"""
