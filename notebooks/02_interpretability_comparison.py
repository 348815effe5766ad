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
# # 02 · Are SAE features more interpretable than other decompositions?
#
# **Question.** The headline of Cunningham et al. (2023, section 3, Fig. 2): features of a sparse autoencoder trained
# on the residual stream are more interpretable than the directions PCA, ICA, the neuron (residual) basis or random
# directions give, measured layer by layer with **automated interpretability** (Bills et al. 2023), with random
# directions the least interpretable. This notebook tests that claim on SmolLM2-135M-Instruct, at the five layers
# of the release dictionaries (notebook 07), against the paper's baselines, against top-k PCA and ICA at the SAE's sparsity, and
# against ICA read by its heavier tail.
#
# **Method.** The protocol is that of the paper's code. Text is cut into 64-token fragments of held-out documents
# (section 1); at each layer the SAE and the baselines share one interface (section 2). For each feature:
# the 20 fragments with the highest maximum activation ("top") and 20 drawn at random among the fragments where the
# feature fires ("random"). An *explainer* sees 5 top fragments (top[0::4]) with activations on a 0–10 scale and
# writes an explanation; a *simulator* sees only that explanation and predicts the activation of every token of 5
# other top fragments (top[2::4]) and 5 random ones (random[1::3]). The score is the Pearson correlation between
# simulated and true activations over all 10 fragments (**top-and-random**, the paper's headline), the top 5 only
# (**top**) and the random 5 only (**random**). 150 features per dictionary per layer; error bars are 95% intervals,
# mean ± 1.96·SE, as the paper drew them. Section 3 scores every method at every layer, checks the ranking with an
# explanation-free measure (3b) and the evaluator on features whose answer is known (3c); section 4 compares the SAE
# with the baselines, section 5 shows features, section 6 runs an LLM explainer and simulator, and section 7 gives
# the verdict.
#
# **Explainer and simulator: what replaces GPT-4.** The paper's explainer (GPT-4) and simulator (text-davinci-003)
# are retired, and this machine is offline. The default here is deterministic and offline
# (`saelib.interp.explanations`): the explainer lists the tokens — or the tokens just before — whose 0–10 activation level
# is highest on average in its 5 fragments (e.g. `Fires on the tokens " Mary" (10), " John" (8).`), choosing
# whichever of the two lists predicts its own fragments better; the simulator parses that sentence back and predicts
# each token's level by lookup. **What it captures:** how well a feature is explained *by the identity of one token*
# — the most common kind of interpretable feature in the paper's examples (apostrophes, specific words). **What it
# misses:** anything a language model would put into words beyond token identity — topics, syntax, "the second
# name in a list", a feature that fires on many different tokens with a shared meaning — and any generalisation to
# tokens absent from its five examples. Absolute scores are therefore not comparable with the paper's; the
# comparison *between methods* under one fixed evaluator is what this notebook measures. An LLM explainer and
# simulator with the paper's prompt structure (`saelib.interp.llm_explainer`: the bundled model locally, or any
# OpenAI-compatible endpoint) plug into the same scorer; section 6 runs the local one on the best SAE feature.

# %% tags=["parameters"]
PROFILE: str = "default"  # dev | default | paper (see saelib/core/profiles.py)
DICTIONARIES: str = "release"  # "release" (the chosen shipped dictionary per layer) or "profile" (notebook 01)
ICA: str = "shipped"  # "shipped" (FastICA fitted on more rows, dictionaries/baselines) or "fit" (fit_rows, here)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from saelib import dictionaries
from saelib.activations.harvest import harvest, harvest_profile
from saelib.core.check import check, check_between, regression
from saelib.core.plots import savefig
from saelib.experiments.interpretability import Fig2Results, fig2_verdicts
from saelib.experiments.notebook_setup import setup
from saelib.core.stats import mean_se
from saelib.core.verdicts import print_verdicts, show_verdicts
from saelib.baselines.shipped import load_shipped_ica, shipped_ica_info
from saelib.interp.autointerp import SCORE_COLUMNS, score_dictionary, summarize
from saelib.interp.comparison import METHODS, features_to_score, layer_dictionaries
from saelib.interp.concentration import top_token_concentration
from saelib.interp.explanations import TokenExplainer, TokenSimulator
from saelib.interp.features import (
    FeatureView,
    dictionary_size,
    feature_activations,
    feature_views,
    ordinary_rows,
    top_contexts,
)
from saelib.interp.fragments import Fragments
from saelib.model import layer_of, mlp_post, resid_post
from saelib.text.corpus import pack_contexts

