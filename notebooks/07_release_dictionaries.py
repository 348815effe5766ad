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
# # 07 · The release dictionaries: the papers' recipes at 16x the data, and today's architectures at matched L0
#
# **Question.** Notebook 01 trains within minutes, enough to see training happen but not to test the papers'
# claims about trained dictionaries. This notebook asks them of the release dictionaries in `dictionaries/`, which
# notebooks 02–06 decompose: does Bricken et al.'s (2023) dead-feature resampling revive features and give a better
# dictionary; do dictionaries of different sizes learn the same features, as Cunningham et al. (2023, following
# Sharkey et al. 2022) read mean max cosine similarity; and do the architectures the field trains today (TopK, Gao
# et al. 2024; BatchTopK, Bussmann et al. 2024; JumpReLU, Rajamanoharan et al. 2024) reconstruct better than the
# papers' ReLU-L1 SAE at the same number of active latents?
#
# **Method.** `scripts/release_dictionaries.py` trains every release run on 2,097,152 activations per hook and
# writes its metrics to `dictionaries/manifest.json`; this notebook reads that manifest as typed records
# (`saelib.dictionaries.manifest`), shows the data hygiene (§1) and the sweeps against the release's targets (§2),
# re-measures the chosen dictionaries on its own held-out tokens (§3), compares sizes by MMCS (§4), reads the
# controlled resampling pair (§5) and the matched-L0 comparison with the width ladder and the MLP layer that matters
# (§6), and ends with the verdicts (§7). Metrics (formulas in `saelib/dictionaries/metrics.py` and
# [docs/metrics.md](../docs/metrics.md)): L0, FVU, CE and KL loss recovered, dead and dense fractions, MMCS, as
# defined in notebook 01.

# %% tags=["parameters"]
PROFILE: str = "default"  # dev | default | paper (see saelib/core/profiles.py)
DICTIONARIES: str = "shipped"  # "shipped" (dictionaries/) or a folder with a manifest.json from the release command

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from saelib import dictionaries
from saelib.activations.harvest import harvest_profile, heldout_profile
from saelib.core.check import check, check_between
from saelib.core.plots import savefig
from saelib.core.verdicts import print_verdicts, show_verdicts
from saelib.dictionaries import release, release_comparison
from saelib.dictionaries.metrics import evaluate_ensembles, fvu_interval, mmcs
from saelib.dictionaries.train import TrainConfig, row_mask
from saelib.experiments.notebook_setup import setup
from saelib.experiments.release_dictionaries import FVU_MARGIN
from saelib.model import layer_of, mlp_post, resid_post

nb = setup(PROFILE, display_width=140)
profile, model, corpus = nb.profile, nb.model, nb.corpus
sweep = profile.sae
resid_hooks = [resid_post(layer) for layer in sweep.layers]
mlp_hook = mlp_post(sweep.mlp_layer)
# this profile's held-out store (notebook 01 harvests it; cached) serves the live re-measurements
train_store = harvest_profile(model, resid_hooks + [mlp_hook], profile, split="train")
eval_store = heldout_profile(model, resid_hooks + [mlp_hook], profile)
ce_tokens = torch.from_numpy(np.array(eval_store.tokens[: sweep.ce_contexts]))
release_root = release.DICTIONARIES_DIR if DICTIONARIES == "shipped" else Path(DICTIONARIES)
full_manifest = dictionaries.load_manifest(release_root)  # typed records (saelib.dictionaries.manifest)
manifest = release_comparison.papers_only(full_manifest)  # §1-5 read the papers' runs, §6 the comparison's
print(eval_store)

# %% [markdown]
# ## 1. The release and its data
#
# The release trains with the recipe of SAELens and dictionary_learning: Adam with a learning-rate warm-up and a
# linear decay, an L1 warm-up, and a data-hygiene rule measured first. It ships the tied residual SAEs at R = 2
# (Fig. 2's α = 8.6e-4 and two sparser ones; the chosen member per layer), the tied R = 4 sweeps at the IOI layers
# 20 and 26 (the paper's α grid up to 1e-3 and the α = 0 control: notebook 03 patches them), Bricken et al.'s untied
# SAE on the MLP of layer 14 with resampling, and the comparison's runs of §6. Runs evaluated but not shipped (the
# folder's size cap) keep their metrics in the manifest's sweep: the R = 4 sweeps at layers 2, 8 and 14, the
# resampling pair, the pilots, the ladder. Runs at layers up to 14 alone read a store harvested through layer 14 only
# (same corpus, contexts and seed). Set the parameter `DICTIONARIES` to the folder of your own release
# (`artifacts/release/dictionaries-paper` after `--profile paper`) to read yours instead.
#
# **Data hygiene.** With position 0 and document separators already excluded, how much of the summed squared
# norm do the largest 0.1% and 1% of rows hold? The rule: rows above 20x the layer's median norm are excluded from
# training and from the held-out FVU (and left untouched when the reconstruction is spliced in); inputs are scaled
# by the median norm, which those rows cannot move.

