# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version,-kernelspec
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
# ---

# %% [markdown]
# # 01 · Training sparse autoencoders, and the sparsity–reconstruction trade-off
#
# **Question.** The first result of Cunningham et al. (2023, section 2) is that a sparse autoencoder (SAE) trained
# on a language model's residual stream reconstructs it with few active features, and that its L1 coefficient α
# trades the one for the other: a larger α gives sparser codes and a worse reconstruction. Bricken et al. (2023)
# train the same kind of dictionary on MLP activations. Does the trade-off hold on SmolLM2-135M-Instruct at a budget
# a laptop trains in minutes?
#
# **Method.** One harvest pass writes the residual stream of five layers and the middle MLP to disk (§1); a sweep of
# α at R = 2 at every layer, and of R at the middle layer, trains in one pass per layer (§2); the frontier (§3),
# dead and dense features (§4) and MMCS between sizes (§5) are measured on held-out tokens; §6 chooses the
# dictionary each layer hands to later notebooks when they train their own; §7 decides the trade-off. The release
# dictionaries, the same recipes on 16x the data and today's architectures at matched L0, are measured in notebook
# 07; notebooks 02–06 decompose those by default.
#
# **Tied SAE (Cunningham et al., as in the paper's code).** One matrix $M$ whose rows are renormalised to unit
# length inside every forward pass, used to encode and to decode; an encoder bias only:
# $c = \mathrm{ReLU}(\hat M x + b)$, $\hat x = \hat M^\top c$,
# $L = \mathrm{mean}_{batch,d}(\hat x - x)^2 + \alpha\,\mathrm{mean}_{batch}\lVert c\rVert_1$.
# The reconstruction term is the *per-element* MSE; a library whose MSE sums over dimensions needs $\alpha \cdot d$.
#
# **Untied SAE (Bricken et al.).** A pre-encoder bias shared with the decoder bias, unit-norm decoder columns and
# dead-feature resampling: $f = \mathrm{ReLU}(W_e(x - b_d) + b_e)$, $\hat x = W_d f + b_d$,
# $L = \mathrm{mean}_{batch}\lVert x - \hat x\rVert_2^2 + \lambda\,\mathrm{mean}_{batch}\lVert f\rVert_1$.
#
# **Two departures from the paper, both stated where they matter.** (1) Activations are scaled per hook so their
# mean norm is $\sqrt{d}$ (per-element RMS about 1; SAELens' `expected_average_only_in`): the residual norm grows
# from about 80 to 950 across SmolLM2's depth (notebook 00), and without scaling one α grid would mean very
# different sparsity at different layers. The α values below are therefore in the paper's convention but on scaled
# activations. (2) Position 0 and the `<|endoftext|>` separator are left out of training and evaluation: their
# norms are tens of times an ordinary token's (notebook 00) and would dominate the squared error.
#
# **Metrics** (formulas in `saelib/dictionaries/metrics.py`): **L0** = mean number of active features per token; **FVU** =
# $\sum_t\lVert x_t-\hat x_t\rVert^2 / \sum_t\lVert x_t-\bar x\rVert^2$, pooled over the held-out set; **CE loss
# recovered** = $(CE_{zero} - CE_{SAE})/(CE_{zero} - CE_{clean})$ with the SAE's reconstruction spliced into the
# model in place of the activation and zero-ablation as the baseline, plus the **KL** of the spliced model's
# next-token distribution from the clean one; **dead** = never active on the N held-out tokens (N printed);
# **dense** = active on more than 10% of them; **MMCS** = mean over one dictionary's features of the maximum cosine
# similarity with the other's.

# %% tags=["parameters"]
PROFILE: str = "default"  # dev | default | paper (see saelib/core/profiles.py)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from saelib import dictionaries
from saelib.activations.harvest import harvest_profile, heldout_profile
from saelib.core.check import check, check_between, regression
from saelib.core.plots import savefig
from saelib.core.verdicts import print_verdicts, show_verdicts
from saelib.experiments.notebook_setup import setup
from saelib.dictionaries.metrics import evaluate_ensembles, mmcs
from saelib.dictionaries.sae import attach_metrics
from saelib.dictionaries.train import TrainConfig, row_mask, train_saes
from saelib.model import layer_of, mlp_post, resid_post

nb = setup(PROFILE, display_width=140)
profile, model, corpus, tok = nb.profile, nb.model, nb.corpus, nb.tokenizer
sweep = profile.sae
resid_hooks = [resid_post(layer) for layer in sweep.layers]
mlp_hook = mlp_post(sweep.mlp_layer)
print(sweep)