nb = setup(PROFILE, display_width=160)
profile, model, corpus, tok = nb.profile, nb.model, nb.corpus, nb.tokenizer
sizes = profile.interp
pd.set_option("display.max_colwidth", 120)
hooks = [resid_post(layer) for layer in profile.sae.layers]
print(sizes)

# %% [markdown]
# ## 1. Fragments
#
# As in the paper, each fragment is a 64-token window run through the model on its own: here 2,048 windows (the
# paper: 50,000, one per OpenWebText document) drawn at random, without overlap, from the held-out text of the corpus
# mixture, which neither the SAEs nor the baselines saw. Explanation and scoring fragments therefore never share a
# window, and "top" examples are the top of the whole pool. (The corpus's documents include whole books, so two
# windows can come from one long document, far apart.) Position 0 and the `<|endoftext|>` separator carry huge
# activations (notebook 00) and are set to 0 for every method.

# %%
frag_contexts = pack_contexts(corpus, "heldout", 64, sizes.fragments, seed=profile.seed + 2)
frag_store = harvest(model, hooks, frag_contexts, corpus_name=corpus.dir.name, split="heldout",
                     seed=profile.seed + 2, batch_size=4 * profile.harvest_batch_size, name="fragments",
                     separator_id=corpus.separator)
fragments = Fragments(frag_store, model.tokenizer, length=64)
train_store = harvest_profile(model, hooks + [mlp_post(profile.sae.mlp_layer)], profile)
windows = {(int(s), int(o)) for s, o in zip(frag_contexts.source, frag_contexts.offset)}
print(f"{fragments.n} fragments of {fragments.length} tokens, {len(windows)} distinct windows of the held-out text "
      f"(the paper: 50,000 fragments); windows reused because a source is short: "
      f"{ {s: round(r, 3) for s, r in frag_contexts.repeats.items() if r > 1} or 'none'}")
check("fragments", fragments.n, sizes.fragments)

# %% [markdown]
# ## 2. The decompositions
#
# At each layer: the SAE (with `DICTIONARIES = "release"`, the release's chosen tied R = 2 dictionary, trained on
# 2.1M activations; with `"profile"`, the one chosen in notebook 01), and with the same interface (activations in,
# non-negative feature activations out):
#
# - **PCA** (scikit-learn), each component in both signs, ReLU: 2·576 features;
# - **ICA** (FastICA's objective on standardised activations, as the paper's code) in two orientations: **paper** —
#   each component as fitted, only its positive tail counted (the released evaluation); **heavy tail** — each
#   component flipped so its heavier tail is positive (the "fixed ICA" of a 2026 re-evaluation, which found it
#   changes the later-layer conclusion);
# - **top-k PCA / top-k ICA**: both signs, keeping each token's k largest activations with k = the SAE's mean L0
#   (the paper's matched-sparsity baselines);
# - **neuron basis**: the residual stream's coordinates, both signs;
# - **random**: 2·576 random unit directions, ReLU; **random top-k** the same at the SAE's mean L0 (the
#   negative control of the matched-sparsity comparison).
#
# PCA is fitted on 4,096 training-split activations (notebook 01's store: the same split and mixture as the release
# SAEs' 2.1M rows). ICA needs far more rows and iterations than fit here in the time budget, so with `ICA =
# "shipped"` its fit comes from `dictionaries/baselines/` (`scripts/release_baselines.py`: 32,768 rows per layer,
# sha256-checked). Those fits solve FastICA's problem with Picard-O (Ablin et al. 2018), a quasi-Newton solver of
# the same objective, because scikit-learn's fixed-point iteration had settled only 2-12% of the components at
# layers 8, 14 and 26 after 500 iterations; they stop on scikit-learn's own rule, so "converged" below means a FastICA fixed
# point to tolerance 1e-4. `ICA = "fit"` fits scikit-learn's FastICA here on `fit_rows` instead. 150 features per
# dictionary are drawn at random (the paper scored the first 150 indices, which for PCA would mean only its largest
# components).