# %%
hygiene = pd.DataFrame(manifest.hygiene)
print(manifest.hygiene_rule)
print(f"release data: {manifest.data.train_tokens:,} training and {manifest.data.heldout_tokens:,} "
      f"held-out tokens per hook, contexts of {manifest.data.context_length}")
# NBVAL_IGNORE_OUTPUT
# (measured on the release store)
hygiene[["hook", "median_norm", "max_norm", "share_top_0.1pct", "share_top_1pct", "outlier_rows",
         "outlier_share_of_sq_norm"]].round(4)

# %% [markdown]
# At the layers after 10 a handful of rows (the massive activations that appear where a context starts mid-text)
# carry most of the squared norm: a pooled FVU that includes them mostly measures whether those few rows are
# reconstructed. The sweep table shows both FVUs side by side.

# %% [markdown]
# ## 2. The sweeps: frontier, convergence and the release's targets
#
# Every member of every run, read from the manifest's sweep: held-out L0 and FVU (massive-activation rows excluded,
# and included), CE loss recovered against zero and mean ablation, KL, dead and dense fractions.

# %%
sweep_rows = pd.DataFrame([r.json for r in manifest.sweep])
sweep_rows["layer"] = sweep_rows.hook.str.split(".").str[1].astype(int)
release_columns = ["run", "alpha", "l0", "fvu", "fvu_with_outliers", "ce_recovered", "ce_recovered_mean", "kl",
                   "dead_fraction", "dense_fraction"]
print(f"N: L0/FVU on {int(sweep_rows.eval_tokens.iloc[0]):,} held-out tokens; dead/dense over "
      f"{int(sweep_rows.dead_tokens.iloc[0]):,} training tokens; CE on {16} held-out contexts of 256 tokens")
# NBVAL_IGNORE_OUTPUT
# (the shipped sweep's metrics, from the manifest)
sweep_rows[release_columns].round(4)

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
# one colour per hook, one line style per kind; the resampling pair (a learning rate meant to kill features) is left out
hook_colour = {h: plt.cm.tab10(i) for i, h in enumerate(sorted(sweep_rows.hook.unique(), key=lambda h: (layer_of(h), h)))}
frontier = sweep_rows[(sweep_rows.alpha > 0) & ~sweep_rows.run.str.endswith("-resampling")]
for run, group in frontier.groupby("run"):
    g = group.sort_values("l0")
    style = dict(marker="o", color=hook_colour[g.hook.iloc[0]], label=run,
                 ls="--" if run.endswith("-r4") else ":" if "untied" in run else "-")
    axes[0].plot(g.l0, g.fvu, **style)
    axes[1].plot(g.l0, g.ce_recovered, **style)
for run_name in sorted({d.run for d in manifest.dictionaries}):
    entry = next(d for d in manifest.find(run=run_name) if d.alpha > 0)
    curve = pd.DataFrame(entry.json["curve"])
    axes[2].plot(curve.activations, curve.fvu.rolling(8, min_periods=1).mean(), label=entry.name)
axes[0].set(xscale="log", xlabel="L0", ylabel="FVU (held-out, outliers excluded)", title="Release: sparsity vs FVU")
axes[1].set(xscale="log", xlabel="L0", ylabel="CE loss recovered (zero ablation)", title="Release: sparsity vs CE")
axes[2].set(xlabel="activations seen", ylabel="FVU on unseen batches (rolling mean)", ylim=(0, 1),
            title="Convergence (one member per run)")
axes[1].legend(frameon=False, fontsize=7)
axes[2].legend(frameon=False, fontsize=6)
savefig(fig, "07_release_frontier_and_convergence", PROFILE)
plt.show()

# %% [markdown]
# The convergence curve is measured on each training batch *before* the step that trains on it (every point is on
# activations the SAE has not seen yet; the documents come from the training split), divided by the held-out
# variance. Where it has flattened over the last quarter, more data at this recipe would change little.
#
# **The targets** set for the release, each measured: FVU non-decreasing and L0 non-increasing in α;
# FVU at L0 = 32 (interpolated in log L0 along the sweep, never extrapolated) at most 0.20 at layers 2–14 and 0.30
# at 20–26; the dictionary chosen per layer (the sparsest with CE loss recovered ≥ 0.90, notebook 01's rule at the
# stricter threshold) with CE loss recovered ≥ 0.90 and at most 10% dead features over ≥ 1M tokens; MMCS from
# the R = 2 to the R = 4 dictionary of a layer at least twice the random control (our reading of "clearly above"),
# where the release script computed it (below); resampling "demonstrably revives features": re-initialised features
# fire again, and the run with resampling ends with fewer dead features than its twin without (§5).

