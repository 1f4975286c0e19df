"""The application layer: the ``vt-refine`` commands and the stages they run.

``cli`` checks every input once at the edge (task, device, paths, profile, checkpoint) and calls one stage;
``pipeline`` chains them. One module per stage: ``collect``, ``pretrain``, ``finetune``, ``evaluate``,
``report`` (and ``demo``, ``benchmark``, ``open_loop``, ``trace_parts``, ``gui_backend``); shared by them:
``profile`` (the one typed run profile), ``checkpoint`` (a file opened once), ``envs`` (building registered envs),
``viz`` (plots). ``benchmarks/`` holds the work of the ``scripts/benchmark_*.py`` (each returns its figures).

May import every domain package (``tasks``, ``expert``, ``policies``, ``rl``, ``data``, ``sensors``, ``assets``,
``utils``); none of them imports this one. A stage does not import another stage to ask it a question.
"""