# %%
# stable output: the ICA convergence figures are read from the shipped fits (ICA = "shipped")
layer_dicts = {}
for hook in hooks:
    if DICTIONARIES == "release":
        name = dictionaries.release_manifest()["chosen"][hook]
        sae = dictionaries.load_release(name, model_name=frag_store.config["model"], hook=hook)
        info = {"directory": name, "alpha": sae.cfg.alphas[0]}
    elif DICTIONARIES == "profile":
        sae = dictionaries.load_chosen(PROFILE, hook, model_name=frag_store.config["model"])
        info = dictionaries.chosen(PROFILE)[hook]
    else:
        raise ValueError(f"DICTIONARIES must be 'release' or 'profile', got {DICTIONARIES!r}")
    held_out_rows = torch.from_numpy(np.asarray(frag_store.activations(hook)[ordinary_rows(frag_store)][:4096],
                                                np.float32))
    if ICA not in ("shipped", "fit"):
        raise ValueError(f"ICA must be 'shipped' or 'fit', got {ICA!r}")
    shipped_ica = (load_shipped_ica(hook, model_sha256=frag_store.config["model_sha256"], width=sae.cfg.d_in)
                   if ICA == "shipped" else None)
    layer_dicts[hook] = layer_dictionaries(train_store, hook, sae, {"sae": info["directory"], "alpha": info["alpha"]},
                                           held_out_rows, sizes.fit_rows, profile.seed, sizes.ica_max_iter,
                                           shipped_ica=shipped_ica)
rows = []
for hook, dicts in layer_dicts.items():
    for method, (dictionary, key) in dicts.items():
        rows.append({"layer": layer_of(hook), "method": method, "features": dictionary_size(dictionary),
                     "top-k": key.get("k")})
dict_table = pd.DataFrame(rows)
ica_keys = {layer_of(h): d["ICA (paper)"][1] for h, d in layer_dicts.items()}
shipped_info = {e.hook: e for e in shipped_ica_info()} if ICA == "shipped" else {}
print("ICA: FastICA's objective (logcosh), stopped by sklearn's rule: one more FastICA step moves every component's "
      "direction by less than tol = 1e-4; the paper ran sklearn's defaults, at most 200 iterations, on ~2M rows")
for layer, group in dict_table.groupby("layer"):
    k, key = group.set_index("method").loc["PCA top-k", "top-k"], ica_keys[layer]
    conv = shipped_info.get(resid_post(layer))
    detail = (f" (largest change {conv.final_change:.1e}, median {conv.median_change:.1e}; {conv.stable_share:.0%} "
              "of components settled)" if conv else "")
    print(f"layer {layer:2d}: top-k keeps k = {int(k)} features per token (the SAE's mean L0); ICA fitted on "
          f"{key['rows']:,} rows by {key['solver']}, {key['n_iter']} of at most {key['max_iter']} iterations, "
          f"{'converged' if key['converged'] else 'not converged'}{detail}")
dict_table.pivot(index="method", columns="layer", values="features").loc[list(METHODS)]

# %% [markdown]
# ## 3. Scores
#
# Every method at every layer, 150 features each, with the offline explainer and simulator. Scores are cached per
# (dictionary, layer, features, explainer, simulator, protocol) under `artifacts/autointerp/`.

