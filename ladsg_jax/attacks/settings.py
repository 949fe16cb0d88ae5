"""The attacker's settings: what it knows and the attacks' knobs (imported without JAX, so the
command line's flags are made from them before anything heavy loads)."""
from __future__ import annotations

import dataclasses

from ladsg_jax.config import check_number
from ladsg_jax.errors import is_integer, one_of, positive_int, require

MALICIOUS_RULES = ("paper", "fu_torch17")       # attacks/malicious.py
DIRECT_EPOCHS = ("first", "last", "min", "average")   # attacks/direct.py
DIRECT_NO_NEGATIVE = ("miss", "argmin")


MIXMATCH_RECIPES = ("library", "fu")                # attacks/completion.py
RECIPE_DEFAULTS = {"library": {"steps": 2000, "batch_size": 32, "restarts": 3},
                   "fu": {"steps": 10 * 1024, "batch_size": 16, "restarts": 1}}


@dataclasses.dataclass(frozen=True)
class MixMatchConfig:
    """MixMatch's knobs. `steps`, `batch_size` and `restarts` left unset take the recipe's
    values (library: 2000, 32, 3; fu: 10 × 1024, 16, 1, Fu et al.'s released code's); the
    others are Fu et al.'s in both recipes.

    Attributes:
        recipe: model completion's training loop: library (ours: EMA from zero with bias
            correction, label guesses in evaluation mode, batches drawn with replacement, the
            unlabelled batch from every training sample, restarts) or fu (Fu et al.'s released
            code: EMA from the initial weights with a 0.02·lr weight shrink and averaged
            BatchNorm statistics, guessing and training in train mode with interleaved
            BatchNorm passes, the head's last layer initialized to ones, batches shuffled
            without replacement, unlabelled samples those with unknown labels).
            Allowed: one of library, fu.
        steps: MixMatch fine-tuning steps of model completion (default the recipe's).
            Allowed: integer >= 1.
        batch_size: labelled and unlabelled samples per step (default the recipe's; fu:
            at most the known labels). Allowed: integer >= 1.
        temperature: sharpening temperature T. Allowed: > 0.
        alpha: mixup's Beta(α, α). Allowed: > 0.
        lambda_u: weight of the unlabelled loss after the ramp-up. Allowed: >= 0.
        learning_rate: Adam's rate. Allowed: > 0.
        ema_decay: decay of the parameters' moving average used to predict. Allowed: [0, 1).
        finetune_bottom: also train the bottom (default: the head only, as Fu et al.'s
            released code runs).
        restarts: MixMatch runs from different random heads (vmapped); the one whose
            predictions fit the attacker's known labels best is kept. One run can lock onto a
            single class (its own sharpened guesses confirm a bad start); 1 runs once
            (default the recipe's). Allowed: integer >= 1.
    """

    recipe: str = "library"
    steps: int | None = None
    batch_size: int | None = None
    temperature: float = 0.8
    alpha: float = 0.75
    lambda_u: float = 50.0
    learning_rate: float = 2e-3
    ema_decay: float = 0.999
    finetune_bottom: bool = False
    restarts: int | None = None

    def __post_init__(self):
        one_of("mixmatch.recipe", self.recipe, MIXMATCH_RECIPES)
        for field, value in RECIPE_DEFAULTS[self.recipe].items():
            if getattr(self, field) is None:
                object.__setattr__(self, field, value)
        for field in ("steps", "batch_size", "restarts"):
            positive_int(f"mixmatch.{field}", getattr(self, field))
        for field in ("temperature", "alpha", "learning_rate"):
            require(getattr(self, field) > 0, f"mixmatch.{field}",
                    f"must be positive, got {getattr(self, field)!r}")
        require(self.lambda_u >= 0, "mixmatch.lambda_u", f"must be >= 0, got {self.lambda_u!r}")
        require(0 <= self.ema_decay < 1, "mixmatch.ema_decay",
                f"must be in [0, 1), got {self.ema_decay!r}")


@dataclasses.dataclass(frozen=True)
class AttackSettings:
    """The attacker's resources and the knobs of the attacks.

    Attributes:
        known_labels: labels the attacker knows (default per data set, DESIGN §7).
            Allowed: integer >= 1.
        mixmatch: model completion's MixMatch knobs.
        scoring_epochs: epochs of messages (the last ones) the scoring attacks read.
            Allowed: integer >= 1.
        inversion_batches: batches gradient inversion reconstructs. Allowed: integer >= 1.
        inversion_steps: optimization steps per inverted batch. Allowed: integer >= 1.
        inversion_learning_rate: Adam's rate for the inversion's dummies. Allowed: > 0.
        malicious_gamma: γ of the malicious optimizer's step scaling (Fu et al. 2022).
            Allowed: >= 0.
        malicious_rule: the malicious optimizer's rule: paper (the rule Fu et al. state) or
            fu_torch17 (what their released MaliciousSGD computes under PyTorch 1.7).
            Allowed: one of paper, fu_torch17.
        direct_epoch: the epoch whose messages the direct attacks read: first (Fu et al.'s),
            last, min (each entry's minimum over the epochs) or average.
            Allowed: one of first, last, min, average.
        direct_no_negative: a message with no negative entry under the first-negative rule:
            miss (Fu et al.'s count) or argmin. Allowed: one of miss, argmin.
    """

    known_labels: int = 40
    mixmatch: MixMatchConfig = MixMatchConfig()
    scoring_epochs: int = 1
    inversion_batches: int = 8
    inversion_steps: int = 300
    inversion_learning_rate: float = 0.05
    malicious_gamma: float = 1.0
    malicious_rule: str = "paper"
    direct_epoch: str = "first"
    direct_no_negative: str = "miss"

    def __post_init__(self):
        for field in ("known_labels", "scoring_epochs", "inversion_batches", "inversion_steps"):
            value = getattr(self, field)
            object.__setattr__(self, field, int(value) if is_integer(value) else value)
            positive_int(field, getattr(self, field))
        check_number(self.inversion_learning_rate, "inversion_learning_rate", 0, low_open=True)
        check_number(self.malicious_gamma, "malicious_gamma", 0)
        for field, allowed in (("malicious_rule", MALICIOUS_RULES),
                               ("direct_epoch", DIRECT_EPOCHS),
                               ("direct_no_negative", DIRECT_NO_NEGATIVE)):
            one_of(field, getattr(self, field), allowed)
        require(self.mixmatch.recipe != "fu" or self.mixmatch.batch_size <= self.known_labels,
                "mixmatch.batch_size", f"must be at most known_labels ({self.known_labels}) "
                f"with the fu recipe (its labelled batches are drawn without replacement), "
                f"got {self.mixmatch.batch_size}")