# %%
target_table = pd.DataFrame(release.targets(manifest.to_json()))
# NBVAL_IGNORE_OUTPUT
# (measured on the shipped dictionaries)
target_table

# %%
# stable output: the targets' thresholds are constants; met / NOT met is what is compared
for run, group in sweep_rows[sweep_rows.alpha > 0].groupby("run"):
    rows_ = group.to_dict("records")
    # directional: a larger L1 penalty can only buy sparsity; if L0 rose with alpha, training had not converged
    check("release " + run + ": L0 non-increasing in alpha", float(release.monotone(rows_, "l0", -1)), 1.0)
for row in target_table.to_dict("records"):  # one stable line per target: nbval flags any change of verdict
    print(f"{row['target']} | {row['run']}: {'met' if row['met'] else 'NOT met'}")

# %% [markdown]
# ## 3. The chosen dictionaries, re-measured live
#
# Each chosen dictionary is loaded by name (its files checked against the manifest's
# sha256) and evaluated on this notebook's own held-out store, a different and smaller sample than the release's,
# with a 99% bootstrap interval over contexts. With contexts of the release's length (256 tokens), the manifest's
# FVU should fall inside it; the dev profile's 64-token contexts sample other positions, so there the check is
# skipped.

# %%
live = []
for hook, name in manifest.chosen.items():
    if hook not in eval_store.hooks or hook == mlp_hook:  # the MLP SAE has its own table below
        continue
    sae = dictionaries.load_release(name, model_name=train_store.config["model"], hook=hook, root=release_root)
    mask = row_mask(eval_store, TrainConfig(hook, outlier_norm_ratio=release.OUTLIER_NORM_RATIO))
    fvu, low, high = fvu_interval(sae, eval_store, hook, mask)
    shipped = manifest.entry(name).metrics
    live.append({"dictionary": name, "fvu (manifest)": shipped.fvu, "fvu (live)": fvu, "99% low": low,
                 "99% high": high, "tokens (live)": int(mask.sum())})
live = pd.DataFrame(live)
# NBVAL_IGNORE_OUTPUT
# (measured)
live.round(4)

# %%
# NBVAL_IGNORE_OUTPUT
if profile.context_length == manifest.data.context_length:
    for row in live.to_dict("records"):
        check_between(f"{row['dictionary']}: manifest FVU inside the live 99% interval", row["fvu (manifest)"],
                      np.floor(row["99% low"] * 1000) / 1000, np.ceil(row["99% high"] * 1000) / 1000)
else:
    print(f"skipped: this profile's contexts are {profile.context_length} tokens, the release's "
          f"{manifest.data.context_length}")

# %% [markdown]
# ## 4. Features shared across sizes: MMCS between R = 2 and R = 4
#
# Notebook 01's MMCS at the default budget is barely above chance. At the IOI layers the release ships the R = 2 and the
# R = 4 dictionary at the same α (8.6e-4, in both grids), trained on the same 2.1M activations. If training found
# features, the smaller dictionary's features reappear in the larger one: MMCS(R2 → R4) well above two controls,
# random directions and the same pair of ratios across layers (R = 2 at one layer → R = 4 at the other: the same
# anisotropic residual stream, and through it possibly some of the same features, so a generous control). Also: the
# share of R = 2 features with a partner at cosine ≥ 0.9.

