"""Peak memory of the quick pipeline's stages on CPU, and whether fine-tuning grows memory over iterations.

    python scripts/benchmark_memory.py                      # small settings, ~10 min on 2 CPU cores
    python scripts/benchmark_memory.py --iterations 20 --num_envs 8 --output memory.json

Prints one JSON document (and writes it with --output); exit code 1 when fine-tuning grows beyond the limit,
2 when a stage fails. What is measured: ``vt_refine.app.benchmarks.memory``, which does the work.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> int:
    from vt_refine.app.benchmarks.memory import MemorySettings, benchmark_memory
    from vt_refine.utils.errors import UserError

    defaults = MemorySettings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=defaults.iterations, help="DPPO iterations of the "
                        "fine-tuning stage")
    parser.add_argument("--num_envs", type=int, default=defaults.num_envs, help="envs of every stage")
    parser.add_argument("--num_demos", type=int, default=defaults.num_demos, help="demos collected")
    parser.add_argument("--pretrain_steps", type=int, default=defaults.pretrain_steps,
                        help="pre-training steps (quick profile)")
    parser.add_argument("--steps_per_env", type=int, default=defaults.steps_per_env,
                        help="env steps per env per DPPO iteration")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    settings = MemorySettings(args.iterations, args.num_envs, args.num_demos, args.pretrain_steps,
                              args.steps_per_env)
    try:
        result = benchmark_memory(settings, args.work)
    except UserError as error:
        print(f"benchmark_memory: error: {error}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text)
    return 0 if result["finetune_growth"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