# %%
explainer, simulator = TokenExplainer(), TokenSimulator()
per_feature, concentrations = [], {}  # the token concentration of section 3b is read off the same activations
for hook, dicts in layer_dicts.items():
    for method, (dictionary, key) in dicts.items():
        feats = features_to_score(dictionary_size(dictionary), sizes.features, seed=profile.seed)
        acts = fragments.activations(hook, dictionary, feats)  # [features, fragments, 64]
        df = score_dictionary(fragments, hook, dictionary, feats, explainer, simulator, key, activations=acts)
        per_feature.append(df.assign(layer=layer_of(hook), method=method))
        concentrations[hook, method] = top_token_concentration(acts, fragments.tokens)
scores = pd.concat(per_feature, ignore_index=True)
summary = pd.DataFrame([{"layer": layer, "method": method, **summarize(group)}
                        for (layer, method), group in scores.groupby(["layer", "method"], sort=False)])
check("features scored per dictionary", summary["n"].min(), sizes.features)
check("no NaN scores", int(scores[list(SCORE_COLUMNS)].isna().sum().sum()), 0)

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), sharey=True)
styles = {"SAE": ("C3", "o", 2.5), "ICA (paper)": ("C0", "s", 1.2), "ICA (heavy tail)": ("C0", "D", 1.2),
          "ICA top-k": ("C0", "v", 1.0), "PCA": ("C2", "^", 1.2), "PCA top-k": ("C2", "v", 1.0),
          "neuron basis": ("C1", "P", 1.2), "random": ("0.5", "x", 1.2), "random top-k": ("0.5", "v", 1.0)}
layers = list(profile.sae.layers)
for ax, col in zip(axes, SCORE_COLUMNS):
    for j, method in enumerate(METHODS):
        s = summary[summary["method"] == method].set_index("layer").loc[layers]
        color, marker, lw = styles[method]
        offset = (j - len(METHODS) / 2) * 0.12
        ax.errorbar(np.array(layers) + offset, s[col], yerr=[s[col] - s[f"{col}_lo"], s[f"{col}_hi"] - s[col]],
                    color=color, marker=marker, lw=lw, capsize=2, label=method,
                    ls="--" if "top-k" in method or "heavy" in method else "-")
    ax.set_title({"top_and_random": "top-and-random", "top": "top only", "random": "random only"}[col])
    ax.set_xlabel("residual layer (blocks.N.hook_resid_post)")
    ax.axhline(0, color="k", lw=0.5)
axes[0].set_ylabel("mean autointerp score (Pearson), 95% CI")
axes[-1].legend(fontsize=8, loc="upper right")
fig.suptitle(f"Fig. 2 analogue: {sizes.features} features per dictionary, offline token explainer/simulator")
fig.tight_layout()
savefig(fig, "02_autointerp_by_layer", PROFILE)
plt.show()

# %% [markdown]
# The table holds all three scores per method and layer (mean and 95% interval), and how many of the 150 features
# never fired on the fragments (scored 0: they explain nothing).

# %%
# NBVAL_IGNORE_OUTPUT
def fmt(row, col):
    return f"{row[col]:.3f} [{row[col + '_lo']:.3f}, {row[col + '_hi']:.3f}]"


table = summary.assign(**{col: summary.apply(fmt, axis=1, col=col) for col in SCORE_COLUMNS})
table = table[["layer", "method", *SCORE_COLUMNS, "never_fires"]]
table["method"] = pd.Categorical(table["method"], METHODS)
table.sort_values(["layer", "method"]).set_index(["layer", "method"])

# %% [markdown]
# ### 3b. An explanation-free check of the ranking
#
# The offline evaluator rewards features that a few token identities predict. A measure with no explainer at all:
# for each scored feature, the share of its 20 strongest activations (over every fragment position) that fall on
# its single most common token (`saelib.interp.concentration`; 1 = a pure token detector). Features with fewer than
# 20 positive activations are left out and counted. If both measures rank the methods alike, the ranking does not
# rest on one hand-built evaluator; where they differ, the evaluator is measuring something narrower.