# %%
# NBVAL_IGNORE_OUTPUT
mmcs_rows = []
ioi_layers = list(release.IOI_LAYERS)
r4_names = {d.hook: d.name for d in manifest.find(ratio=4.0, architecture="tied") if d.alpha == release.MMCS_ALPHA}
r2_names = {d.hook: d.name for d in manifest.find(ratio=2.0, architecture="tied") if d.alpha == release.MMCS_ALPHA}
pairs_ok = all(resid_post(la) in r4_names and resid_post(la) in r2_names for la in ioi_layers)
if pairs_ok:
    def release_dictionary(name: str, hook: str) -> torch.Tensor:
        sae = dictionaries.load_release(name, model_name=train_store.config["model"], hook=hook, root=release_root)
        with torch.no_grad():
            return sae.dictionary()[0]

    dicts_by_layer = {la: {r: release_dictionary(names[resid_post(la)], resid_post(la))
                           for r, names in ((2, r2_names), (4, r4_names))} for la in ioi_layers}
    for la in ioi_layers:
        other = next(o for o in ioi_layers if o != la)
        small, large = dicts_by_layer[la][2], dicts_by_layer[la][4]
        measured = release.mmcs_across_ratios(small, large)  # as the release script measures the other layers
        mmcs_rows.append({
            "layer": la, "MMCS R2→R4": measured["mmcs_small_to_large"],
            "MMCS R4→R2": measured["mmcs_large_to_small"],
            "R2 features with cos ≥ 0.9": measured["share_cos_ge_0.9"],
            "control: R2 → R4 of the other IOI layer": mmcs(small, dicts_by_layer[other][4]),
            "control: random → random": measured["random_control"]})
    release_mmcs = pd.DataFrame(mmcs_rows).set_index("layer")
    print(release_mmcs.round(3).to_string())
    for la, row in release_mmcs.iterrows():
        controls = max(v for k, v in row.items() if k.startswith("control"))
        # directional: dictionaries trained on the same activations must share more than either control
        check(f"release L{la}: MMCS R2→R4 above both controls", float(row["MMCS R2→R4"] > controls), 1.0)
        # regression: fixed by the shipped files (no run-to-run noise); the window flags a different release
        check_between(f"release L{la}: MMCS R2→R4", float(row["MMCS R2→R4"]), 0.30, 0.36)
else:
    print("the release has no R = 2 / R = 4 pair at α = 8.6e-4 at the IOI layers: run "
          "scripts/release_dictionaries.py --only resid20-tied-r4 resid26-tied-r4")

# %% [markdown]
# **Below the IOI layers** the R = 4 sweeps ship no weights (the 100 MB cap), so the release script measures MMCS
# itself, from the trained R = 2 and R = 4 ensembles of a layer at the same α, right after training them
# (`release.ratio_mmcs`; `--stage mmcs` for runs already exported), and writes it to the manifest with the same
# random control. The table shows what the manifest holds; each row names its two members and their store.

# %%
# NBVAL_IGNORE_OUTPUT
mmcs_manifest = pd.DataFrame(list(manifest.mmcs))
if len(mmcs_manifest):
    mmcs_manifest["layer"] = mmcs_manifest.hook.map(layer_of)
    print(mmcs_manifest.set_index("layer")[["small", "large", "mmcs_small_to_large", "mmcs_large_to_small",
                                            "share_cos_ge_0.9", "random_control"]].round(3).to_string())

# %%
if len(mmcs_manifest):
    for row in mmcs_manifest.to_dict("records"):
        # directional: two dictionaries trained on the same activations share more than random directions do
        check(f"release L{row['layer']} (manifest): MMCS R2→R4 above random",
              float(row["mmcs_small_to_large"] > row["random_control"]), 1.0)
else:
    print("the manifest holds no MMCS rows: run scripts/release_dictionaries.py --stage mmcs --only "
          "resid14-tied-r2 resid14-tied-r4 (and the other layers' pairs)")

# %% [markdown]
# **Little is shared across sizes at this α.** MMCS(R2 → R4) is about 0.33 at both IOI layers: above random
# directions (0.145) and the cross-layer control (0.21), but only 3–4% of the R = 2 features have an R = 4 partner
# at cosine ≥ 0.9. Below them the release script measured 0.30, 0.31 and 0.33 at layers 2, 8 and 14 (random control
# 0.144; 3–5% of features with a partner at cosine ≥ 0.9): all at least twice random, layer 2 only just (0.304
# against 0.288). At α = 8.6e-4 these codes are dense (L0 ≈ 190 of 2,304 features at R = 4; the sweep table above); one
# possible reason, not tested here, is that dense codes leave many equally good bases, so different sizes pick
# different ones. The paper compared sizes on sparser, longer-trained dictionaries; whether sparser members here share
# more would need the same α at both sizes further along the grid (the release's R = 2 and R = 4 grids meet only at
# 8.6e-4). Notebook 03 compares sparsities within the R = 4 sweep, as the paper's IOI experiment did.

# %% [markdown]
# ## 5. Bricken et al.'s untied SAE on MLP activations, and resampling
#
# The untied SAE ($f = \mathrm{ReLU}(W_e(x - b_d) + b_e)$, $\hat x = W_d f + b_d$, unit-norm decoder columns) reads
# the MLP hidden activations of layer 14 (width 1536, after the SwiGLU gate) with 3,072 features, at λ = 1.0 and
# 3.3 in Anthropic's summed-over-dimensions convention. Training used Anthropic's dead-feature resampling: four
# resamples, at 2/15, 4/15, 6/15 and 8/15 of training (Anthropic's 200M-activation interval does not scale down;
# the shape of the schedule does), each re-initialising every feature silent over the preceding half interval from
# an input drawn with probability proportional to its squared reconstruction loss. Both members are shipped;
# notebook 06 reads the sparser one. Here both are measured live on this notebook's held-out store.