# %% [markdown]
# ## 1. Activations
#
# The paper trained on every residual layer of the 6-layer Pythia-70M. SmolLM2 has 30 layers; within the CPU
# budget this notebook takes five, evenly spread from early to late (one harvest pass stops at the deepest, so
# the spread costs little more than its deepest layer), plus the MLP hidden activations of the middle layer for
# the untied SAE. One pass over the training split writes every hook to disk; a smaller pass over held-out
# documents serves the evaluation.

# %%
train_store = harvest_profile(model, resid_hooks + [mlp_hook], profile, split="train")
eval_store = heldout_profile(model, resid_hooks + [mlp_hook], profile)
print(train_store)
print(eval_store)

# %%
check("training activations per hook", train_store.n_rows, profile.harvest_tokens, atol=profile.context_length)
ce_tokens = torch.from_numpy(np.array(eval_store.tokens[: sweep.ce_contexts]))
eval_mask = row_mask(eval_store, TrainConfig(resid_hooks[0]))
print(f"evaluation: {int(eval_mask.sum()):,} held-out tokens for L0/FVU/dead/dense (N for 'dead'), "
      f"{sweep.ce_contexts} held-out contexts of {profile.context_length} tokens for CE loss recovered")

# %% [markdown]
# ## 2. The sweep: α at every layer, and R at one layer
#
# At every layer, a log-spaced α grid at R = 2 (the ratio of the paper's Figure 2). At the middle layer, R ∈ {1, 2,
# 4, 8} at one α. Every (R, α) pair sharing a layer is trained in a single pass over the data (members of one
# R form an ensemble; each batch read from disk feeds all of them). Adam, one epoch, a fixed seed.

# %%
results = {}
for hook in resid_hooks:
    cfg = TrainConfig(hook, ratios=(sweep.ratio,), alphas=sweep.alphas, epochs=sweep.epochs,
                      batch_size=sweep.batch_size, lr=sweep.lr, seed=profile.seed, device=profile.device)
    results[hook] = train_saes(train_store, cfg)
sweep_hook = resid_post(sweep.ratio_sweep_layer)
ratio_cfg = TrainConfig(sweep_hook, ratios=sweep.ratio_sweep, alphas=sweep.ratio_sweep_alphas, epochs=sweep.epochs,
                        batch_size=sweep.batch_size, lr=sweep.lr, seed=profile.seed, device=profile.device)
ratio_result = train_saes(train_store, ratio_cfg)

# %%
ensembles = [(hook, res.directory / f"ratio{ratio:g}", ens)
             for hook, res in [*results.items(), (sweep_hook, ratio_result)] for ratio, ens in res.saes.items()]
# one clean forward pass for every ensemble, one zero ablation per layer
evaluated = evaluate_ensembles(model, [ens for *_, ens in ensembles], eval_store, ce_tokens, eval_mask,
                               corpus.separator)
metrics = pd.DataFrame([{"layer": layer_of(hook), "directory": str(directory), **row}
                        for (hook, directory, _), rows in zip(ensembles, evaluated) for row in rows])
for directory, group in metrics.groupby("directory"):  # saved beside the weights, in the SAE's config.json
    attach_metrics(directory, group.drop(columns=["directory"]).to_dict("records"))
columns = ["layer", "ratio", "alpha", "l0", "fvu", "ce_recovered", "kl", "dead_fraction", "dense_fraction"]

# %%
# NBVAL_IGNORE_OUTPUT
# (measured table; the checks below carry the tolerances)
metrics[columns].sort_values(["layer", "ratio", "alpha"]).round(4)

# %% [markdown]
# ## 3. The frontier: L0 against FVU, layer by layer
#
# Each curve is one layer's α sweep at R = 2; moving left along a curve (larger α) buys sparsity with
# reconstruction. Later layers sit higher: at the same L0 they leave more variance unexplained.

# %%
at_ratio = metrics[metrics.ratio == sweep.ratio]
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for layer, group in at_ratio.groupby("layer"):
    g = group.sort_values("l0")
    axes[0].plot(g.l0, g.fvu, marker="o", label=f"layer {layer}")
    axes[1].plot(g.l0, g.ce_recovered, marker="o", label=f"layer {layer}")
