"""`chain(a, b, ...)`: defenses composed in order, each keeping its own state and
hyperparameters (in the manner of `optax.chain`).

Targets pass through the members in order; so do the embeddings in the forward pass and the
message in the cut (a's cut first, then b's); penalties add up; `decode` runs in reverse order
(it undoes the targets' encoding); a party is blocked when any member blocks it. State and
hyperparameters are tuples with one entry per member. PRNG keys are split only among the
members that draw from them (`Defense.draws`): when one member draws, it gets the chain's key
itself, so a chain with one random member gives exactly that member's numbers.
"""
from __future__ import annotations

import abc
import dataclasses
from functools import reduce
from typing import ClassVar

import jax
import jax.numpy as jnp

from ladsg_jax.defenses.base import NEEDS, PER_SAMPLE, Defense, call_hook
from ladsg_jax.errors import ConfigError


def build_stages(name: str, build):
    """`build()`'s defenses, with the field of any `ConfigError` they raise renamed as the
    composite `name`'s (`defense.cae.lam` raised inside DCAE reads `defense.dcae.lam`)."""
    try:
        return build()
    except ConfigError as err:
        field = f"defense.{name}." + err.field.rsplit(".", 1)[-1]
        raise ConfigError(field, str(err).split(": ", 1)[1]) from None


class Composite(Defense, metaclass=abc.ABCMeta):
    """A defense made of `members` (a tuple of defenses), run as a chain; a subclass says what
    its members are (`Chain`: its parts; LADSG: its stages)."""

    @property
    @abc.abstractmethod
    def members(self) -> tuple:
        """The member defenses, in the order they run."""

    @property
    def needs(self) -> str:
        return max((m.needs for m in self.members), key=NEEDS.index, default=PER_SAMPLE)

    @property
    def draws(self) -> frozenset:
        return frozenset().union(*(m.draws for m in self.members))

    def hparams(self):
        return tuple(m.hparams() for m in self.members)

    def member_keys(self, key: jax.Array, hook: str) -> list:
        drawing = [i for i, m in enumerate(self.members) if hook in m.draws]
        if len(drawing) <= 1:
            return [key] * len(self.members)
        return [jax.random.fold_in(key, i) if i in drawing else key
                for i in range(len(self.members))]

    def init(self, key, data, config, hp):
        keys = self.member_keys(key, "init")
        return tuple(call_hook(m, "init", keys[i], data, config, hp[i])
                     for i, m in enumerate(self.members))

    def targets(self, hp, state, targets, labels, index):
        for i, m in enumerate(self.members):
            targets = call_hook(m, "targets", hp[i], state[i], targets, labels, index)
        return targets

    def check_data(self, num_classes):
        def check():
            for m in self.members:
                m.check_data(num_classes)
        check() if self.name == Chain.name else build_stages(self.name, check)

    def forward(self, hp, state, hs, ctx, top_fn):
        keys = (self.member_keys(ctx["key"], "cut") if ctx is not None and "key" in ctx
                else None)
        contexts, reports = [], []
        for i, m in enumerate(self.members):
            member_ctx = None if ctx is None else {k: v for k, v in ctx.items() if k != "key"}
            if member_ctx is not None and "cut" in m.draws:
                member_ctx["key"] = keys[i]
            hs, member_contexts, report = call_hook(m, "forward", hp[i], state[i], hs,
                                                    member_ctx, top_fn)
            contexts.append(member_contexts)
            reports.append(report)
        if ctx is None:
            return hs, None, tuple(reports)
        per_party = tuple(tuple(c[k] for c in contexts) for k in range(len(hs) - 1))
        return hs, per_party, tuple(reports)

    def cut(self, hp, g, ctx):
        for i, m in enumerate(self.members):
            g = call_hook(m, "cut", hp[i], g, ctx[i])
        return g

    def update(self, hp, state, report, messages):
        states, blocks, metrics = [], [], {}
        for i, m in enumerate(self.members):
            member_state, blocked, member_metrics = call_hook(m, "update", hp[i], state[i],
                                                              report[i], messages)
            states.append(member_state)
            metrics.update(member_metrics)
            if blocked is not None:
                blocks.append(blocked)
        blocked = reduce(jnp.logical_or, blocks) if blocks else None
        return tuple(states), blocked, metrics

    def penalty(self, hp, state, hs, ctx):
        return sum((call_hook(m, "penalty", hp[i], state[i], hs, ctx)
                    for i, m in enumerate(self.members)),
                   jnp.zeros(()))

    def decode(self, hp, state, logits):
        for i in reversed(range(len(self.members))):
            logits = call_hook(self.members[i], "decode", hp[i], state[i], logits)
        return logits


@dataclasses.dataclass(frozen=True)
class Chain(Composite):
    """Any defenses composed in order (see the module docstring)."""

    name: ClassVar[str] = "chain"
    summary: ClassVar[str] = "defenses composed in order"
    parts: tuple = ()

    @property
    def members(self) -> tuple:
        return self.parts

    @property
    def options(self) -> dict:
        return {"parts": [{"name": m.name, **m.options} for m in self.parts]}


def chain(*defenses: Defense) -> Chain:
    """The defenses composed in order, each keeping its own state (see the module docstring)."""
    return Chain(parts=tuple(defenses))