# %%
mlp_saes = dictionaries.release_sweep(mlp_hook, ratio=2.0, model_name=train_store.config["model"],
                                      architecture="untied", root=release_root)
mlp_mask = row_mask(eval_store, TrainConfig(mlp_hook, outlier_norm_ratio=release.OUTLIER_NORM_RATIO))
mlp_live = []
mlp_measured = evaluate_ensembles(model, list(mlp_saes.values()), eval_store, ce_tokens, mlp_mask, corpus.separator)
for (alpha, sae), (measured,) in zip(mlp_saes.items(), mlp_measured):
    entry = sae.cfg.extra["release"]
    fvu, low, high = fvu_interval(sae, eval_store, mlp_hook, mlp_mask)
    mlp_live.append({"dictionary": entry["name"], "lambda": alpha, "l0 (manifest)": entry["metrics"]["l0"],
                     "l0 (live)": measured["l0"], "fvu (manifest)": entry["metrics"]["fvu"], "fvu (live)": fvu,
                     "99% low": low, "99% high": high, "ce_recovered (live)": measured["ce_recovered"],
                     "dead (manifest)": entry["metrics"]["dead_fraction"],
                     "resampled": entry["revival"]["resampled_features"],
                     "fired after resample": entry["revival"]["fired_after_resample"]})
mlp_live = pd.DataFrame(mlp_live)
# NBVAL_IGNORE_OUTPUT
# (measured)
mlp_live.round(4)

# %%
# NBVAL_IGNORE_OUTPUT
for row in mlp_live.to_dict("records"):
    print(f"{row['dictionary']}: {row['resampled']} features re-initialised over the 4 resamples, "
          f"{row['fired after resample']} of them fired again; dead at the end: {row['dead (manifest)']:.1%}")
    if profile.context_length == manifest.data.context_length:
        check_between(f"{row['dictionary']}: manifest FVU inside the live 99% interval", row["fvu (manifest)"],
                      np.floor(row["99% low"] * 1000) / 1000, np.ceil(row["99% high"] * 1000) / 1000)
# directional: a larger lambda can only buy sparsity
check("untied MLP SAE: L0 falls as lambda grows", float(mlp_live["l0 (live)"].is_monotonic_decreasing), 1.0)

# %% [markdown]
# **Resampling as a controlled pair.** To see what resampling does where features do die, the release command
# trains the same recipe (λ = 1.0 and 3.3, 3,072 features) at 5x the learning rate (5e-3; chosen before this run
# because an exploratory run had seen features die at it, and none at 1e-3) on the first 262,144 rows of the MLP
# store (512 Adam steps; resamples at steps 68, 136, 204 and 272), twice: with resampling and without. Same seed, same
# rows in the same order: the two runs are identical up to the first resample, and the only difference after it is
# resampling. Neither ships weights; the manifest holds their metrics: at each resample point, how many features had
# been silent for the preceding half interval (counted in both runs; the ones resampling re-initialises), how many
# distinct features were re-initialised and how many of those fired again on later training batches, how many are
# dead at the end over 1M training tokens, and the held-out L0, FVU and CE loss recovered.

# %%
# stable output: read from the manifest's sweep (metrics of the release command's two runs)
pair_runs = {f"mlp{release.MLP_LAYER}-untied-r2-{k}": k for k in ("resampling", "no-resampling")}
pair = pd.DataFrame([r.json for r in manifest.sweep if r.run in pair_runs])
if len(pair) and set(pair.run) == set(pair_runs):
    pair["resampling"] = pair.run.map(pair_runs)
    pair["re-initialised"] = pair.revival.map(lambda v: v["resampled_features"] if isinstance(v, dict) else 0)
    pair["fired again"] = pair.revival.map(lambda v: v["fired_after_resample"] if isinstance(v, dict) else 0)
    print(pair.set_index(["alpha", "resampling"])[
        ["silent_at_resample_points", "re-initialised", "fired again", "dead_fraction", "dead_tokens", "l0", "fvu",
         "ce_recovered"]].sort_index().round(4).to_string())
    for r in pair[pair.resampling == "resampling"].to_dict("records"):
        # mathematical: only a re-initialised feature can be counted as firing again
        check(f"resampling run, lambda = {r['alpha']:g}: fired again <= re-initialised",
              float(r["fired again"] <= r["re-initialised"]), 1.0)
else:
    print("the release has no resampling pair: scripts/release_dictionaries.py --only "
          + " ".join(pair_runs))