axes[0].set_xscale("log")
axes[0].set_xlabel("L0 (active features per token)")
axes[0].set_ylabel("FVU (held-out, pooled)")
axes[0].set_title(f"Sparsity vs reconstruction (tied SAE, R={sweep.ratio:g})")
axes[1].set_xscale("log")
axes[1].set_xlabel("L0 (active features per token)")
axes[1].set_ylabel("CE loss recovered (zero-ablation baseline)")
axes[1].set_title("Sparsity vs the model's own loss")
axes[1].legend(frameon=False, fontsize=8)
savefig(fig, "01_frontier_l0_fvu_ce", PROFILE)
plt.show()

# %%
for layer, group in at_ratio.groupby("layer"):
    g = group.sort_values("alpha")
    check_between(f"layer {layer}: L0 falls as alpha grows (Spearman)",
                  float(pd.Series(g.alpha.values).corr(pd.Series(g.l0.values), method="spearman")), -1.0, -0.99)
# Regression values: two fresh-clone runs of this notebook agreed to 6 significant digits (training is seeded and
# deterministic on one machine); 1% covers other BLAS builds. Directional: L0 falls with alpha (above); FVU need not
# rise monotonically at this budget, and for the release dictionaries it is reported in notebook 07's targets table.
# regression values: the median is layer 14's member, the least stable across machines (it moves by up to 5%
# between BLAS builds, the other members by < 0.3%), so FVU gets 8%, CE recovered 1%
regression("FVU at the smallest alpha, median over layers",
           float(at_ratio[at_ratio.alpha == min(sweep.alphas)].fvu.median()), 0.2452, profile=PROFILE, rtol=0.08)
regression("CE loss recovered at the smallest alpha, median over layers",
           float(at_ratio[at_ratio.alpha == min(sweep.alphas)].ce_recovered.median()), 0.9722, profile=PROFILE,
           rtol=0.01)

# %% [markdown]
# ## 4. Dead and dense features against α
#
# Dead features never fire on the held-out tokens; dense ones fire on more than 10% of them. Small α leaves many
# dense features (the code is barely sparse); large α starts to kill features.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
for layer, group in at_ratio.groupby("layer"):
    g = group.sort_values("alpha")
    axes[0].plot(g.alpha, g.dead_fraction, marker="o", label=f"layer {layer}")
    axes[1].plot(g.alpha, g.dense_fraction, marker="o", label=f"layer {layer}")
for ax, name in zip(axes, ["dead", "dense (>10% of tokens)"]):
    ax.set_xscale("log")
    ax.set_xlabel("α (scaled activations)")
    ax.set_ylabel(f"fraction {name}")
axes[0].set_title(f"Dead features (never active on {int(eval_mask.sum()):,} held-out tokens)")
axes[1].legend(frameon=False, fontsize=8)
savefig(fig, "01_dead_dense_vs_alpha", PROFILE)
plt.show()

# %% [markdown]
# ## 5. Dictionary size: MMCS between ratios
#
# Sharkey et al. and Cunningham et al. compared dictionaries of different sizes by the mean max cosine similarity:
# if the smaller dictionary's features reappear in the larger one, MMCS(small → large) is high. Random unit
# vectors in 576 dimensions give a baseline for comparison.

# %%
# NBVAL_IGNORE_OUTPUT
ratio_dicts = {}
for ratio, ens in {**ratio_result.saes, sweep.ratio: results[sweep_hook].saes[sweep.ratio]}.items():
    with torch.no_grad():
        for i, alpha in enumerate(ens.cfg.alphas):
            ratio_dicts[(ratio, alpha)] = ens.dictionary()[i]
ratios = sorted({r for r, _ in ratio_dicts})
mmcs_tables = {}
for alpha in sweep.ratio_sweep_alphas:
    mmcs_tables[alpha] = pd.DataFrame([[mmcs(ratio_dicts[(a, alpha)], ratio_dicts[(b, alpha)]) for b in ratios]
                                       for a in ratios], index=[f"R={a:g}" for a in ratios],
                                      columns=[f"R={b:g}" for b in ratios])
gen = torch.Generator().manual_seed(0)
d_model = model.cfg.d_model
random_baseline = mmcs(torch.randn(int(d_model * min(ratios)), d_model, generator=gen),
                       torch.randn(int(d_model * max(ratios)), d_model, generator=gen))