# %%
# NBVAL_IGNORE_OUTPUT
conc_rows = []
for (hook, method), c in concentrations.items():
    est = mean_se(c[~np.isnan(c)]) if (~np.isnan(c)).sum() > 1 else None
    conc_rows.append({"layer": layer_of(hook), "method": method,
                      "concentration": est.mean if est else np.nan, "lo": est.lo if est else np.nan,
                      "hi": est.hi if est else np.nan, "too rare": int(np.isnan(c).sum())})
concentration = pd.DataFrame(conc_rows)
rank_auto = summary.pivot(index="layer", columns="method", values="top_and_random").rank(axis=1, ascending=False)
rank_conc = concentration.pivot(index="layer", columns="method", values="concentration").rank(axis=1,
                                                                                            ascending=False)
agree = {layer: float(rank_auto.loc[layer].corr(rank_conc.loc[layer], method="spearman")) for layer in rank_auto.index}
print("Spearman correlation of the method rankings (autointerp vs concentration), per layer:",
      {k: round(v, 2) for k, v in agree.items()})

# %%
# NBVAL_IGNORE_OUTPUT
# (measured table)
conc_table = concentration.assign(value=concentration.apply(
    lambda r: f"{r.concentration:.3f} [{r.lo:.3f}, {r.hi:.3f}] ({r['too rare']} rare)", axis=1))
conc_table.pivot(index="method", columns="layer", values="value").loc[list(METHODS)]

# %% [markdown]
# ### 3c. The evaluator on features whose answer is known
#
# Before its ranking of methods is trusted, the evaluator scores synthetic features on the same fragments, by the
# same protocol (`saelib.interp.calibration`), at the middle layer: **token detectors** (1 wherever one token occurs;
# the best a token-identity explanation can do), a **position** ramp (nothing about tokens explains it), **random
# directions** of the residual stream through a ReLU (the paper's lowest baseline), and independent **noise**.
# What must come out: token detectors near 1, position and noise near 0. Where random directions land says how much
# a token-level evaluator rewards a direction just for inheriting the token identity the residual stream carries.

# %%
# NBVAL_IGNORE_OUTPUT
from saelib.interp.calibration import calibrate, calibration_summary  # noqa: E402