# %% [markdown]
# **Resampling re-initialised features that fired again, and still did not help; that is the finding.** At the
# release's own learning rate (1e-3, 4,096 steps on 2.1M activations) no feature had been silent for a half interval
# at any resample point, so resampling never acted, and none is dead at the end over 1M tokens. At 5e-3 features go
# silent: the λ = 3.3 member had 1, 78, 236 and 1,130 features silent over the preceding half interval (68 steps,
# about 35k rows) at the four resample points with resampling, and 1, 79, 242 and 682 without (the λ = 1 member: none
# in either run). With resampling, 1,310 distinct features were re-initialised and every one of them fired again
# afterwards, so the mechanism works as Bricken et al. describe it. But the twin without resampling ends with *fewer*
# dead features over 1M tokens (0.4% against 1.3% of 3,072) and a better dictionary at λ = 3.3 (FVU 0.579 against
# 0.609, CE loss recovered 0.584 against 0.549, L0 20.8 against 16.2); at λ = 1 the two runs are the same run. Most
# features that the half-interval rule counts as dead here are only rare: left alone, the run had 682 silent
# features at the last resample point and only 12 that never fire in 1M tokens at the end (41 with resampling),
# while re-initialising 1,130 features (37% of the dictionary) 240 steps before the end cost more than it won.
# Anthropic resampled every 200M of 8B activations, where a feature silent for 100M is dead; scaled to 512 steps the
# rule cannot tell dead from rare. The pair rerun on another machine (a store harvested again by a CPU whose float32
# forward rounds differently) kept the FVU and dead-count directions (FVU 0.578 against 0.608, 8 against 56 dead)
# but not the CE gap (0.574 against 0.569): across the two runs CE loss recovered does not separate them ([docs/release.md](../docs/release.md)). So on this
# model and budget (one pair, one seed) resampling is **not shown to help**; "resampling demonstrably revives
# features" holds only in the narrow sense (the re-initialised features fire again). The mechanism itself
# (dead features found, re-initialised from high-loss inputs, Adam moments reset, the features firing again) is also
# tested on a tiny model
# (`tests/unit/dictionaries/test_train_reliability.py`, `tests/unit/dictionaries/test_train.py`).

# %% [markdown]
# ## 6. Today's architectures at matched L0
#
# The paper's ReLU-L1 SAE is no longer what the field trains. TopK (Gao et al. 2024: keep the k largest
# pre-activations, an auxiliary loss on the top dead latents), BatchTopK (Bussmann et al. 2024: the top k x batch
# pre-activations across the batch, a threshold for inference) and JumpReLU (Rajamanoharan et al. 2024: a learned
# threshold per latent, an L0 penalty through a straight-through estimator) were each reported to reconstruct better
# than ReLU-L1 at the same number of active latents. `scripts/release_dictionaries.py --plan comparison` trains all
# four at R = 8 (4,608 latents) on the release store (2,097,152 tokens per hook) at residual layers 8, 14, 20 and 26,
# each aimed at L0 = 16, 32 and 64: k for TopK and BatchTopK, the L0 penalty's target for JumpReLU, and for ReLU-L1
# the α that a pilot sweep (9 alphas on the first 262,144 rows) interpolates for each target. This section reads
# the metrics the command wrote into the manifest; runs it has not trained yet are absent from the table.
#
# **The rule, stated before the numbers.** A member is *at* a target when its held-out L0 is within ±10% of it.
# Statistic: held-out FVU (formula in notebook 01; massive-activation rows excluded) of each architecture's member
# at the target, against the tied ReLU-L1 member at the same target and layer. The claim "architecture A
# reconstructs better than ReLU-L1 at matched L0" is *reproduced* when A's FVU is lower by more than the margin at
# every (layer, target) pair where both are matched, *partly* when at some, *not reproduced* when at none; *not
# testable here* where no pair has both matched. The margin is 0.01 FVU or, where the release holds TopK's three
# seeds at layer 14 and L0 32, their range if larger (one seed per run otherwise: the margin stands in for seed
# variance). The negative control runs the tied pilot (an eighth of the data) through the same rule; the positive
# control, the R = 8 ReLU-L1 run against the R = 2 one (a quarter of the latents). The verdicts are in §7. CE and KL
# loss recovered against zero and mean ablation, dead and dense fractions (over 1,048,576 training tokens) are shown
# beside FVU.

# %%
matched = pd.DataFrame([vars(r) for r in release_comparison.matched_l0_table(full_manifest)])
if matched.empty:
    print("the release holds no comparison runs yet: .venv/bin/python scripts/release_dictionaries.py "
          "--plan comparison (or --only resid14-tied-r8 resid14-topk-r8 ... for one layer)")
else:
    # NBVAL_IGNORE_OUTPUT
    # (the comparison's metrics, from the manifest)
    display(matched.set_index(["layer", "target_l0", "architecture"]).round(4))

