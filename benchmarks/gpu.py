"""``python -m benchmarks.gpu``: the measurements on a CUDA machine in about five minutes.

The same sections as ``python -m benchmarks`` with the ``gpu`` plan (256 and
1024 px, the paper's batch sizes, bf16 among the options), a 290 s
measurement budget, one printed table set; ``--sections compile`` adds the
``torch.compile`` cases (slow to start: not in the default run).  Results go
to ``docs/benchmarks/gpu.json`` and ``.md`` unless ``--out`` says otherwise
(on a lent machine: ``--out $OUT``).  Other flags as ``python -m benchmarks``.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> dict:
    from .__main__ import measure, parse_args

    args = parse_args(argv, prog="python -m benchmarks.gpu")  # --help and bad options first
    import torch

    if not torch.cuda.is_available() and args.device == "auto":
        raise SystemExit(
            "python -m benchmarks.gpu: error: needs a CUDA GPU (use python -m benchmarks,"
            " or give --device)"
        )
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32: tf32 would change numerics
    torch.backends.cudnn.allow_tf32 = False
    return measure(args, default_plan="gpu")


if __name__ == "__main__":
    main()
