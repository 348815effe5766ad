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
    a mean norm of sqrt(d_in) (see ``saelib.dictionaries.train.input_scale``)."""

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
class ErasureSizes:
    """Sizes of notebook 04 (gender concept erasure). Each (layer, method) costs one edited forward pass over the
    test prompts of both tasks and the disruption contexts."""

    layers: tuple[int, ...]  # residual layers (each needs a chosen SAE from notebook 01)
    names_per_gender: int  # most frequent single-token census names, split by name into train / test
    test_fraction: float
    n_shots: int  # few-shot examples per class in the classification prompt (the paper used 3)
    fit_prompts_per_name: int  # classification prompts per training name (own shot draws) the erasers are fitted on
    pronoun_templates: int  # first N of saelib.text.tasks.PRONOUN_TEMPLATES per test name
    feature_counts: tuple[int, ...]  # k: SAE features (and random control features) projected out
    min_frequency: float  # candidate features fire on more than this fraction of fitting positions (paper 0.01)
    disruption_contexts: int  # held-out corpus contexts for CE / KL disruption
    disruption_length: int  # tokens per disruption context


@dataclass(frozen=True)
class IOIPatchingSizes:
    """Sizes of notebook 03 (IOI feature patching). Each KL evaluation is one forward pass of ``n_prompts`` prompts
    through the blocks after the patched layer."""

    n_prompts: int  # IOI prompts patched (the paper used 50); the baseline uses Profile.ioi_prompts
    n_layers: int  # patched layers, chosen among the SAE layers by the notebook's rule
    sae_alphas: tuple[float, ...]  # SAE sparsities compared (from notebook 01's sweep); an alpha=0 SAE is added
    fit_rows: int  # training-store activations for PCA / ICA (same sample as notebook 02, so ICA's fit is shared)
    ica_max_iter: int
    n_k: int  # log-spaced numbers of top-attributed features evaluated per method
    greedy_prompts: int  # the paper's greedy elimination runs on this many prompts...
    greedy_thresholds: tuple[float, ...]  # ...with these rising thresholds (the paper: logspace(-5, 0, 50))
    top_features: int  # SAE features shown with their top activating contexts


@dataclass(frozen=True)
class InterpSizes:
    """Sizes of notebook 02 (automated interpretability). Each fragment is its own 64-token context, a window drawn at
    random from the held-out text and run through the model alone (as the paper did); harvested once at every SAE
    layer and shared by every method. Baselines are fitted on ``fit_rows`` training activations."""

    fragments: int  # 64-token fragments, one window each (the paper: 50,000, one per OpenWebText document)
    features: int  # features scored per dictionary per layer (the paper: 150)
    fit_rows: int  # training activations for PCA and ICA (the paper's ICA: one 2M-activation chunk)
    ica_max_iter: int
    llm_demo_features: int  # features also explained by the local LLM backend (0: skip)


@dataclass(frozen=True)
class CaseStudySizes:
    """Sizes of notebook 05 (case studies), read on notebook 02's fragment pool. Each ablated window costs two edited
    forward passes from the feature's layer; each circuit candidate one pass between two dictionary layers."""

    interval_bins: int  # equal-width activation intervals in the interval tables
    ablation_windows: int  # random windows where the apostrophe feature fires, ablated
    standalone_windows: int  # windows with a standalone apostrophe where it fires (the paper's "boosts s")
    circuit_windows: int  # the circuit target's strongest windows
    circuit_candidates: int  # upstream features ablated exactly per node (ranked by attribution)
    circuit_branch: int  # significant upstream features kept per node
    circuit_controls: int = 8  # random co-firing features per node; an edge must beat the strongest