# %%
# NBVAL_IGNORE_OUTPUT
# (the margin follows the TopK seeds the release holds)
seed_fvus = [r.metrics.fvu for r in full_manifest.sweep
             if r.run.startswith(f"resid{release_comparison.LADDER_LAYER}-topk-r8")
             and r.alpha == release_comparison.LADDER_L0]
margin = max(FVU_MARGIN, max(seed_fvus) - min(seed_fvus)) if len(seed_fvus) >= 3 else FVU_MARGIN
print(f"margin: {margin:.4f} FVU ({len(seed_fvus)} TopK seed(s) at layer {release_comparison.LADDER_LAYER}, L0 32)")

# %%
comparison_runs = release_comparison.comparison_run_names()
comparison_sweep = pd.DataFrame([r.json for r in full_manifest.sweep if r.run in comparison_runs
                                 and r.ratio == release_comparison.COMPARISON_RATIO and "-seed" not in r.run])
if not comparison_sweep.empty:
    comparison_sweep["layer"] = comparison_sweep.hook.map(layer_of)
    layers = sorted(comparison_sweep.layer.unique())
    fig, axes = plt.subplots(2, len(layers), figsize=(4.5 * len(layers), 7), squeeze=False)
    for j, layer in enumerate(layers):
        for run, g in comparison_sweep[comparison_sweep.layer == layer].groupby("run"):
            g = g.sort_values("l0")
            pilot = run.endswith("-pilot")
            style = dict(marker="o", ls=":" if pilot else "-", alpha=0.5 if pilot else 1.0,
                         label=run.split("-", 1)[1] + (" (1/8 of the data)" if pilot else ""))
            axes[0, j].plot(g.l0, g.fvu, **style)
            axes[1, j].plot(g.l0, g.ce_recovered, **style)
        for target in release_comparison.TARGET_L0:
            for ax in axes[:, j]:
                ax.axvspan(0.9 * target, 1.1 * target, color="0.92", zorder=0)
        axes[0, j].set(xscale="log", title=f"layer {layer}, R = 8", ylabel="FVU (held-out)" if j == 0 else None)
        axes[1, j].set(xscale="log", xlabel="L0 (held-out)",
                       ylabel="CE loss recovered (zero abl.)" if j == 0 else None)
    axes[0, 0].legend(frameon=False, fontsize=7)
    savefig(fig, "07_matched_l0_frontiers", PROFILE)
    plt.show()

# %% [markdown]
# Grey bands: ±10% around each target L0. Each line is one run's members; the tied pilot (dotted) trained on an
# eighth of the store and only sets the α of the full tied run.

# %% [markdown]
# ### The MLP layer that matters
#
# Bricken et al.'s MLP SAE reads an MLP whose output the model needs. `scripts/measure_mlp_ablation.py` replaces
# each MLP layer's output (`hook_post`) by zero and by its mean over other contexts and measures the rise in
# next-token CE on held-out contexts (95% t-intervals over contexts). The rule, fixed before the measurement: the
# comparison's MLP runs go to the layer whose mean ablation costs the most. The release's MLP-14 (above) costs
# little, so its CE loss recovered divides by a small number.

# %%
mlp_ablation = json.loads((release_root / "mlp_ablation.json").read_text()) \
    if (release_root / "mlp_ablation.json").exists() else None
if mlp_ablation is None:
    print("no mlp_ablation.json in the release: .venv/bin/python scripts/measure_mlp_ablation.py")
else:
    ablation = pd.DataFrame([{"layer": layer_of(r["hook"]), "zero dCE": r["zero"]["mean"],
                              "zero 95% lo": r["zero"]["lo"], "zero 95% hi": r["zero"]["hi"],
                              "mean dCE": r["mean"]["mean"], "mean 95% lo": r["mean"]["lo"],
                              "mean 95% hi": r["mean"]["hi"]} for r in mlp_ablation["layers"]]).set_index("layer")
    print(f"{mlp_ablation['contexts']} held-out contexts of {mlp_ablation['context_length']} tokens; most costly "
          f"under mean ablation: {mlp_ablation['most_costly_mean_ablation']}")
    # NBVAL_IGNORE_OUTPUT
    # (measured by scripts/measure_mlp_ablation.py)
    display(ablation.sort_values("mean dCE", ascending=False).head(6).round(3))

