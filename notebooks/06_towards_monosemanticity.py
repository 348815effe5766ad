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
# # 06 · Towards Monosemanticity on SmolLM2: neurons, steering, universality, feature splitting
#
# **Question.** Bricken et al. (2023) train an untied SAE on the 512-neuron MLP of a one-layer transformer and
# report, among other things (their "Summary of Results"), four findings this notebook tests on
# SmolLM2-135M-Instruct: features are effectively invisible in the neuron basis, and pinning a feature high while
# sampling steers the model to that feature's kind of text (both shown on single features in "Detailed
# Investigations", such as the Arabic script and base64 features); dictionaries trained separately find features
# whose activations correlate closely ("Phenomenology", "Universality"); and as the dictionary grows, one feature
# becomes a family of more specific features ("Phenomenology", "Feature Splitting"). They report these findings
# mostly as figures and examples rather than numbers a test could match.
#
# **Method.** Each finding is decided by a rule stated before its measurement, with controls, not by a number to
# match. Section 1 compares every feature of the release's untied MLP SAE of layer 14 (Bricken et al.'s architecture
# and resampling) with every MLP neuron on held-out tokens; section 2 clamps a feature of a release residual
# dictionary while the model samples (steering in the residual stream, as SAELens' steering tutorial does) and has a
# source classifier read the continuations; section 3 matches features, by activation correlation, between two seeds
# of the small layer-14 dictionary notebook 01 trains (the second seed trained here) and against the release;
# section 4 counts the children, by decoder cosine, of each feature of the smallest dictionary of notebook 01's
# layer-14 size sweep in the larger ones; section 5 holds the verdicts.
#
# The four findings, as tested here:
#
# 1. **Features are invisible to neurons**: most features are not well predicted by any single neuron.
# 2. **Steering**: pinning a feature high while sampling makes the model write that feature's kind of text.
# 3. **Universality**: dictionaries trained separately find features whose activations correlate closely.
# 4. **Feature splitting**: as the dictionary grows, one feature of a small dictionary becomes a family of more
#    specific features in a larger one.

# %% tags=["parameters"]
PROFILE: str = "default"  # dev | default | paper (see saelib/core/profiles.py)

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from saelib import dictionaries
from saelib.activations.harvest import fragments_profile, harvest_profile, heldout_profile
from saelib.baselines.directions import random_directions
from saelib.core.check import check_between, regression
from saelib.core.plots import savefig
from saelib.experiments.notebook_setup import setup
from saelib.core.stats import mean_se, proportion
from saelib.core.verdicts import print_verdicts, show_verdicts
from saelib.dictionaries.release import OUTLIER_NORM_RATIO
from saelib.dictionaries.train import TrainConfig, row_mask, train_saes
from saelib.experiments import steering as S
from saelib.experiments.monosemanticity import MonosemanticityResults, monosemanticity_verdicts
from saelib.interp import universality as U
from saelib.interp.case_studies import top_token_types
from saelib.interp.dashboard import feature_matrix
from saelib.interp.features import FeatureView, feature_codes, feature_views, ordinary_rows, top_contexts
from saelib.interp.neurons import best_neuron, direction_controls, invisible_fraction
from saelib.model import mlp_post, model_name, resid_post

nb = setup(PROFILE, display_width=140)
profile, model, corpus, tok = nb.profile, nb.model, nb.corpus, nb.tokenizer
sizes, sweep = profile.monosemanticity, profile.sae
resid_hooks = [resid_post(layer) for layer in sweep.layers]
mlp_hook = "blocks.14.mlp.hook_post"  # the release's MLP dictionary (Bricken et al.'s untied SAE)
mlp_saes = dictionaries.release_sweep(mlp_hook, ratio=2.0, model_name=model_name(model), architecture="untied")
store_hooks = resid_hooks + [mlp_post(sweep.mlp_layer)]  # notebook 01's held-out store (cached)
store_hooks += [mlp_hook] if mlp_hook not in store_hooks else []
heldout = heldout_profile(model, store_hooks, profile)
print(sizes)

