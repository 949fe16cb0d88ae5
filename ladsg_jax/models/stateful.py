"""Applying a module that may carry BatchNorm statistics (ResNet bottoms, the top model)."""
from __future__ import annotations


def split_variables(variables: dict) -> tuple[dict, dict]:
    """`module.init(...)`'s variables as (params, batch_stats); stats are {} without BatchNorm."""
    return variables.get("params", {}), variables.get("batch_stats", {})


def apply_stateful(module, params: dict, batch_stats: dict, x, train: bool):
    """`(output, batch_stats)`: in training the statistics come back updated from the batch,
    in evaluation the running statistics are used and returned as they were."""
    variables = {"params": params}
    if batch_stats:
        variables["batch_stats"] = batch_stats
    if train and batch_stats:
        out, updates = module.apply(variables, x, train=True, mutable=["batch_stats"])
        return out, updates["batch_stats"]
    return module.apply(variables, x, train=train), batch_stats