# %% [markdown]
# MLP-0 is the most costly by far (+9.29 nats zeroed, +5.90 mean-ablated). The first MLP of a deep model is often
# read as an extension of the token embedding (not tested here); Bricken et al.'s model had one layer, so their MLP
# was also the first. Next come MLP-29 (+1.70 / +1.32) and, under zero ablation, MLP-28 (+0.72; +0.26 mean-ablated,
# below MLP-11's +0.28); MLP-14, where the release's MLP SAE sits, costs +0.10 either way. The comparison's MLP runs (untied with resampling, and TopK, at
# R = 8: 12,288 latents) go to the layer the rule picks; their metrics join the table above when trained.
#
# ### A wider dictionary at the same L0: the width ladder
#
# At layer 14, TopK at L0 = 32 is trained at R = 1, 2, 4, 8, 16 and 32 (576 to 18,432 latents) on the same store
# (metrics only; R = 8 is the comparison's run). Each member's convergence curve (FVU on batches it has not yet
# trained on) says whether the widest ones plateau within 2.1M tokens.

# %%
ladder = release_comparison.ladder_table(full_manifest)
if not ladder:
    print("the release holds no width ladder yet: .venv/bin/python scripts/release_dictionaries.py --plan "
          "comparison --only resid14-topk-ladder")
else:
    # NBVAL_IGNORE_OUTPUT
    # (the ladder's metrics, from the manifest)
    display(pd.DataFrame([{k: v for k, v in vars(r).items() if k != "curve"} for r in ladder]).round(4))
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in ladder:
        curve = pd.DataFrame(r.curve)
        if len(curve):
            ax.plot(curve.activations, curve.fvu.rolling(8, min_periods=1).mean(), label=f"R = {r.ratio:g}")
    ax.set(xlabel="activations seen", ylabel="FVU on unseen batches (rolling mean)", ylim=(0, 1),
           title=f"TopK k = 32 at layer {release_comparison.LADDER_LAYER}: convergence by width")
    ax.legend(frameon=False)
    savefig(fig, "07_width_ladder_convergence", PROFILE)
    plt.show()

# %% [markdown]
# ## 7. Verdict
#
# Three groups of claims, each decided by a rule coded in `saelib.experiments.release_dictionaries` and printed
# under its verdict line: resampling (the controlled pair of §5), features shared across sizes (the MMCS of §4:
# the manifest's pairs at layers 2, 8 and 14, the live pairs at the IOI layers with their cross-layer control), and
# each of today's architectures against ReLU-L1 at matched L0 (§6).

# %%
from saelib.experiments.release_dictionaries import (  # noqa: E402
    ReferenceFrontier,
    ResamplingPairMember,
    SizePair,
    architecture_verdicts,
    resampling_verdict,
    size_sharing_verdict,
)

pair_members = []
if len(pair) and set(pair.run) == set(pair_runs):
    for lam, g in pair.groupby("alpha"):
        on, off = (g[g.resampling == k].iloc[0] for k in ("resampling", "no-resampling"))
        pair_members.append(ResamplingPairMember(float(lam), int(on["re-initialised"]), int(on["fired again"]),
                                                 float(on.fvu), float(off.fvu), float(on.dead_fraction),
                                                 float(off.dead_fraction)))
size_pairs = [SizePair(int(r["layer"]), float(r["mmcs_small_to_large"]), float(r["share_cos_ge_0.9"]),
                       float(r["random_control"]), None) for r in mmcs_manifest.to_dict("records")] \
    if len(mmcs_manifest) else []
size_pairs += [SizePair(int(la), float(r["MMCS R2→R4"]), float(r["R2 features with cos ≥ 0.9"]),
                        float(r["control: random → random"]), float(r["control: R2 → R4 of the other IOI layer"]))
               for la, r in (release_mmcs.iterrows() if pairs_ok else [])]


def tied_frontier(run: str) -> list[ReferenceFrontier]:
    """The members of a tied sweep (α > 0) as a frontier, one per layer the manifest holds it at."""
    rows = [r for r in full_manifest.sweep if r.run == run and r.alpha > 0]
    return [ReferenceFrontier(layer_of(rows[0].hook), tuple((r.metrics.l0, r.metrics.fvu) for r in rows))] \
        if rows else []


comparison_rows = release_comparison.matched_l0_table(full_manifest)
pilots = [f for la in release_comparison.COMPARISON_LAYERS for f in tied_frontier(f"resid{la}-tied-r8-pilot")]
narrower = [f for la in release_comparison.COMPARISON_LAYERS for f in tied_frontier(f"resid{la}-tied-r2")]
verdicts = [resampling_verdict(pair_members), size_sharing_verdict(size_pairs),
            *architecture_verdicts(comparison_rows, margin, pilot=pilots, narrower=narrower)]
# NBVAL_IGNORE_OUTPUT
# (measured; the verdict lines below are checked)
show_verdicts(verdicts)

# %%
# stable output: the lines under each verdict are its rule, precondition, controls and unit as written in the
# code (thresholds, not measurements)
print_verdicts(verdicts)