@dataclass(frozen=True)
class MonosemanticitySizes:
    """Sizes of notebook 06 (Bricken et al.'s findings). Features vs neurons and universality are read on notebook
    01's held-out store; steering samples ``steer_samples`` continuations per prompt and condition (one generation
    pass per new token, no cache); universality and feature splitting reuse notebook 01's layer-14 ensembles."""

    min_fires: int  # a feature is compared with neurons only if it fires on at least this many held-out tokens
    invisible_corr: float  # "invisible to neurons": no single neuron's |correlation| with the feature reaches this
    steer_layer: int  # residual layer whose release dictionary is clamped (its chosen member)
    steer_sources: tuple[str, ...]  # corpus sources to steer towards (saelib.text.corpus.MIXTURE)
    steer_min_density: float  # candidate steering features fire on at least this share of the fragment pool
    clamp_multiples: tuple[float, ...]  # clamp value = multiple x the feature's largest held-out activation
    steer_samples: int  # continuations per prompt and condition
    steer_new_tokens: int
    classifier_chunk_tokens: int  # the source classifier learns from chunks of this many tokens...
    classifier_per_source: int  # ...this many per source
    family_cosine: float  # decoder cosine that puts a larger dictionary's feature in a smaller one's family
    invisible_auc: float = 0.9  # the verdict's "invisible": no neuron detects where it fires at this AUC


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
    erasure: ErasureSizes | None = None
    ioi_patching: IOIPatchingSizes | None = None
    interp: InterpSizes | None = None
    case_studies: CaseStudySizes | None = None
    monosemanticity: MonosemanticitySizes | None = None
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
        # layers the release ships dictionaries for, where the notebooks' release sections need them: R = 4
        # sweeps at 20 and 26 (notebook 03 patches the last two), the untied MLP SAE at 14 (notebooks 07, 06)
        sae=SAESweep(
            layers=(8, 20, 26),
            alphas=(2e-3, 1e-2),
            ratio=2.0,
            ratio_sweep_layer=20,
            ratio_sweep=(1.0, 4.0),
            ratio_sweep_alphas=(2e-3,),
            epochs=1,
            batch_size=256,
            lr=1e-3,
            ce_contexts=2,
            eval_rows=2048,
            mlp_layer=14,
            mlp_ratio=2.0,
            mlp_alphas=(8.0,),
            mlp_epochs=1,
        ),
        erasure=ErasureSizes(
            layers=(8, 20),
            names_per_gender=24,
            test_fraction=0.25,
            n_shots=2,
            fit_prompts_per_name=2,
            pronoun_templates=1,
            feature_counts=(1,),
            min_frequency=0.01,
            disruption_contexts=1,
            disruption_length=64,
        ),
        interp=InterpSizes(fragments=256, features=24, fit_rows=2048, ica_max_iter=100, llm_demo_features=1),
        case_studies=CaseStudySizes(
            interval_bins=10,
            ablation_windows=16,
            standalone_windows=16,
            circuit_windows=12,
            circuit_candidates=8,
            circuit_branch=2,
        ),
        monosemanticity=MonosemanticitySizes(
            min_fires=5,
            invisible_corr=0.5,
            steer_layer=8,
            steer_sources=("python_docs",),
            steer_min_density=0.002,
            clamp_multiples=(3.0,),
            steer_samples=2,
            steer_new_tokens=8,
            classifier_chunk_tokens=32,
            classifier_per_source=60,
            family_cosine=0.5,
        ),
        ioi_patching=IOIPatchingSizes(
            n_prompts=16,
            n_layers=2,
            sae_alphas=(2e-3, 1e-2),
            fit_rows=2048,
            ica_max_iter=100,
            n_k=5,
            greedy_prompts=4,
            greedy_thresholds=(1e-3, 1e-2, 1e-1),
            top_features=2,
        ),
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
        # 5 layers x 3 alphas at R=2, plus R in {1, 4, 8} at one alpha at layer 14, one epoch of 131k activations
        # (notebook 01's time table has the seconds). A fourth alpha, 1e-2 (L0 2-10, CE recovered 0.24-0.68), fed no
        # later notebook and was dropped: 18 members instead of 23, training 278 s -> 254 s across two fresh-clone
        # runs (the second on an instance 15% slower); the release sweeps show the frontier. A second ratio-sweep
        # alpha fed only notebook 01's MMCS; the release's R = 2 / R = 4 pair is where size is compared at a budget
        # that can show it.
        sae=SAESweep(
            layers=(2, 8, 14, 20, 26),
            alphas=(1e-3, 2.15e-3, 4.64e-3),
            ratio=2.0,
            ratio_sweep_layer=14,
            ratio_sweep=(1.0, 4.0, 8.0),
            ratio_sweep_alphas=(2.15e-3,),
            epochs=1,
            batch_size=256,
            lr=1e-3,
            ce_contexts=4,
            eval_rows=16_384,
            mlp_layer=14,
            mlp_ratio=2.0,
            mlp_alphas=(8.0,),
            mlp_epochs=1,
        ),
        # 5 layers x 8 methods (LEACE, mean difference, SAE and random top-1/4/8), each one edited pass over the
        # held-out prompts (15 names per gender, 3 shots, all 5 pronoun templates) and 32 x 32 corpus tokens for
        # disruption with intervals over contexts: about 5 minutes on 2 cores (20 names and 32 x 64 tokens: 10.7)
        erasure=ErasureSizes(
            layers=(2, 8, 14, 20, 26),
            names_per_gender=100,
            test_fraction=0.15,
            n_shots=3,
            fit_prompts_per_name=6,
            pronoun_templates=5,
            feature_counts=(1, 4, 8),
            min_frequency=0.01,
            disruption_contexts=32,
            disruption_length=32,
        ),
        # 512 fragments, 8 methods x 5 layers x 150 features: 213 s on a fresh clone, 2 CPU cores (fragment harvest
        # 49 s, baselines incl. FastICA 60 s, scoring 38 s, local LLM demo 22 s; notebook 02's timing table)
        interp=InterpSizes(fragments=2048, features=150, fit_rows=4096, ica_max_iter=100, llm_demo_features=1),
        # notebook 05 on the 2,048 fragments above (harvested by notebook 02): 111 s alone on 2 cores
        case_studies=CaseStudySizes(
            interval_bins=10,
            ablation_windows=64,
            standalone_windows=48,
            circuit_windows=32,
            circuit_candidates=8,
            circuit_branch=2,
        ),
        # notebook 06: features vs neurons on 16k held-out MLP activations, steering (8 prompts x 3 samples x 24 new
        # tokens per condition; 5 generation runs), universality and splitting on notebook 01's layer-14 ensembles.
        # A first sizing (clamps x1 and x3, 4 samples of 32 tokens) took 339 s for steering alone.
        monosemanticity=MonosemanticitySizes(
            min_fires=20,
            invisible_corr=0.5,
            steer_layer=14,
            steer_sources=("bible", "python_docs"),
            steer_min_density=0.002,
            clamp_multiples=(3.0,),
            steer_samples=3,
            steer_new_tokens=24,
            classifier_chunk_tokens=32,
            classifier_per_source=400,
            family_cosine=0.5,
        ),
        # 8 decompositions x 2 layers x ~10 k, each one pass of 50 prompts from the patched layer, plus the greedy
        # elimination on 16 prompts (about 1,900 active R = 4 features; one forward pass of the touched prompts per
        # visit, compute-bound at about 0.08 s: 225 s for ~2,900 visits; shipped by scripts/release_greedy.py and
        # replayed by notebook 03 unless GREEDY="run"). Twelve prompts saved nothing: 1,914 features are active on
        # them, and a pass over fewer prompts costs more than its share. Thresholds in half-decades from 1e-3: a
        # decade grid from 1e-4 spent a third of its ~3,700 visits above 1,000 features kept, where KL barely moves,
        # and jumped from 72 features to 1 between 1e-2 and 1e-1.
        # fit_rows and ica_max_iter match notebook 02's. sae_alphas apply to DICTIONARIES="profile" only.
        ioi_patching=IOIPatchingSizes(
            n_prompts=50,
            n_layers=2,
            sae_alphas=(1e-3, 4.64e-3),
            fit_rows=4096,
            ica_max_iter=100,
            n_k=10,
            greedy_prompts=16,
            greedy_thresholds=tuple(10.0 ** (e / 2) for e in range(-6, 1)),
            top_features=4,
        ),
    ),
    "paper": Profile(
        name="paper",
        context_length=256,
        harvest_tokens=20_971_520,  # 10 x 2,097,152: the "10 epochs" of Cunningham et al. 2023 (training set-up)
        harvest_batch_size=64,
        heldout_contexts_per_source=64,
        norm_contexts=256,
        ioi_prompts=500,
        pronoun_prompts_per_gender=500,
        # the paper: every layer, alpha in logspace(-4, -2, 16), R in {0.5..32}; here a GPU-sized subset
        sae=SAESweep(
            layers=tuple(range(0, 30, 2)),
            alphas=tuple(float(a) for a in (1e-4, 2.15e-4, 4.64e-4, 8.6e-4, 1e-3, 2.15e-3, 4.64e-3, 1e-2)),
            ratio=2.0,
            ratio_sweep_layer=14,
            ratio_sweep=(1.0, 4.0, 8.0),
            ratio_sweep_alphas=(8.6e-4, 2.15e-3, 4.64e-3),
            epochs=1,
            batch_size=2048,
            lr=1e-3,
            ce_contexts=64,
            eval_rows=262_144,
            mlp_layer=14,
            mlp_ratio=8.0,
            mlp_alphas=(2.0, 4.0, 8.0),
            mlp_epochs=1,
        ),
        erasure=ErasureSizes(
            layers=tuple(range(0, 30, 2)),
            names_per_gender=100,
            test_fraction=0.2,
            n_shots=3,
            fit_prompts_per_name=6,
            pronoun_templates=5,
            feature_counts=(1, 4),
            min_frequency=0.01,
            disruption_contexts=64,
            disruption_length=256,
        ),
        interp=InterpSizes(fragments=50_000, features=150, fit_rows=2_097_152, ica_max_iter=400, llm_demo_features=10),
        case_studies=CaseStudySizes(
            interval_bins=11,
            ablation_windows=1024,
            standalone_windows=512,
            circuit_windows=256,
            circuit_candidates=32,
            circuit_branch=3,
        ),
        monosemanticity=MonosemanticitySizes(
            min_fires=50,
            invisible_corr=0.5,
            steer_layer=14,
            steer_sources=("bible", "python_docs", "shakespeare"),
            steer_min_density=0.001,
            clamp_multiples=(1.0, 3.0, 10.0),
            steer_samples=32,
            steer_new_tokens=64,
            classifier_chunk_tokens=64,
            classifier_per_source=2000,
            family_cosine=0.5,
        ),
        ioi_patching=IOIPatchingSizes(
            n_prompts=200,
            n_layers=5,
            sae_alphas=(1e-3, 4.64e-3, 1e-2),
            fit_rows=2_097_152,
            ica_max_iter=400,
            n_k=20,
            greedy_prompts=50,
            greedy_thresholds=tuple(10.0 ** (-5 + 5 * i / 49) for i in range(50)),
            top_features=8,
        ),
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