# %% [markdown]
# ## 1. Features invisible to neurons
#
# For every feature of the sparser shipped MLP dictionary (λ = 3.3; the denser one has L0 ≈ 420, far from the sparse
# codes Bricken et al. studied), and for every one of the 1,536 MLP neurons, on the same held-out tokens: the
# Pearson correlation of the feature's activation with the neuron's, and the ROC AUC of the neuron as a detector of
# "the feature fires" (either sign). Features firing on fewer than `min_fires` tokens are left out (too few to
# measure). Two controls, one per measured feature at its density, say what a measure of invisibility can tell:
# single neurons thresholded to fire as often as the feature (visible by construction: the negative control) and
# random unit directions of neuron space thresholded the same way (invisible unless the neurons are special: the
# positive control). Two measures go through them: no neuron's |correlation| reaches 0.5 (no single neuron shares
# a quarter of the feature's variance), and no neuron detects where the feature fires at AUC ≥ 0.9. The verdict uses
# the one whose controls separate.

# %%
# NBVAL_IGNORE_OUTPUT
mlp_sae = mlp_saes[max(mlp_saes)]
mask = row_mask(heldout, TrainConfig(mlp_hook, outlier_norm_ratio=OUTLIER_NORM_RATIO))
rows = np.flatnonzero(mask)
neurons = np.asarray(heldout.activations(mlp_hook)[rows], dtype=np.float32)
with torch.no_grad():
    codes = feature_codes(mlp_sae, torch.from_numpy(neurons)).numpy()
start = time.time()
table = best_neuron(codes, neurons)
fires = (codes > 0).sum(0)
measured = table[fires >= sizes.min_fires].copy()
invisible = proportion((measured.best_abs_corr < sizes.invisible_corr).to_numpy())
print(f"{len(rows):,} held-out tokens; {len(measured):,} of {mlp_sae.cfg.n_features:,} features fire on at least "
      f"{sizes.min_fires} of them ({time.time() - start:.1f}s for all feature x neuron pairs)")
print(f"invisible to neurons (best |corr| < {sizes.invisible_corr}): {invisible}")
print(f"best neuron AUC below 0.9: {invisible_fraction(measured, 0.9):.3f}; median best AUC "
      f"{measured.best_auc.median():.3f}, median best |corr| {measured.best_abs_corr.median():.3f}")
# controls at the measured features' densities: random directions of neuron space (should come out invisible) and
# single neurons (visible by construction), both thresholded to fire as often as the feature they stand beside
random_codes, neuron_codes = direction_controls(neurons, measured.density.to_numpy(), seed=profile.seed)
control_tables = {"random directions": best_neuron(random_codes, neurons),
                  "single neurons": best_neuron(neuron_codes, neurons)}
tables = {"SAE features": measured, **control_tables}
by_corr = {k: proportion((t.best_abs_corr < sizes.invisible_corr).to_numpy()) for k, t in tables.items()}
by_auc = {k: proportion((t.dropna(subset=["best_auc"]).best_auc < sizes.invisible_auc).to_numpy())
          for k, t in tables.items()}
display(pd.DataFrame({k: {f"invisible by |corr| < {sizes.invisible_corr:g}": str(by_corr[k]),
                          f"invisible by best AUC < {sizes.invisible_auc:g}": str(by_auc[k]),
                          "median best |corr|": round(float(t.best_abs_corr.median()), 3),
                          "median best AUC": round(float(t.best_auc.median()), 3)}
                      for k, t in tables.items()}).T)

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
axes[0].hist(measured.best_abs_corr, bins=40, color="tab:blue")
axes[0].axvline(sizes.invisible_corr, color="k", ls="--", lw=1)
axes[0].set(xlabel="best |correlation| with any single neuron", ylabel="features",
            title=f"MLP-14 SAE features (λ={max(mlp_saes):g}) against the 1,536 neurons")
axes[1].scatter(measured.density, measured.best_auc, s=4, alpha=0.4)
axes[1].set(xscale="log", xlabel="feature density (held-out)", ylabel="best single-neuron AUC",
            title="Detection of 'the feature fires' by its best neuron")
savefig(fig, "06_features_vs_neurons", PROFILE)
plt.show()

# %% [markdown]
# **Reading.** The correlation measure fails its negative control: a single neuron thresholded to fire as rarely as
# a feature correlates with its own neuron below 0.5 in about 80% of cases (most of the neuron's variance lies below
# the threshold), so "no neuron at |r| ≥ 0.5" would call most neurons invisible to themselves. The AUC measure
# separates its controls (thresholded neurons 0% invisible, random directions over 99%), and by it 72% of the 2,931
# measured features have no neuron that detects where they fire with AUC ≥ 0.9: most features of the MLP dictionary
# are spread over many neurons, and a minority, mostly the denser features, is close to one neuron (the cluster at
# AUC ≈ 0.98–1 on the right). This is Bricken et al.'s observation on a 512-neuron toy model, here on a 1,536-neuron
# gated MLP of a real model.
#
# One invisible feature, chosen by rule (among features firing on at least 1% of tokens, the one whose best neuron
# correlates least), beside the top contexts of that best neuron.

