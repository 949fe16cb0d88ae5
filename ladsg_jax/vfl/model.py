"""The whole split model: every party's bottom, the cut, and the active party's top."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from ladsg_jax.defenses import Defense
from ladsg_jax.defenses.base import call_hook
from ladsg_jax.models import apply_stateful, make_bottom, make_top, split_variables
from ladsg_jax.vfl.cut import cut


def party_name(k: int) -> str:
    return f"party_{k}"


@dataclasses.dataclass(frozen=True)
class VFLModel:
    """K bottoms and one top (DESIGN §1). Party K-1 is active: it owns the top and the labels.

    Parameters are a dict keyed by party, `{"party_k": {"bottom": ...}}`, with the active
    party's entry also holding `"top"`; each party's subtree goes to its own optimizer.
    BatchNorm statistics (ResNet bottoms, the top model) are a dict of the same shape holding
    only the modules that have them. The passive parties' embeddings pass through the cut; the
    active party's own do not.
    """

    num_parties: int
    num_classes: int
    bottom: str
    bottom_hidden: tuple
    embed_dim: int
    top_model: str
    top_hidden: tuple
    vocab_size: int | None = None
    conv_gradients: str = "auto"

    @classmethod
    def from_config(cls, config, num_classes: int) -> "VFLModel":
        embed = config.embed_dim or num_classes
        return cls(num_parties=config.num_parties, num_classes=num_classes, bottom=config.bottom,
                   bottom_hidden=config.bottom_hidden, embed_dim=embed,
                   top_model=config.top_model, top_hidden=config.top_hidden,
                   vocab_size=config.vocab_size, conv_gradients=config.conv_gradients)

    @property
    def active(self) -> int:
        return self.num_parties - 1

    @property
    def passive(self) -> range:
        return range(self.num_parties - 1)

    def bottom_module(self):
        return make_bottom(self.bottom, self.bottom_hidden, self.embed_dim, self.vocab_size,
                           self.conv_gradients)

    def top_module(self):
        return make_top(self.top_model, self.top_hidden, self.num_classes)

    def init(self, key: jax.Array, xs: tuple) -> tuple[dict, dict]:
        """Parameters and BatchNorm statistics for a batch shaped like `xs`."""
        keys = jax.random.split(key, self.num_parties + 1)
        bottom = self.bottom_module()
        params, batch_stats = {}, {}
        for k in range(self.num_parties):
            p, stats = split_variables(bottom.init(keys[k], xs[k]))
            params[party_name(k)] = {"bottom": p}
            batch_stats[party_name(k)] = {"bottom": stats} if stats else {}
        h = tuple(jnp.zeros((xs[0].shape[0], self.embed_dim)) for _ in range(self.num_parties))
        p, stats = split_variables(self.top_module().init(keys[-1], h))
        params[party_name(self.active)]["top"] = p
        if stats:
            batch_stats[party_name(self.active)]["top"] = stats
        return params, {name: stats for name, stats in batch_stats.items() if stats}

    def embeddings(self, params: dict, batch_stats: dict, xs: tuple, train: bool = False):
        """Every party's bottom output h_k, and the bottoms' updated BatchNorm statistics."""
        bottom, hs, new_stats = self.bottom_module(), [], dict(batch_stats)
        for k in range(self.num_parties):
            name = party_name(k)
            stats = batch_stats.get(name, {}).get("bottom", {})
            h, stats = apply_stateful(bottom, params[name]["bottom"], stats, xs[k], train)
            hs.append(h)
            if stats:
                new_stats[name] = {**new_stats[name], "bottom": stats}
        return tuple(hs), new_stats

    def top(self, params: dict, batch_stats: dict, hs: tuple, train: bool):
        """Logits from the embeddings, and the updated BatchNorm statistics when training."""
        name = party_name(self.active)
        stats = batch_stats.get(name, {}).get("top", {})
        logits, stats = apply_stateful(self.top_module(), params[name]["top"], stats, hs, train)
        if stats:
            batch_stats = {**batch_stats, name: {**batch_stats[name], "top": stats}}
        return logits, batch_stats

    def apply_train(self, params: dict, batch_stats: dict, xs: tuple, wires: tuple,
                    defense: Defense, hp, defense_state, ctx: dict, cut_policy=None):
        """The training forward pass: passive embeddings go through the cut with their wires.

        The embeddings first pass `defense.forward(hp, defense_state, hs, ctx, top_fn)`, which
        may clip them and makes each passive party's cut context; `top_fn` maps embeddings to
        logits with the parameters held fixed (a defense may take a VJP of it, as LADSG's decoy
        substitution does). The cut's backward pass sends `cut_policy.cut(hp, g, context)`
        (default: `defense`'s; the data-parallel step may put a `GatheredCut` there). Returns
        (logits, batch_stats, the forward's report, penalty), the penalty being
        `defense.penalty` of the embeddings after the cut.
        """
        hs, batch_stats = self.embeddings(params, batch_stats, xs, train=True)
        fixed = jax.lax.stop_gradient((params, batch_stats))
        top_fn = lambda embeddings: self.top(*fixed, embeddings, train=True)[0]
        hs, contexts, report = call_hook(defense, "forward", hp, defense_state, hs, ctx, top_fn)
        cut_hs, policy = list(hs), cut_policy or defense
        for k in self.passive:
            cut_hs[k] = cut(policy, hs[k], wires[k], hp, contexts[k])
        logits, batch_stats = self.top(params, batch_stats, tuple(cut_hs), train=True)
        penalty = call_hook(defense, "penalty", hp, defense_state, tuple(cut_hs), ctx)
        return logits, batch_stats, report, penalty

    def predict(self, params: dict, batch_stats: dict, xs: tuple,
                defense: Defense | None = None, hp=None, defense_state=None) -> jax.Array:
        """Evaluation logits (BatchNorm on its running statistics).

        With a defense, the embeddings pass its `forward` as in training (with no step
        context), on the final defense state: the top model sees at test time what it was
        trained on (LADSG's norm detection keeps clipping a flagged party).
        """
        hs, _ = self.embeddings(params, batch_stats, xs)
        if defense is not None:
            hs = defense.forward(hp, defense_state, hs, None, None)[0]
        return self.top(params, batch_stats, hs, train=False)[0]