fig, axes = plt.subplots(1, len(mmcs_tables), figsize=(5 * len(mmcs_tables), 4))
for ax, (alpha, table) in zip(np.atleast_1d(axes), mmcs_tables.items()):
    im = ax.imshow(table.values, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(ratios)), table.columns)
    ax.set_yticks(range(len(ratios)), table.index)
    for i in range(len(ratios)):
        for j in range(len(ratios)):
            ax.text(j, i, f"{table.values[i, j]:.2f}", ha="center", va="center", color="w", fontsize=9)
    ax.set_title(f"MMCS(row → column), layer {sweep.ratio_sweep_layer}, α={alpha:g}")
fig.colorbar(im, ax=axes, shrink=0.8)
savefig(fig, "01_mmcs_between_ratios", PROFILE)
plt.show()
print(f"random-direction baseline, R={min(ratios):g} → R={max(ratios):g}: {random_baseline:.2f}")

# %%
# NBVAL_IGNORE_OUTPUT
# (measured table)
pd.concat(mmcs_tables, names=["alpha"]).round(3)

# %%
small_to_large = min(mmcs_tables[a].iloc[0, -1] for a in mmcs_tables)
regression("MMCS(smallest → largest ratio) minus the random baseline, worst over the ratio-sweep alphas",
           float(small_to_large - random_baseline), 0.0420, profile=PROFILE, atol=0.005)

# %% [markdown]
# How to read this at the default budget: one epoch over 131k activations is a few hundred Adam steps, far short of
# the paper's 21M activations per layer, so dictionaries of different sizes have not yet converged on shared
# directions and MMCS between the smallest and largest ratio is only modestly above the random baseline. It is
# the metric that most clearly needs the `paper` profile; the frontier above is already informative.

# %% [markdown]
# ## 6. The dictionary each layer hands to later notebooks
#
# The paper's Figure 2 used R = 2 and α ≈ 8.6e-4 on Pythia-70M. With a different model, scaling and data budget
# that α has no fixed meaning here, so the choice follows a stated rule instead: at R = 2, the **sparsest**
# dictionary (largest α) that still recovers at least **80% of the cross-entropy loss** (zero-ablation baseline).
# Interpretability wants sparse codes, but a dictionary that loses most of what the layer does explains little.
# The choice is recorded in `artifacts/dictionaries/<profile>.json`; notebooks 02–04 load it with
# `saelib.dictionaries.shipped.load_chosen`.

# %%
choices = []
for hook in resid_hooks:
    layer_rows = metrics[(metrics.hook == hook) & (metrics.ratio == sweep.ratio)].to_dict("records")
    row = dictionaries.choose(layer_rows, sweep.ratio, min_ce_recovered=0.8)
    dictionaries.record(PROFILE, hook, row["directory"], {k: row[k] for k in columns + ["hook"]})
    choices.append(row)
# NBVAL_IGNORE_OUTPUT
# (measured table)
pd.DataFrame(choices)[columns].round(4)

# %%
for hook in resid_hooks:
    sae = dictionaries.load_chosen(PROFILE, hook, model_name=train_store.config["model"])
    assert sae.cfg.hook == hook and sae.cfg.n_models == 1
check("dictionaries recorded", len(dictionaries.chosen(PROFILE)), len(resid_hooks))

# %% [markdown]
# ## 7. Verdict
#
# The rule is coded in `saelib.experiments.training.tradeoff_verdict`: per layer, ordered by α, every step to a
# larger α must lower L0 and raise FVU (held-out, §2). Its positive control runs the same rule on the release's tied
# R = 2 sweeps (the same recipe on 16x the data, read from `dictionaries/manifest.json`). At the smallest α the
# SAEs here recover most of the cross-entropy loss; MMCS across ratios (§5) is only modestly above random at this
# budget, and notebook 07 measures it on the release dictionaries.

# %%
from saelib.experiments.training import SweepMember, tradeoff_verdict  # noqa: E402

members = {int(la): [SweepMember(r.alpha, r.l0, r.fvu) for r in g.itertuples()]
           for la, g in metrics[metrics.ratio == sweep.ratio].groupby("layer")}
release_members = {}
for r in dictionaries.load_manifest().sweep:
    if r.run.startswith("resid") and r.run.endswith("-tied-r2") and r.alpha > 0:
        release_members.setdefault(layer_of(r.hook), []).append(SweepMember(r.alpha, r.metrics.l0, r.metrics.fvu))
verdicts = [tradeoff_verdict(members, release_members)]
# NBVAL_IGNORE_OUTPUT
# (measured; the verdict lines below are checked)
show_verdicts(verdicts)

# %%
# stable output: the lines under each verdict are its rule, precondition, controls and unit as written in the
# code (thresholds, not measurements)
print_verdicts(verdicts)