# %%
candidates = measured[measured.density >= 0.01].sort_values("best_abs_corr")
example = candidates.iloc[0] if len(candidates) else measured.sort_values("best_abs_corr").iloc[0]
f_idx, n_idx = int(example.feature), int(example.best_neuron)
f_col, n_col = np.zeros(heldout.n_rows, np.float32), np.zeros(heldout.n_rows, np.float32)
f_col[rows], n_col[rows] = codes[:, f_idx], neurons[:, n_idx]
display(feature_views([
    FeatureView(f"feature {f_idx}: density {example.density:.2%}, best neuron {n_idx} (|corr| "
                f"{example.best_abs_corr:.2f}, AUC {example.best_auc:.2f})",
                top_contexts(heldout, f_col, tok, k=5, before=16, after=4),
                note="top tokens: " + top_token_types(f_col, np.asarray(heldout.tokens).reshape(-1), tok)),
    FeatureView(f"neuron {n_idx}", top_contexts(heldout, n_col, tok, k=5, before=16, after=4),
                note="top tokens: " + top_token_types(n_col, np.asarray(heldout.tokens).reshape(-1), tok)),
]))

# %% [markdown]
# ## 2. Steering by clamping a feature
#
# For each target source, the feature of the chosen release dictionary at layer `steer_layer` whose activation mass
# is most concentrated on that source's text (on notebook 02's 2,048 held-out windows; features firing on at least
# `steer_min_density` of tokens), clamped at every position to a multiple of its largest activation there while the
# model samples continuations of neutral prompts. A source classifier (TF-IDF word and character n-grams, logistic
# regression, trained on the corpus' training split, accuracy on held-out chunks printed) then says which source
# each continuation reads like. Controls: no clamp, and a random feature of similar density clamped the same way.
# The same sampling seed is used for every condition, so conditions differ only by the clamp, and differences are
# paired per continuation with intervals that resample the eight prompts. Fluency is the continuations' mean
# negative log-likelihood under the unsteered model (`S.continuation_nll`). The measurement has its own negative
# control: random-token gibberish of the same length, which a classifier that reads only surface features might
# assign to a source (a source it does so for cannot decide the claim).

# %%
# NBVAL_IGNORE_OUTPUT
pool = fragments_profile(model, resid_hooks, profile)
pool_rows = ordinary_rows(pool)
steer_hook = resid_post(sizes.steer_layer)
steer_sae = dictionaries.load_release(dictionaries.release_manifest()["chosen"][steer_hook],
                                      model_name=model_name(model), hook=steer_hook)
pool_codes, _ = feature_matrix(steer_sae, pool, steer_hook, pool.n_rows)
pool_codes = pool_codes[pool_rows].astype(np.float32)
row_sources = np.asarray(pool.provenance(np.flatnonzero(pool_rows)).source)
start = time.time()
classifier = S.SourceClassifier.fit(corpus, tok, chunk_tokens=sizes.classifier_chunk_tokens,
                                    per_source=sizes.classifier_per_source, seed=profile.seed)
print(f"source classifier: held-out accuracy {classifier.heldout_accuracy:.3f} over {len(classifier.sources)} "
      f"sources (chance {1 / len(classifier.sources):.3f}); {time.time() - start:.0f}s")

# %%
PROMPTS = ["The", "In the", "It is", "One day", "We", "This is", "When I", "There was"]
# negative control of the measurement: random-token gibberish, as many strings and tokens as the continuations
gibberish = S.random_token_texts(tok, len(PROMPTS) * sizes.steer_samples, sizes.steer_new_tokens, seed=profile.seed)
gibberish_labels = classifier.predict(gibberish)
gibberish_as = {source: proportion(gibberish_labels == source) for source in sizes.steer_sources}
print("random-token text classified as: " + ", ".join(f"{k} {v}" for k, v in gibberish_as.items()))
rng = np.random.default_rng(profile.seed)
steer_rows, samples, hits = [], {}, {}
prompt_of = np.repeat(np.arange(len(PROMPTS)), sizes.steer_samples)  # generate_texts returns prompt-major order
nll_cache: dict[tuple[str, ...], float] = {}


