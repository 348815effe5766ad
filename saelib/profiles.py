"""Named run sizes. Every notebook takes ``PROFILE`` as a papermill parameter and reads its sizes from here.

- ``dev``: seconds-to-minutes, for working on the code.
- ``default``: what ``./run_all.sh`` and CI run on a 2-core CPU; committed notebook outputs come from it.
- ``paper``: the paper's budget (about 21M activations per layer, Cunningham et al. Fig. 2), for a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


class UnknownProfileError(ValueError):
    pass


@dataclass(frozen=True)
class Profile:
    name: str
    context_length: int  # tokens per packed context (the paper used 256)
    harvest_tokens: int  # activations per hook harvested for SAE training
    harvest_batch_size: int  # contexts per forward pass while harvesting
    heldout_contexts_per_source: int  # contexts per corpus source for held-out loss
    norm_contexts: int  # contexts for residual-stream statistics
    ioi_prompts: int
    pronoun_prompts_per_gender: int
    device: str = "cpu"
    seed: int = 0

    def with_overrides(self, **kwargs: object) -> "Profile":
        return replace(self, **kwargs)  # type: ignore[arg-type]


PROFILES: dict[str, Profile] = {
    "dev": Profile(
        name="dev",
        context_length=64,
        harvest_tokens=8_192,
        harvest_batch_size=16,
        heldout_contexts_per_source=2,
        norm_contexts=4,
        ioi_prompts=24,
        pronoun_prompts_per_gender=12,
    ),
    "default": Profile(
        name="default",
        context_length=256,
        harvest_tokens=163_840,  # 640 contexts of 256
        harvest_batch_size=8,
        heldout_contexts_per_source=8,
        norm_contexts=16,
        ioi_prompts=200,
        pronoun_prompts_per_gender=100,
    ),
    "paper": Profile(
        name="paper",
        context_length=256,
        harvest_tokens=20_971_520,  # 10 x 2,097,152: the paper's "10 epochs" (paper.md 1.4)
        harvest_batch_size=64,
        heldout_contexts_per_source=64,
        norm_contexts=256,
        ioi_prompts=500,
        pronoun_prompts_per_gender=500,
        device="cuda",
    ),
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; an unknown name lists the valid ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownProfileError(
            f"Unknown profile {name!r}. Valid profiles: {', '.join(sorted(PROFILES))}. "
            "Pass one as the papermill parameter, e.g. ./run_all.sh --profile dev"
        ) from None