calibration_hook = hooks[len(hooks) // 2]
calibration = calibrate(fragments, calibration_hook, explainer, simulator, n_per_kind=20, seed=profile.seed)
known = calibration_summary(calibration)
print(f"known-kind features at {calibration_hook}, top-and-random score, mean [95% CI] over 20 each:")
for kind, row in known.iterrows():
    print(f"  {kind:17s} {row['mean']:.3f} [{row.ci95_low:.3f}, {row.ci95_high:.3f}]")
layer_mid = layer_of(calibration_hook)
print(f"for scale, at layer {layer_mid}: SAE {summary.set_index(['layer', 'method']).loc[(layer_mid, 'SAE'), 'top_and_random']:.3f}, "
      f"random (the method) {summary.set_index(['layer', 'method']).loc[(layer_mid, 'random'), 'top_and_random']:.3f}")

# %%
# Directional: a token detector is exactly what the offline explanation format describes, so it must beat the
# floors; position and noise carry no token information, so their means must sit near 0.
check_between("calibration: token detector mean", float(known.loc["token detector", "mean"]), 0.9, 1.0)
check_between("calibration: noise mean", float(known.loc["noise", "mean"]), -0.1, 0.1)
check_between("calibration: position mean", float(known.loc["position", "mean"]), -0.15, 0.15)
check_between("calibration: token detector low minus noise high",
              float(known.loc["token detector", "ci95_low"] - known.loc["noise", "ci95_high"]), 0.5, 1.1)

# %% [markdown]
# ## 4. The comparison, computed from the numbers above

# %%
# NBVAL_IGNORE_OUTPUT
wide = summary.pivot(index="layer", columns="method", values="top_and_random")
lo = summary.pivot(index="layer", columns="method", values="top_and_random_lo")
hi = summary.pivot(index="layer", columns="method", values="top_and_random_hi")
baselines = [m for m in METHODS if m != "SAE"]
for layer in layers:
    best_base = wide.loc[layer, baselines].idxmax()
    gap = wide.loc[layer, "SAE"] - wide.loc[layer, best_base]
    separated = lo.loc[layer, "SAE"] > hi.loc[layer, best_base]
    overlaps = hi.loc[layer, "SAE"] >= lo.loc[layer, best_base]
    verdict = ("SAE ahead, intervals separate" if separated else
               "SAE ahead, intervals overlap" if gap > 0 else
               "SAE behind, intervals overlap" if overlaps else "SAE behind, intervals separate")
    print(f"layer {layer:2d}: SAE {wide.loc[layer, 'SAE']:.3f} vs best baseline {best_base} "
          f"{wide.loc[layer, best_base]:.3f} (gap {gap:+.3f}): {verdict}")
paper_set = ["PCA", "ICA (paper)", "neuron basis", "random"]  # what the paper's Fig. 2 plotted
for name, group in (("the paper's Fig. 2 baselines (PCA, ICA as released, neuron basis, random)", paper_set),
                    ("every baseline here", baselines)):
    ahead = [layer for layer in layers if lo.loc[layer, "SAE"] > hi.loc[layer, group].max()]
    print(f"\nSAE ahead of {name} with separated 95% intervals at {len(ahead)} of {len(layers)} layers: {ahead}")
ica_fix = (wide["ICA (heavy tail)"] - wide["ICA (paper)"]).round(3)
print("heavy-tail minus paper ICA orientation, per layer:", ica_fix.to_dict())

# %%
# Regression values from the committed run (the tables above are not compared digit for digit: a last digit moves
# between CPUs). On the one other CPU seen (a CI instance), the compared values that moved changed by one unit in
# their last printed digit (0.001 in notebook 05, 0.01 in 06); 0.01 here is ten times the former.
regression("SAE top-and-random score, mean over layers", float(wide["SAE"].mean()), 0.504, profile=PROFILE, atol=0.01)
regression("heavy-tail ICA top-and-random score, mean over layers", float(wide["ICA (heavy tail)"].mean()), 0.502,
           profile=PROFILE, atol=0.01)
regression("ICA as released (the paper's orientation), mean over layers", float(wide["ICA (paper)"].mean()), 0.350,
           profile=PROFILE, atol=0.01)

# %% [markdown]
# How to read this. Under this lexical evaluator a feature scores well when a handful of token identities predict
# where it fires, so the comparison is between methods under one fixed, simple evaluator. The lines above first
# test the paper's claim against the baselines its Fig. 2 plotted, then against every baseline including the
# heavy-tail ICA orientation and the top-k variants. Where the SAE is not ahead, the table gives the evidence on all
# three scores (top-only rewards a feature whose strongest examples share tokens; random-only rewards one whose
# ordinary activations are also predictable), and the views below show what the explanations look like. The
# heavy-tail line tests the 2026 re-evaluation's point on this model: a positive number means orienting ICA
# components by their heavier tail makes them more interpretable. Caveats specific to this run: the release SAEs saw
# 2.1M activations each (the paper's Fig. 2 about 21M; with `DICTIONARIES = "profile"` they are notebook 01's, about
# 500 steps), and there are far fewer fragments than the paper's 50,000, so the "top 20" of a rare feature is less
# extreme than in the paper.

# %% [markdown]
# ## 5. What the features look like
#
# At one middle layer, for each method: its best-scoring feature and one at the method's median score, with the
# offline explanation and the top activating contexts among the fragments (tokens coloured by activation;
# circuitsvis, rendered from the notebook itself with no network).

# %%
# NBVAL_IGNORE_OUTPUT
view_layer = layers[len(layers) // 2]
view_hook = resid_post(view_layer)
views = []
for method in METHODS:
    s = scores[(scores["layer"] == view_layer) & (scores["method"] == method)].sort_values("top_and_random")
    dictionary, _ = layer_dicts[view_hook][method]
    for label, row in (("best", s.iloc[-1]), ("median", s.iloc[len(s) // 2])):
        acts = feature_activations(frag_store, view_hook, dictionary, [int(row["feature"])])[:, 0]
        views.append(FeatureView(f"{method} · feature {int(row['feature'])} ({label}: top-and-random "
                                 f"{row['top_and_random']:.2f})", top_contexts(frag_store, acts, model.tokenizer, k=4),
                                 row["explanation"] or row["status"]))
print("\n".join(f"{v.title}\n    {v.note}" for v in views))
feature_views(views)

# %% [markdown]
# ## 6. An LLM explainer and simulator (local backend)
#
# The same scorer with the paper's prompts (`saelib.interp.llm_explainer`): the explainer completes "the main thing this
# neuron does is find", and the "all at once" simulator reads the expected 0–9 level from the model's next-token
# distribution at each `unknown` slot. Here the backend is the bundled SmolLM2-135M-Instruct — a 135M-parameter
# model, far below GPT-4, so this shows that the path runs, not what a strong explainer would score. With an
# endpoint, `OpenAICompatibleBackend(base_url, model)` and `LLMSimulator` plug in the same way.

# %%
# NBVAL_IGNORE_OUTPUT
if sizes.llm_demo_features:
    from saelib.interp.autointerp import score_feature
    from saelib.interp.llm_explainer import LLMExplainer, LocalChatBackend, LogprobSimulator

    backend = LocalChatBackend(device=profile.device)
    llm_explainer, llm_simulator = LLMExplainer(backend), LogprobSimulator(backend)
    sae, _ = layer_dicts[view_hook]["SAE"]
    demo = scores[(scores["layer"] == view_layer) & (scores["method"] == "SAE")].nlargest(sizes.llm_demo_features,
                                                                                            "top_and_random")
    acts = fragments.activations(view_hook, sae, demo["feature"].astype(int).tolist())
    llm_rows = []
    for i, (_, row) in enumerate(demo.iterrows()):
        llm = score_feature(int(row["feature"]), acts[i], fragments, llm_explainer, llm_simulator)
        llm_rows.append({"feature": llm.feature, "LLM explanation": llm.explanation,
                         "LLM top-and-random": round(llm.top_and_random, 3),
                         "offline top-and-random": round(row["top_and_random"], 3)})
    display(pd.DataFrame(llm_rows))

# %% [markdown]
# ## 7. Verdict
#
# The paper's Fig. 2 claim, tested per layer against the baselines its figure plotted (PCA, ICA as released, the
# neuron basis, random), with the top-and-random score's 95% interval over the scored features: supported at a
# layer when the SAE's interval lies above every one of those baselines' intervals. Beside it, the order the paper
# shows at the bottom (random directions least interpretable) and the explanation-free check. A second row holds the
# SAE to the baselines at its own sparsity (top-k PCA and ICA at the SAE's mean L0, with random directions at the
# same k as the negative control), a third to the strongest baseline here, the converged ICA with each component
# read by its heavier tail.
# For each claim the table also states its rule, its precondition, a negative and a positive control, and the unit
# its intervals resample; a "none" there marks a test that cannot fail, or cannot decide, as designed.
# The rules are coded in `saelib.experiments.interpretability.fig2_verdicts`.

# %%
# NBVAL_IGNORE_OUTPUT
# (measured; the verdict lines below are checked)
verdicts = fig2_verdicts(Fig2Results(layers=layers, summary=summary, concentration=concentration, agree=agree,
                                     ica_keys=ica_keys, paper_set=paper_set))
show_verdicts(verdicts)

# %%
# stable output: the lines under each verdict are its rule, precondition, controls and unit as written in the
# code (thresholds, not measurements)
print_verdicts(verdicts)
