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
class SAESweep:
    """Sizes of notebook 01's sweep. Alphas use the tied SAE's convention (per-element MSE) on activations scaled to
    a mean norm of sqrt(d_in) (see ``saelib.train.input_scale``)."""

    layers: tuple[int, ...]  # residual layers with an SAE (blocks.N.hook_resid_post)
    alphas: tuple[float, ...]  # log-spaced sweep at every layer
    ratio: float  # dictionary ratio R at every layer (the paper's Fig. 2 used 2)
    ratio_sweep_layer: int  # one layer where R is swept too
    ratio_sweep: tuple[float, ...]  # extra R values there
    ratio_sweep_alphas: tuple[float, ...]
    epochs: int
    batch_size: int
    lr: float
    ce_contexts: int  # held-out contexts for CE loss recovered (each member costs a full forward pass)
    eval_rows: int  # held-out activations for L0 / FVU / dead / dense
    mlp_layer: int  # Bricken et al.: untied SAE on this layer's MLP hidden activations
    mlp_ratio: float
    mlp_alphas: tuple[float, ...]  # lambda, summed-over-dimensions convention
    mlp_epochs: int

    def __post_init__(self) -> None:
        if not set(self.ratio_sweep_alphas) <= set(self.alphas):  # R = ratio comes from the layer sweep
            raise ValueError(f"ratio_sweep_alphas {self.ratio_sweep_alphas} must be among alphas {self.alphas}")
        if self.ratio_sweep_layer not in self.layers or self.ratio in self.ratio_sweep:
            raise ValueError("ratio_sweep_layer must be one of layers, and ratio_sweep must not repeat ratio")


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
    sae: SAESweep | None = None
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
        sae=SAESweep(layers=(2, 8), alphas=(2e-3, 1e-2), ratio=2.0, ratio_sweep_layer=8, ratio_sweep=(1.0, 4.0),
                     ratio_sweep_alphas=(2e-3,), epochs=1, batch_size=256, lr=1e-3, ce_contexts=2,
                     eval_rows=2048, mlp_layer=8, mlp_ratio=2.0, mlp_alphas=(8.0,), mlp_epochs=1),
    ),
    "default": Profile(
        name="default",
        context_length=256,
        harvest_tokens=131_072,  # 512 contexts of 256
        harvest_batch_size=8,
        heldout_contexts_per_source=8,
        norm_contexts=16,
        ioi_prompts=200,
        pronoun_prompts_per_gender=100,
        # 5 layers x 4 alphas at R=2, plus R in {1, 4, 8} x 2 alphas at layer 14, one epoch of 131k activations:
        # about 6 minutes of SAE training on 2 CPU cores (see notebook 01 for the measured time)
        sae=SAESweep(layers=(2, 8, 14, 20, 26), alphas=(1e-3, 2.15e-3, 4.64e-3, 1e-2), ratio=2.0,
                     ratio_sweep_layer=14, ratio_sweep=(1.0, 4.0, 8.0), ratio_sweep_alphas=(2.15e-3, 4.64e-3),
                     epochs=1, batch_size=256, lr=1e-3, ce_contexts=4, eval_rows=16_384, mlp_layer=14,
                     mlp_ratio=2.0, mlp_alphas=(8.0,), mlp_epochs=1),
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
        # the paper: every layer, alpha in logspace(-4, -2, 16), R in {0.5..32}; here a GPU-sized subset
        sae=SAESweep(layers=tuple(range(0, 30, 2)), alphas=tuple(float(a) for a in (1e-4, 2.15e-4, 4.64e-4,
                     8.6e-4, 1e-3, 2.15e-3, 4.64e-3, 1e-2)), ratio=2.0, ratio_sweep_layer=14,
                     ratio_sweep=(1.0, 4.0, 8.0), ratio_sweep_alphas=(8.6e-4, 2.15e-3, 4.64e-3), epochs=1,
                     batch_size=2048, lr=1e-3, ce_contexts=64, eval_rows=262_144, mlp_layer=14, mlp_ratio=8.0,
                     mlp_alphas=(2.0, 4.0, 8.0), mlp_epochs=1),
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