def nll_of(texts: list[str]) -> float:
    """Mean NLL (nats/token) of the continuations under the unsteered model: fluency, lower is more fluent."""
    key = tuple(texts)
    if key not in nll_cache:
        nll_cache[key] = float(np.nanmean(S.continuation_nll(model, PROMPTS, texts, sizes.steer_samples)))
    return nll_cache[key]


start = time.time()
baseline = S.generate_texts(model, PROMPTS, sizes.steer_samples, sizes.steer_new_tokens, seed=profile.seed)
for source in sizes.steer_sources:
    ranked = S.source_features(pool_codes, row_sources, source, sizes.steer_min_density)
    target = ranked.iloc[0]
    similar = ranked[(ranked.density.between(target.density / 2, target.density * 2))
                     & (ranked.feature != target.feature)]
    control = similar.iloc[rng.integers(len(similar))] if len(similar) else ranked.iloc[len(ranked) // 2]
    conditions = [("no clamp", None, 0.0, baseline)]
    for kind, feat in (("feature", target), ("random feature", control)):
        for multiple in sizes.clamp_multiples:
            hook_fn = S.clamp_hook(steer_sae, int(feat.feature), float(multiple * feat["max"]))
            texts = S.generate_texts(model, PROMPTS, sizes.steer_samples, sizes.steer_new_tokens,
                                     fwd_hooks=[(steer_hook, hook_fn)], seed=profile.seed)
            conditions.append((kind, int(feat.feature), multiple, texts))
    for kind, feat, multiple, texts in conditions:
        hit = proportion(classifier.predict(texts) == source)
        steer_rows.append({"source": source, "clamped": kind, "feature": feat, "multiple": multiple,
                           "share of its mass on the source": float(target.share if kind == "feature" else
                                                                    control.share if feat is not None else np.nan),
                           "classified as source": hit.mean, "low": hit.lo, "high": hit.hi, "n": hit.n,
                           "mean P(source)": float(classifier.probability(texts, source).mean()),
                           "NLL under the unsteered model": nll_of(texts)})
        samples[(source, kind, multiple)] = texts
        hits[(source, kind, multiple)] = (classifier.predict(texts) == source).astype(np.float64)
steer = pd.DataFrame(steer_rows)
print(f"{len(steer)} conditions x {len(PROMPTS) * sizes.steer_samples} continuations of "
      f"{sizes.steer_new_tokens} tokens: {time.time() - start:.0f}s")
# NBVAL_IGNORE_OUTPUT
# (sampled text, measured)
steer.round(3)

# %%
# NBVAL_IGNORE_OUTPUT
# (sampled text)
top = max(sizes.clamp_multiples)
for source in sizes.steer_sources:
    for kind in ("no clamp", "feature", "random feature"):
        texts = samples[(source, kind, 0.0 if kind == "no clamp" else top)]
        print(f"--- {source} | {kind}" + ("" if kind == "no clamp" else f" x{top:g}"))
        for t in texts[:: max(1, len(texts) // 3)][:3]:
            print("   ", repr(t[:160]))

# %%
fig, axes = plt.subplots(1, len(sizes.steer_sources), figsize=(5.5 * len(sizes.steer_sources), 3.6), squeeze=False)
for ax, source in zip(axes[0], sizes.steer_sources):
    g = steer[steer.source == source].reset_index(drop=True)
    labels = [r.clamped if r.clamped == "no clamp" else f"{r.clamped} x{r.multiple:g}" for r in g.itertuples()]
    colors = ["grey" if c == "no clamp" else "tab:red" if c == "feature" else "tab:blue" for c in g.clamped]
    ax.bar(range(len(g)), g["classified as source"], color=colors,
           yerr=[g["classified as source"] - g.low, g.high - g["classified as source"]], capsize=3)
    ax.set_xticks(range(len(g)), labels, rotation=30, ha="right", fontsize=8)
    ax.set(ylim=(0, 1), ylabel=f"continuations classified '{source}'", title=f"Steering towards {source}")
savefig(fig, "06_steering", PROFILE)
plt.show()

# %% [markdown]
# **Reading.** Clamped at three times its largest held-out activation, the feature whose activations sit most on
# Bible text turns about half of the continuations of neutral prompts into text the classifier calls scripture
# (none without the clamp or with a random feature clamped the same way); the Python-documentation feature turns all
# of them into technical text (from about a fifth without the clamp, a third with a random feature). The text
# is not fluent: a 135M model pushed this hard writes fragments of the style ("holy ones", "ModuleItem spec"),
# not passages. Under the unsteered model (the NLL column, nats per token) the Bible-steered continuations cost
# about 0.6 more than its own continuations (3.6), the Python-steered ones about 3.6 more, and a random feature
# clamped as hard costs 0.4 to 2.4 more: the clamp degrades fluency, unevenly. The classifier does not reward
# fluency loss as such: random-token gibberish of the same length is
# called Python documentation in about 8% of cases and scripture in none, far below the clamped shares. One clamp
# strength is measured at the default budget; the `paper` profile sweeps three.

# %% [markdown]
# ## 3. Universality: the same features from two training runs
#
# Bricken et al. compared dictionaries trained on two transformers that differ only in their random seed, matching
# features by activation correlation. Here: notebook 01's layer-14 dictionary (R = 2) and one trained here on the
# same activations with another seed; and, as a different run in every respect (16x the data, another recipe), the
# release dictionary of that layer. Each feature of the first is matched to the feature of the other whose
# activations on held-out tokens correlate most. Baseline: two sets of random directions (ReLU of a centred random
# projection, as many as the SAE has features, each token keeping only its top-L0 of them so the baseline is as
# sparse as the SAE), matched the same way; a feature counts as **shared** when its best match correlates at 0.7
# or more.
#
# Bricken et al. also matched features across two *models*; a second model (Gemma-3-270M base ships offline as a
# GGUF) tokenizes differently, so its activations would first need aligning token by token: not attempted here.

# %%
uni_layer = sweep.ratio_sweep_layer
uni_hook = resid_post(uni_layer)
train_store = harvest_profile(model, store_hooks, profile, split="train")  # notebook 01's (cached)
alpha = sweep.ratio_sweep_alphas[0]
layer_cfg = dict(ratios=(sweep.ratio,), alphas=sweep.alphas, epochs=sweep.epochs, batch_size=sweep.batch_size,
                 lr=sweep.lr, device=profile.device)
start = time.time()
seed_a = train_saes(train_store, TrainConfig(uni_hook, seed=profile.seed, **layer_cfg),
                    progress=False).sae(sweep.ratio, alpha)
seed_b = train_saes(train_store, TrainConfig(uni_hook, seed=profile.seed + 1, **layer_cfg),
                    progress=False).sae(sweep.ratio, alpha)
release_uni = dictionaries.load_release(dictionaries.release_manifest()["chosen"][uni_hook],
                                        model_name=model_name(model), hook=uni_hook)
print(f"seed {profile.seed + 1} trained in {time.time() - start:.0f}s")
uni_mask = row_mask(heldout, TrainConfig(uni_hook))
x_uni = torch.from_numpy(np.asarray(heldout.activations(uni_hook)[uni_mask], dtype=np.float32))
d_model = x_uni.shape[1]


def acts(d):
    with torch.no_grad():
        return feature_codes(d, x_uni).numpy()


a_acts = acts(seed_a)
sae_l0 = max(1, round(float((a_acts > 0).sum(1).mean())))
# the baseline as sparse as the SAE (each token keeps its top-L0 random projections, as notebook 02's top-k baselines)
rand_a = random_directions(d_model, seed_a.cfg.n_features, seed=0).top_k(sae_l0)
rand_b = random_directions(d_model, seed_a.cfg.n_features, seed=1).top_k(sae_l0)
rand_a.center = rand_b.center = x_uni.mean(0)  # centred projections, so a ReLU keeps about half of each
pairs = {f"SAE seed {profile.seed} -> seed {profile.seed + 1}": (a_acts, acts(seed_b)),
         f"SAE seed {profile.seed} -> release (16x data)": (a_acts, acts(release_uni)),
         f"random directions (top-{sae_l0}) seed 0 -> seed 1": (acts(rand_a), acts(rand_b))}
uni_rows, matches = [], {}
for name, (xa, xb) in pairs.items():
    m = U.match_features(xa, xb)
    m = m[(xa[:, m.feature] > 0).sum(0) >= sizes.min_fires]
    matches[name] = m
    shared = proportion((m["corr"] >= 0.7).to_numpy())
    uni_rows.append({"pair": name, "features": len(m), "mean best corr": mean_se(m["corr"].to_numpy()).mean,
                     "median best corr": float(m["corr"].median()), "shared (corr >= 0.7)": shared.mean,
                     "low": shared.lo, "high": shared.hi})
universality = pd.DataFrame(uni_rows)
print(f"{len(x_uni):,} held-out tokens at layer {uni_layer}; dictionaries of {seed_a.cfg.n_features} features, "
      f"alpha {alpha:g}")
# NBVAL_IGNORE_OUTPUT
# (measured)
universality.round(3)

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.8))
for name, m in matches.items():
    ax.hist(m["corr"], bins=np.linspace(0, 1, 41), histtype="step", lw=1.5, label=name)
ax.axvline(0.7, color="k", ls="--", lw=1)
ax.set(xlabel="activation correlation with the best-matching feature", ylabel="features",
       title=f"Universality at layer {uni_layer}")
ax.legend(frameon=False, fontsize=8)
savefig(fig, "06_universality", PROFILE)
plt.show()

# %% [markdown]
# **Reading.** About 29% of the features of one seed have a partner in the other seed with activation correlation
# ≥ 0.7, three times the random baseline's 10% but far from "most". Against the release dictionary of the same
# layer (same α, 16x the data) the share is about the same. These dictionaries saw one epoch of 131k activations;
# notebook 01 shows their decoders have not converged (MMCS between sizes barely above random), and two seeds
# drawn from under-trained dictionaries need not agree. The fair test is two seeds at the release budget, which
# the release tier does not train yet: the verdict below is about this budget.

# %% [markdown]
# ## 4. Feature splitting as the dictionary grows
#
# Notebook 01 trains dictionaries of R = 1, 2, 4 and 8 times the width at layer 14 on the same data and α. A
# feature of a larger dictionary joins a smaller one's **family** when their decoder directions have cosine ≥
# `family_cosine`. Splitting means a small feature has several children in a larger dictionary, each firing on
# part of where it fires (Bricken et al. measured this with the masked cosine of activations). Rule, fixed before
# measuring: splitting is reproduced if the share of the smallest dictionary's features with two or more children
# rises with the size of the larger dictionary and its 95% interval at the largest size excludes 0 (partly if only
# the latter holds).

# %%
ratio_cfg = TrainConfig(uni_hook, ratios=sweep.ratio_sweep, alphas=sweep.ratio_sweep_alphas, epochs=sweep.epochs,
                        batch_size=sweep.batch_size, lr=sweep.lr, seed=profile.seed, device=profile.device)
start = time.time()
ratio_result = train_saes(train_store, ratio_cfg, progress=False)  # notebook 01's ratio sweep (cached)
by_size = {sweep.ratio: seed_a, **{r: ratio_result.sae(r, alpha) for r in sweep.ratio_sweep}}
by_size = dict(sorted(by_size.items()))
size_acts = {r: acts(d) for r, d in by_size.items()}
decoders = {r: d.dictionary()[0] if d.dictionary().dim() == 3 else d.dictionary() for r, d in by_size.items()}
print("sizes: " + ", ".join(f"R={r:g} ({d.cfg.n_features})" for r, d in by_size.items())
      + f"; {time.time() - start:.0f}s")
smallest = min(by_size)
live_small = np.flatnonzero((size_acts[smallest] > 0).sum(0) >= sizes.min_fires)
split_rows, families = [], {}
for r in [r for r in by_size if r != smallest]:
    fam = U.feature_families(decoders[smallest], decoders[r], size_acts[smallest], size_acts[r],
                             min_cosine=sizes.family_cosine)
    families[r] = fam
    children = fam.groupby("small").size().reindex(live_small, fill_value=0).to_numpy()
    split = proportion(children >= 2)
    split_rows.append({"from": f"R={smallest:g}", "to": f"R={r:g}", "small features": len(live_small),
                       "mean children": float(children.mean()), "with >= 2 children": split.mean,
                       "low": split.lo, "high": split.hi,
                       "median P(child | parent)": float(fam.p_large_given_small.median()) if len(fam) else np.nan,
                       "median masked cosine": float(fam.masked_cosine.median()) if len(fam) else np.nan})
splitting = pd.DataFrame(split_rows)
# NBVAL_IGNORE_OUTPUT
# (measured)
splitting.round(3)

# %%
# Regression values: two runs of this notebook on one machine gave identical numbers (the dictionaries, stores and
# sampling seeds are fixed). On another CPU (a CI instance) the seed dictionaries, trained here, gave a slightly
# different shared share (the interval's upper end printed 0.32 where this run had 0.31); 0.02 is twice that move.
# Steering is checked by direction, since one sampled token that changes can change a continuation.
regression("source classifier: held-out accuracy", classifier.heldout_accuracy, 0.788, profile=PROFILE, atol=0.02)
regression("features vs neurons: share invisible (best |corr| < 0.5)", invisible.mean, 0.850, profile=PROFILE,
           atol=0.01)
regression("features vs neurons: median best AUC", float(measured.best_auc.median()), 0.847, profile=PROFILE, atol=0.01)
for source in sizes.steer_sources:
    g = steer[(steer.source == source) & (steer.multiple.isin([0.0, max(sizes.clamp_multiples)]))]
    gap = float(g[g.clamped == "feature"]["classified as source"].iloc[0]
                - g[g.clamped != "feature"]["classified as source"].max())
    check_between(f"steering towards {source}: clamped share minus the best control's", gap, 0.0, 1.0)
regression("universality: share of seed-0 features shared with seed 1",
           float(universality["shared (corr >= 0.7)"].iloc[0]), 0.292, profile=PROFILE, atol=0.02)
regression("splitting: mean children of an R=1 feature in R=2", float(splitting["mean children"].iloc[0]), 0.075,
           profile=PROFILE, atol=0.02)

# %% [markdown]
# One family drawn across sizes: the smallest dictionary's feature with the most children in the largest, its
# children at every size (decoder cosine ≥ `family_cosine` with it), each labelled with the commonest tokens among
# its 20 largest held-out activations.

# %%
largest = max(by_size)
ids_uni = np.asarray(heldout.tokens).reshape(-1)[uni_mask]
root = int(families[largest].groupby("small").size().idxmax()) if len(families[largest]) else int(live_small[0])
fig, ax = plt.subplots(figsize=(12, 1.6 * len(by_size)))
levels = {smallest: [root]}
for r in [r for r in by_size if r != smallest]:
    levels[r] = families[r][families[r].small == root].sort_values("decoder_cosine", ascending=False).large.tolist()
for y, (r, feats) in enumerate(reversed(list(levels.items()))):
    for i, f in enumerate(feats[:6]):
        xpos = (i + 0.5) / max(1, min(len(feats), 6))
        label = top_token_types(size_acts[r][:, f], ids_uni, tok, k=20, n=2)
        ax.text(xpos, y, f"R={r:g} #{f}\n{label}", ha="center", va="center", fontsize=7,
                bbox=dict(boxstyle="round", fc="lightyellow" if r == smallest else "white", ec="grey"))
ax.set(xlim=(0, 1), ylim=(-0.5, len(levels) - 0.5), title=f"A feature family at layer {uni_layer} (root: R={smallest:g} "
       f"feature {root}); rows: dictionary sizes")
ax.axis("off")
savefig(fig, "06_feature_family", PROFILE)
plt.show()

# %% [markdown]
# **Reading.** Families barely exist at this budget: at decoder cosine ≥ 0.5, fewer than one small feature in ten
# has any child in the next size, and almost none has two; the few children that exist are near copies of their
# parent (masked cosine about 0.9 or more) rather than finer parts of it. With decoders this close to their random
# initialisation, a larger dictionary has not yet had the steps to carve a feature into sub-features, so this does
# not speak against splitting in converged dictionaries; it says the default budget cannot show it.

# %% [markdown]
# ## 5. Verdict
#
# For each claim the table also states its rule, its precondition, a negative and a positive control, and the unit
# its intervals resample; a "none" there marks a test that cannot fail, or cannot decide, as designed. The rules are
# coded in `saelib.experiments.monosemanticity.monosemanticity_verdicts`.

# %%
# NBVAL_IGNORE_OUTPUT
verdict_inputs = MonosemanticityResults(
    mlp_lambda=max(mlp_saes), by_corr=by_corr, by_auc=by_auc, prompts=PROMPTS, hits=hits, prompt_of=prompt_of,
    gibberish_as=gibberish_as, universality=universality, splitting=splitting, smallest=smallest)
verdicts = monosemanticity_verdicts(verdict_inputs, sizes, seed=profile.seed)
show_verdicts(verdicts)

# %%
# stable output: the lines under each verdict are its rule, precondition, controls and unit as written in the
# code (thresholds, not measurements)
print_verdicts(verdicts)
