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
# # 03 · IOI feature patching: which features carry the counterfactual
#
# **Question.** The ICLR version of Cunningham et al. (2023, §4, Fig. 3) asks how *finely* a decomposition
# localises a behaviour: which of its features carry the counterfactual in indirect object identification (IOI,
# Wang et al. 2022), so that patching them from a counterfactual run into the clean run moves the output to the
# counterfactual's. On Pythia-410M with tied R = 4 dictionaries, the paper finds that SAE features do this with
# fewer features than PCA and than the non-sparse α = 0 dictionary. This notebook tests both claims: SAE features
# against PCA, ICA and the neuron basis, and a sparse SAE against the α = 0 one.
#
# **Method.** The task: "When Mary and John went to the store, John gave a drink to" → " Mary". The
# **counterfactual** prompt replaces the indirect object (IO) by a third name C, subject unchanged, so the model
# should now say C. Starting from the clean run, we take the activations of some features at one residual layer
# (all positions) from the counterfactual run and ask how far the output moves (the measures below). §1 builds the
# prompts and measures the model's IOI baseline; §2 chooses the layers by patching the residual at some positions
# only; §3 builds the decompositions and checks that patching reconstructs the counterfactual exactly; §4 ranks
# every method's features by attribution on one half of the templates and draws the Figure 3 analogue (KL against
# the number of features patched and against the edit size) on the other half; §5 compares that ranking with the
# paper's greedy procedure on a small case; §6 reads the SAE features with the largest estimated effect; §7 decides
# the two claims by the area under the KL curve, against a random-ranking control. The measures:
#
# - **KL** $=\mathrm{KL}(p_{cf}\,\Vert\,p_{patched})$ of the next-token distribution at the final position, mean
#   over prompts (0 = the patched run *is* the counterfactual run);
# - **edit size** $=\lVert x_{patched}-x_{clean}\rVert_2$ over all positions and dimensions of a prompt, mean over
#   prompts;
# - **number of features** patched.
#
# A decomposition localises the behaviour well if few features, with a small edit, reach a low KL. Here:
# SmolLM2-135M-Instruct, the release's tied R = 4 dictionaries at the paper's α grid (notebook 07), and these
# baselines:
#
# | decomposition | features | codes |
# |---|---|---|
# | SAE (α = 2.5e-4, 4.6e-4, 8.6e-4: the paper's grid up to 1e-3) | 4 × 576 | ReLU, tied decoder |
# | SAE α = 0 (non-sparse control, same data and recipe) | 4 × 576 | ReLU, tied |
# | PCA rotation | 576 | signed coordinates in the principal basis |
# | PCA ± | 2 × 576 | ReLU(±coordinate), as the paper's `pca_pve` |
# | ICA | 576 | signed sources (FastICA unmixing) |
# | neuron / residual basis | 576 | signed coordinates |
#
# **Exact reconstruction.** Every decoder here is affine, and a patched activation keeps the clean run's error term
# (the paper's `recompose = (x − predict(x)) + decode(codes)`):
# $x_{patched} = x_{clean} + (m\odot\Delta c)\,W_{dec} + e\,\Delta err$ with $\Delta c = c_{cf}-c_{clean}$ and
# $m\in\{0,1\}^F$. The *error node* $e$ is 0 in every curve (the paper's recipe); setting it to 1 with all features
# patched gives exactly the counterfactual activation, which §3 checks for every method. For the rotations the
# error is round-off; for an SAE it is what the dictionary fails to reconstruct, and it bounds how low an SAE's
# curve can go.
#
# **Finding few features.** (a) The paper's procedure: patch every candidate, then for rising thresholds visit the
# patched features in random order and un-patch one if KL rises by less than the threshold; one forward pass per
# visit, so it runs on a small case (§5). (b) The fast default: rank features by an attribution estimate, the
# gradient of KL(cf ‖ patched) with respect to each feature's activation at the clean point times its activation
# difference, summed over prompts and positions (one backward pass per layer for all methods), and evaluate KL for
# the top-k at log-spaced k. Forward passes start at the patched layer (clean and counterfactual residuals are
# computed once; `saelib.experiments.patching.final_logits_from` runs only the later blocks), and prompts are batched.

# %% tags=["parameters"]
PROFILE: str = "default"  # dev | default | paper (see saelib/core/profiles.py)
DICTIONARIES: str = "release"  # "release" (the shipped ratio-4 IOI sweeps, dictionaries/) or "profile" (notebook 01)
ICA: str = "shipped"  # "shipped" (FastICA on more rows, dictionaries/baselines; as notebook 02) or "fit" (fit_rows)
GREEDY: str = "shipped"  # §5: "shipped" (searched by scripts/release_greedy.py, replayed here) or "run" (search live)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from saelib.activations.harvest import harvest_profile, heldout_profile
from saelib.baselines.decompositions import fitted_baselines, sae_decomposition
from saelib.baselines.shipped import load_shipped_ica
from saelib.core.check import RECORDED_ON, check, check_between, regression
from saelib.core.plots import savefig
from saelib.experiments.notebook_setup import setup
from saelib.core.stats import cluster_bootstrap, mean_se, proportion
from saelib.core.verdicts import print_verdicts, show_verdicts
from saelib import dictionaries
from saelib.dictionaries.train import TrainConfig, train_saes
from saelib.experiments import patching as P
from saelib.experiments.greedy import greedy_key, load_greedy, replay_greedy
from saelib.interp.features import FeatureView, feature_activations, feature_views, top_contexts
from saelib.model import mlp_post, model_name, resid_post
from saelib.model.loader import model_weights_sha256
from saelib.model.behaviour import logit_difference
from saelib.text.tasks import ioi_token_ids, make_ioi_prompts

nb = setup(PROFILE, display_width=140)
profile, model, corpus, tok = nb.profile, nb.model, nb.corpus, nb.tokenizer
sizes, sweep = profile.ioi_patching, profile.sae
print(sizes)

# %% [markdown]
# ## 1. Data and the model's IOI baseline
#
# Prompts come from `saelib.text.tasks.make_ioi_prompts`: fifteen Wang et al. templates in ABBA and BABA order (exactly
# balanced), names drawn deterministically from the most frequent census names that are one token under the
# model's tokenizer (not hand-picked), and the counterfactual replaces IO by a third name C. A multi-token name, or
# a clean/counterfactual pair of different token lengths, is rejected (tested). Templates differ in length, so a
# batch is right-padded and every measurement is read at each prompt's last real token.

# %%
# NBVAL_IGNORE_OUTPUT
# (measured table; the checks below carry the tolerances)
prompts = make_ioi_prompts(tok, profile.ioi_prompts, seed=profile.seed)
pairs_all = P.ioi_pairs(tok, prompts)
io_ids, s_ids, cf_ids = ioi_token_ids(tok, prompts)
layers_all = list(sweep.layers)
# notebook 01's stores (the same hook list, so harvest_profile returns them from the cache)
store_hooks = [resid_post(layer) for layer in layers_all] + [mlp_post(sweep.mlp_layer)]
resid_clean_all, logits_clean_all = P.residuals(model, pairs_all.clean, pairs_all.lengths, layers_all)
ld = logit_difference(logits_clean_all, io_ids, s_ids).numpy()
p_io = torch.softmax(logits_clean_all, -1).gather(1, io_ids[:, None])[:, 0].numpy()
print("example:", prompts[0].text, "->", prompts[0].io, "| counterfactual:", prompts[0].counterfactual_text, "->",
      prompts[0].cf_name)
pd.DataFrame({"prompts": [len(prompts)], "logit diff IO − S": [str(mean_se(ld))],
              "accuracy (IO > S)": [str(proportion(ld > 0))], "p(IO)": [str(mean_se(p_io))]})

# %%
check_between("IOI mean logit difference IO - S", float(ld.mean()), 1.0, 10.0)
check_between("IOI accuracy (logit IO > logit S)", float((ld > 0).mean()), 0.8, 1.0)

# %% [markdown]
# The patching experiment uses the first `n_prompts` of these (the paper used 50). Their counterfactual run:

# %%
# NBVAL_IGNORE_OUTPUT
# (measured values; the check carries the tolerance)
n = sizes.n_prompts
pairs = pairs_all.subset(range(n))
resid_clean = {k: v[:n, : pairs.clean.shape[1]] for k, v in resid_clean_all.items()}
resid_cf, logits_cf = P.residuals(model, pairs.counterfactual, pairs.lengths, layers_all)
ld_cf = logit_difference(logits_cf, cf_ids[:n], s_ids[:n]).numpy()
kl_clean = P.kl_from(logits_cf, logits_clean_all[:n])
print(f"{n} prompts; counterfactual run: logit diff C − S {mean_se(ld_cf)}; "
      f"KL(cf ‖ clean) at the final position {mean_se(kl_clean.numpy())} nats")
check_between("counterfactual accuracy (logit C > logit S)", float((ld_cf > 0).mean()), 0.8, 1.0)

# %% [markdown]
# ## 2. Where the counterfactual information sits, layer by layer: choosing the layers
#
# Patching the *whole* residual stream at all positions reproduces the counterfactual run exactly at any layer, so
# it cannot rank layers. Patching it at a subset of positions can: at each SAE layer, patch the residual only at
# the final position, or only at every other position. Early on, the IO name lives at its own token (patching the
# final position does nothing); late, it has been moved to the final position. The rule: patch at the first SAE
# layer where patching the final position alone recovers more than half of KL(cf ‖ clean) (the information has
# arrived there), and at the SAE layer just before it (the information is still spread over the earlier tokens,
# about to be moved), the two regimes a decomposition could localise. If no layer qualifies, the deepest ones.

# %%
# NBVAL_IGNORE_OUTPUT
# (measured table and figure)
scan = P.position_scan(model, pairs, resid_clean, resid_cf, logits_cf)
scan["recovered_final_only"] = 1 - scan.kl_final_only / scan.kl_clean
scan["recovered_all_but_final"] = 1 - scan.kl_all_but_final / scan.kl_clean
arrived = [row.layer for row in scan.itertuples() if row.recovered_final_only > 0.5]
idx = layers_all.index(arrived[0]) if arrived else len(layers_all) - 1
patch_layers = [int(x) for x in layers_all[max(0, idx - sizes.n_layers + 1): idx + 1]]
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(scan.layer, scan.recovered_final_only, marker="o", label="final position only")
ax.plot(scan.layer, scan.recovered_all_but_final, marker="o", label="every position but the final")
for layer in patch_layers:
    ax.axvline(layer, color="grey", ls=":", lw=1)
ax.set_xlabel("layer (residual after block)")
ax.set_ylabel("fraction of KL(cf ‖ clean) removed")
ax.set_title("Patching the whole residual at some positions")
ax.legend(frameon=False, fontsize=8)
savefig(fig, "03_position_scan", PROFILE)
plt.show()
print("patched layers:", patch_layers)
scan.round(3)

# %%
check("patched layers chosen", len(patch_layers), min(sizes.n_layers, len(layers_all)))

# %% [markdown]
# ## 3. The decompositions, and exact reconstruction
#
# SAEs: with `DICTIONARIES = "release"` (the default) the shipped tied R = 4 sweep of the layer, as in the paper's
# IOI experiment: α = 2.5e-4, 4.6e-4 and 8.6e-4 and the α = 0 control, one ensemble trained on the same 2.1M
# activations with the same recipe (see notebook 07), so the control differs from the sparse SAEs only in α.
# With `"profile"` the R = 2 ensembles of notebook 01 at the profile's sparsities, and an α = 0 control trained here
# on the profile's activations. PCA is fitted on `fit_rows` training activations of the layer (position 0
# and the separator excluded, as for the SAEs); ICA is notebook 02's shipped FastICA fit (`ICA = "fit"`: fitted
# here on the same rows as PCA). A decomposition from another layer or model is rejected (tested).
#
# The check below patches nothing (must give KL(cf ‖ clean) exactly), and every feature together with the error
# node (must give KL = 0) for every method, and reports the *error floor*: KL with every feature patched but the
# clean error term kept, the lowest an error-keeping curve can reach. It also patches the *error node alone*
# (every feature clean): the share of the counterfactual that the dictionary does not represent at all.

# %%
# stable output: feature counts; the α values are the release's
train_store = harvest_profile(model, store_hooks, profile, split="train")
name = model_name(model)


def shipped_ica(hook):
    if ICA not in ("shipped", "fit"):
        raise ValueError(f"ICA must be 'shipped' or 'fit', got {ICA!r}")
    return (load_shipped_ica(hook, model_sha256=train_store.config["model_sha256"], width=model.cfg.d_model)
            if ICA == "shipped" else None)


decomps = {}
for layer in patch_layers:
    hook = resid_post(layer)
    base = dict(ratios=(sweep.ratio,), epochs=sweep.epochs, batch_size=sweep.batch_size, lr=sweep.lr,
                seed=profile.seed, device=profile.device)
    if DICTIONARIES == "release":
        saes = dictionaries.release_sweep(hook, ratio=4.0, model_name=name)  # alpha = 0 control included
    elif DICTIONARIES == "profile":
        sweep_result = train_saes(train_store, TrainConfig(hook, alphas=sweep.alphas, **base), progress=False)
        saes = {a: sweep_result.sae(sweep.ratio, a) for a in sizes.sae_alphas}
        saes[0.0] = train_saes(train_store, TrainConfig(hook, alphas=(0.0,), allow_zero_alpha=True, **base),
                               progress=False).sae(sweep.ratio, 0.0)
    else:
        raise ValueError(f"DICTIONARIES must be 'release' or 'profile', got {DICTIONARIES!r}")
    zero = saes.pop(0.0)
    decomps[layer] = {
        **{f"SAE α={a:.2g}": sae_decomposition(s, f"SAE α={a:.2g}") for a, s in saes.items()},
        "SAE α=0": sae_decomposition(zero, "SAE α=0"),
        **fitted_baselines(train_store, hook, name, sizes.fit_rows, profile.seed, sizes.ica_max_iter,
                           shipped_ica=shipped_ica(hook)),
    }
methods = list(decomps[patch_layers[0]])
sae_methods = [m for m in methods if m.startswith("SAE α=") and m != "SAE α=0"]  # sparse SAEs, α ascending
baseline_methods = [m for m in methods if not m.startswith("SAE")]
print({layer: {m: d.n_features for m, d in ds.items()} for layer, ds in decomps.items()})

# %%
cases, deltas, exact_rows = {}, {}, []
for layer in patch_layers:
    cases[layer] = P.prepare_case(model, pairs, layer, cache=(resid_clean, resid_cf))
    deltas[layer] = {m: P.feature_deltas(cases[layer], d) for m, d in decomps[layer].items()}
    for m, fd in deltas[layer].items():
        none = P.evaluate(cases[layer], fd, torch.zeros(fd.n_features))
        every = P.evaluate(cases[layer], fd, torch.ones(fd.n_features), error=1.0)
        floor = P.evaluate(cases[layer], fd, torch.ones(fd.n_features), error=0.0)
        err_only = P.evaluate(cases[layer], fd, torch.zeros(fd.n_features), error=1.0)
        exact_rows.append({"layer": layer, "method": m, "KL none patched": none["kl"],
                           "KL all + error node": every["kl"], "KL all, clean error (floor)": floor["kl"],
                           "floor / KL(cf‖clean)": floor["kl"] / none["kl"],
                           "KL error node alone": err_only["kl"],
                           "error node alone removes": 1 - err_only["kl"] / none["kl"],
                           "active features": int(fd.active.sum())})
exact = pd.DataFrame(exact_rows)

# %%
# NBVAL_IGNORE_OUTPUT
# (measured table; the checks below carry the tolerances)
exact.round(4)

# %%
for layer in patch_layers:
    check_between(f"layer {layer}: KL(cf || clean) from the patched layer / from the full forward",
                  float(exact[exact.layer == layer]["KL none patched"].max() / kl_clean.mean()), 0.9999, 1.0001)
check_between("every method: |KL| with all features and the error node patched (max)",
              float(exact["KL all + error node"].abs().max()), 0.0, 1e-3)
check_between("rotations: error floor (max over PCA/ICA/neurons)",
              float(exact[~exact.method.str.startswith("SAE")]["KL all, clean error (floor)"].abs().max()), 0.0, 1e-3)

# %% [markdown]
# ## 4. The Figure 3 analogue: KL against number of patched features and against edit size
#
# Procedure (b) at each chosen layer: rank every method's features by attribution, then patch the top k (error
# term kept clean). Out of sample: the prompts are split by *template* (`P.halves_by_template`: each of the
# Wang et al. templates, in both name orders, falls in one half only), features are ranked on the ranking half and
# every curve is measured on the evaluation half, and every method is evaluated on the same k grid (log-spaced up
# to the largest dictionary, cut at each method's own size; `P.shared_ks`). Error bars are ±1 SE over prompts.

# %%
rank_idx, eval_idx = P.halves_by_template([p.template_id for p in prompts[:n]], seed=profile.seed)
grid = P.log_spaced_ks(max(d.n_features for d in decomps[patch_layers[0]].values()), sizes.n_k)
kl0 = float(kl_clean[eval_idx].mean())  # KL(cf ‖ clean) on the evaluation half
grads, attrs, eval_cases, eval_deltas, curves = {}, {}, {}, {}, []
for layer in patch_layers:
    rank_case, eval_cases[layer] = cases[layer].subset(rank_idx), cases[layer].subset(eval_idx)
    grads[layer] = P.kl_gradient(rank_case)
    attrs[layer] = {m: P.attribution(P.feature_deltas(rank_case, d), grads[layer]) for m, d in decomps[layer].items()}
    eval_deltas[layer] = {m: P.feature_deltas(eval_cases[layer], d) for m, d in decomps[layer].items()}
    for m, fd in eval_deltas[layer].items():
        curves.append(P.topk_curve(eval_cases[layer], fd, attrs[layer][m], P.shared_ks(grid, fd.n_features))
                      .assign(layer=layer))
curves = pd.concat(curves, ignore_index=True)
eval_templates = np.array([prompts[i].template_id for i in eval_idx])
print(f"ranked on {len(rank_idx)} prompts, measured on {len(eval_idx)} prompts of {len(set(eval_templates))} other "
      f"templates; k grid {grid}")

# %%
colors = dict(zip(methods, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
fig, axes = plt.subplots(len(patch_layers), 2, figsize=(12, 4 * len(patch_layers)), squeeze=False)
for row, layer in zip(axes, patch_layers):
    for m in methods:
        c = curves[(curves.layer == layer) & (curves.method == m)]
        style = dict(marker="o", ms=3, color=colors[m], label=m, ls="-" if m.startswith("SAE") else "--")
        row[0].errorbar(c.k.clip(lower=0.5), c.kl, yerr=c.kl_se, capsize=2, **style)
        row[1].plot(c.edit, c.kl, **style)
    row[0].set_xscale("log")
    row[0].set_xlabel("features patched (top-k by attribution; k = 0 drawn at 0.5)")
    row[1].set_xlabel("edit size ‖x_patched − x_clean‖ (mean over prompts)")
    for ax in row:
        ax.axhline(kl0, color="grey", lw=0.8, ls=":")
        ax.set_ylabel("KL(cf ‖ patched), nats")
        ax.set_title(f"layer {layer}")
    row[1].legend(frameon=False, fontsize=8)
fig.suptitle("IOI counterfactual: how few features, how small an edit (dotted: nothing patched)")
fig.tight_layout()
savefig(fig, "03_kl_vs_features_and_edit", PROFILE)
plt.show()

# %% [markdown]
# A summary per method: the number of features and the edit needed to remove half of KL(cf ‖ clean), read off the
# curves above (∞: the curve never gets there, e.g. because the SAE's error floor is above it).

# %%
target = 0.5 * kl0
summary = []
for layer in patch_layers:
    for m in methods:
        c = curves[(curves.layer == layer) & (curves.method == m)]
        k_half, edit_half = P.k_to_reach(c, target)
        summary.append({"layer": layer, "method": m, "features for KL ≤ ½·KL0": k_half, "edit there": edit_half,
                        "KL with top 10": float(c[c.k <= 10].sort_values("k").kl.iloc[-1]),
                        "min KL on curve": float(c.kl.min())})
summary = pd.DataFrame(summary)

# %%
# NBVAL_IGNORE_OUTPUT
# (measured table)
summary.round(3)

# %%
for layer in patch_layers:
    c = curves[curves.layer == layer]
    check_between(f"layer {layer}: KL with k=0 equals KL(cf || clean) on the evaluation half (ratio)",
                  float(c[c.k == 0].kl.mean() / kl0), 0.999, 1.001)
    rot = c[c.method == "PCA rotation"].sort_values("k")
    check_between(f"layer {layer}: PCA rotation, |KL| with all features patched", abs(float(rot.kl.iloc[-1])), 0.0,
                  1e-3)

# %% [markdown]
# ## 5. Does the attribution ranking track the paper's greedy procedure? (small case)
#
# Procedure (a) on `greedy_prompts` prompts at the deepest chosen layer (the cheapest forward pass), for the sparsest SAE,
# over the features active on those prompts (the paper's candidates are all features; inactive ones cannot change
# anything, since their activation difference is 0). Thresholds rise log-spaced as in the paper (half-decades from
# 1e-3 here, where the paper used 50 steps from 1e-5; the low thresholds only remove features whose removal barely
# moves KL). A visit reruns only the prompts on which that feature's activation differs (the others' KL cannot
# change): the same decisions as rerunning every prompt (tested). On the same case,
# procedure (b) is evaluated at the numbers of features that (a) ended with, so the two can be compared point by
# point.
#
# The search costs one forward pass per visit, about 2,900 passes and 4 minutes on 2 CPU cores, the largest single
# cost of the default notebooks; like the ICA fits it is run once by a documented command
# (`scripts/release_greedy.py`) and shipped in `dictionaries/baselines/greedy-ioi.json` with the feature set kept at
# each threshold. With `GREEDY = "shipped"` this notebook refuses a file made for another case (model, layer,
# dictionary, prompts, thresholds, seed) and *replays* every shipped feature set on the live model, checking the KL
# the search recorded; `GREEDY = "run"` searches here (as it does on a profile other than the default, whose case the
# file holds).

# %%
# NBVAL_IGNORE_OUTPUT
g_layer = patch_layers[-1]
g_method = sae_methods[-1]  # the sparsest: fewest active features, so greedy elimination stays affordable
small = cases[g_layer].subset(range(sizes.greedy_prompts))
small_fd = P.feature_deltas(small, decomps[g_layer][g_method])
if GREEDY == "shipped" and PROFILE != RECORDED_ON:  # the shipped file is the default profile's case
    print(f"the shipped greedy search is the {RECORDED_ON} profile's case; searching live on {PROFILE!r}")
    GREEDY = "run"
if GREEDY == "shipped":
    g_key = greedy_key(small, small_fd, model_weights_sha256(model), sizes.greedy_thresholds, profile.seed)
    greedy = replay_greedy(small, small_fd, load_greedy(g_key))
    print(f"shipped greedy search replayed: {len(greedy)} feature sets, largest |KL live - KL shipped| "
          f"{(greedy.kl - greedy.kl_shipped).abs().max():.1e} nats")
    # the shipped search must describe this model and these prompts: live and shipped KL agree to far below the
    # KL differences the greedy steps make (3.5e-5 nats measured on this machine)
    check_between("greedy replay: largest |KL live - KL shipped| (nats)",
                  float((greedy.kl - greedy.kl_shipped).abs().max()), 0.0, 1e-3)
elif GREEDY == "run":
    greedy = P.greedy_elimination(small, small_fd, sizes.greedy_thresholds, seed=profile.seed)
else:
    raise ValueError(f"GREEDY must be 'shipped' or 'run', got {GREEDY!r}")
small_attr = P.attribution(small_fd, P.kl_gradient(small))
small_attr = torch.where(small_fd.active, small_attr, torch.full_like(small_attr, float("inf")))
ranked = P.topk_curve(small, small_fd, small_attr, sorted(set(greedy.n_features.tolist())))
compare = greedy[["threshold", "n_features", "kl", "edit"]].merge(
    ranked[["n_features", "kl", "edit"]], on="n_features", suffixes=(" (a) greedy", " (b) attribution"))
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for label, df in (("(a) greedy elimination", greedy), ("(b) top-k by attribution", ranked)):
    d = df.sort_values("n_features")
    axes[0].plot(d.n_features.clip(lower=0.5), d.kl, marker="o", label=label)
    axes[1].plot(d.edit, d.kl, marker="o", label=label)
axes[0].set_xscale("log")
axes[0].set_xlabel("features patched")
axes[1].set_xlabel("edit size")
for ax in axes:
    ax.set_ylabel("KL(cf ‖ patched)")
axes[0].set_title(f"{g_method}, layer {g_layer}, {sizes.greedy_prompts} prompts, "
                  f"{int(small_fd.active.sum())} active features")
axes[1].legend(frameon=False, fontsize=8)
savefig(fig, "03_greedy_vs_attribution", PROFILE)
plt.show()

# %%
# NBVAL_IGNORE_OUTPUT
# (measured table)
compare.round(4)

# %%
# NBVAL_IGNORE_OUTPUT
# (measured values; the check carries the tolerance)
kl_small = float(small.kl(small.x_clean).mean())
gap = (compare["kl (b) attribution"] - compare["kl (a) greedy"]) / kl_small
print(f"KL(cf ‖ clean) on the small case: {kl_small:.3f}; (b) − (a) at equal feature counts, as a fraction of it: "
      f"mean {gap.mean():+.3f}, max {gap.max():+.3f}")
# regression value: two fresh clones gave the same digits (the procedure is seeded); 0.01 of KL(cf || clean) allows a
# few greedy decisions to flip on another BLAS build (12 prompts instead of these 16 gave +0.014). Both procedures
# patch every active feature at threshold 0 and none at the top, so the gap there must be 0 (directional ends).
if "kl_shipped" in greedy:  # the replay measures what the search recorded, up to float order
    check("greedy: largest |KL replayed - KL recorded by the search| (nats)",
          float((greedy.kl - greedy.kl_shipped).abs().max()), 0.0, atol=1e-4)
regression("(b) minus (a) at equal numbers of features, mean, fraction of KL(cf || clean)", float(gap.mean()),
           0.0106858, profile=PROFILE, atol=0.01)
ends = compare[compare["n_features"].isin([0, int(small_fd.active.sum())])]
check("(b) minus (a) where both patch all or no features, max |gap|",
      float((ends["kl (b) attribution"] - ends["kl (a) greedy"]).abs().max()), 0.0, atol=1e-5)

# %% [markdown]
# ## 6. The SAE features with the largest estimated effect
#
# At each chosen layer, the features of the least sparse SAE (its error floor is the lowest, §3) with the most
# negative attribution (largest estimated KL reduction, ranked on the ranking half). Each one alone removes only a
# small part of the KL (the column "KL drop alone"): no single feature carries the counterfactual. For each: its
# estimated and its measured effect alone; where the counterfactual changes it most (mean activation by token role,
# clean and counterfactual), which is what patching it moves; where it fires most; the IOI tokens it fires on most;
# and its top activating contexts in held-out text (coloured by activation). Position 0 is left out everywhere, as
# in training: clean and counterfactual prompts are identical there.

# %%
eval_store = heldout_profile(model, store_hooks, profile)
roles = P.ioi_roles(tok, prompts[:n], pairs)
top_method = sae_methods[0]  # the least sparse SAE: the lowest error floor (§3)
feature_rows, views = [], []
for layer in patch_layers:
    fd, dec, case = deltas[layer][top_method], decomps[layer][top_method], cases[layer]
    with torch.no_grad():
        c_clean, c_cf = dec.encode(case.x_clean), dec.encode(case.x_cf)
    top = torch.argsort(attrs[layer][top_method])[: sizes.top_features].tolist()
    by_role_clean = P.activation_by_role(c_clean[..., top], roles)
    by_role_cf = P.activation_by_role(c_cf[..., top], roles)
    acts = feature_activations(eval_store, dec.hook, dec.sae, top)
    for j, f in enumerate(top):
        mask = torch.zeros(fd.n_features)
        mask[f] = 1
        alone = P.evaluate(case, fd, mask)["kl"]
        scored = roles >= 0  # position 0 left out, as in training
        vals = c_clean[..., f][scored]
        ids = pairs.clean[scored]
        best = torch.argsort(vals, descending=True)[:40]
        common = pd.Series([tok.decode([int(i)]) for i, v in zip(ids[best], vals[best]) if v > 0],
                           dtype=object).value_counts().head(4)
        role_clean, role_cf = by_role_clean[j], by_role_cf[j]
        change = role_cf - role_clean
        moved = change.abs().idxmax()
        reading = (f"the counterfactual changes it most at the {moved} token ({change[moved]:+.2f}: clean "
                   f"{role_clean[moved]:.2f}, counterfactual {role_cf[moved]:.2f}); it fires most at the "
                   f"{role_clean.idxmax()} token (clean {role_clean.max():.2f}); top IOI tokens (position 0 left "
                   f"out): {', '.join(repr(t) for t in common.index)}")
        feature_rows.append({"layer": layer, "feature": f, "attribution": float(attrs[layer][top_method][f]),
                             "KL drop alone": float(kl_clean.mean()) - alone, "reading (from the IOI prompts)": reading})
        views.append(FeatureView(f"layer {layer} · {top_method} · feature {f}",
                                 top_contexts(eval_store, acts[:, j], tok, k=5), reading))
features_table = pd.DataFrame(feature_rows)

# %%
# NBVAL_IGNORE_OUTPUT
# (measured table)
with pd.option_context("display.max_colwidth", 200):
    display(features_table.round(3))

# %%
# NBVAL_IGNORE_OUTPUT
# (circuitsvis views: top activating held-out contexts of each feature)
feature_views(views)

# %% [markdown]
# ## 7. Verdict
#
# Two claims of the paper's IOI experiment (Fig. 3; Pythia-410M, tied R = 4 dictionaries, 50 prompts). The statistic
# is the **curve area**: per prompt, KL(cf ‖ patched) averaged over the fixed log-spaced k grid from 1 to the smallest
# compared dictionary's size (`P.curve_area`; lower: fewer features carry more of the counterfactual), so no single
# k is picked after seeing the curves. Per layer the best sparse SAE and the best baseline are chosen by curve area
# on the *ranking* templates; the comparison is a paired difference on the *evaluation* templates, with a bootstrap
# that resamples templates. **Precondition**: a dictionary whose error term alone removes more than 10% of
# KL(cf ‖ clean) keeps that share out of any feature's reach, so a layer is testable only where the chosen SAE's
# error term removes at most 10% (§3); elsewhere the claim is "not testable here" at that layer. **Negative
# control**: the same SAE with its features ranked at random, through the same rule, should not beat the baseline.
# For each claim the table also states its rule, its precondition, its controls and the unit its intervals resample.
# The rules are coded in `saelib.experiments.patching.ioi_verdicts`.

# %%
# NBVAL_IGNORE_OUTPUT
# (measured table: the evidence the verdicts below are decided on)
rank_cases = {layer: cases[layer].subset(rank_idx) for layer in patch_layers}
rank_deltas = {layer: {m: P.feature_deltas(rank_cases[layer], d) for m, d in decomps[layer].items()}
               for layer in patch_layers}
area_ks = {layer: [k for k in grid if 1 <= k <= min(d.n_features for d in decomps[layer].values())]
           for layer in patch_layers}


def random_scores(n_features: int, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).permutation(n_features).astype(np.float32))


def paired(a: np.ndarray, b: np.ndarray):
    """a − b per evaluation prompt, cluster bootstrap over templates."""
    return cluster_bootstrap(a - b, eval_templates, seed=profile.seed)


error_share = exact.set_index(["layer", "method"])["error node alone removes"]
evidence = []
for layer in patch_layers:
    ks = area_ks[layer]
    on_rank = {m: float(P.curve_area(rank_cases[layer], rank_deltas[layer][m], attrs[layer][m], ks).mean())
               for m in methods}
    sae = min(sae_methods, key=on_rank.get)
    base = min(baseline_methods, key=on_rank.get)
    ev = eval_deltas[layer]
    area = {m: P.curve_area(eval_cases[layer], ev[m], attrs[layer][m], ks) for m in (sae, base, "SAE α=0")}
    area["random ranking"] = P.curve_area(eval_cases[layer], ev[sae], random_scores(ev[sae].n_features, layer), ks)
    evidence.append({"layer": layer, "best SAE": sae, "best baseline": base,
                     "SAE error term alone removes": float(error_share[(layer, sae)]),
                     "SAE area": str(mean_se(area[sae])), "baseline area": str(mean_se(area[base])),
                     "SAE − baseline": paired(area[sae], area[base]),
                     "SAE − α=0": paired(area[sae], area["SAE α=0"]),
                     "random ranking − baseline": paired(area["random ranking"], area[base]),
                     "random ranking − α=0": paired(area["random ranking"], area["SAE α=0"])})
evidence = pd.DataFrame(evidence).set_index("layer")
with pd.option_context("display.max_colwidth", 80):
    display(evidence.astype(str))

# %%
# NBVAL_IGNORE_OUTPUT
# (measured table; the verdict lines below are checked)
MAX_ERROR_SHARE = 0.10
results = P.IOIPatchingResults(evidence=evidence, patch_layers=patch_layers, max_error_share=MAX_ERROR_SHARE,
                               dictionaries=DICTIONARIES)
print(f"KL(cf ‖ clean) on the evaluation half: {kl0:.3f} nats; curve area over k in {area_ks}; layers where the "
      f"chosen SAE's error term removes at most {MAX_ERROR_SHARE:.0%}: {results.testable or 'none'}")
verdicts = P.ioi_verdicts(results)
show_verdicts(verdicts)

# %%
# stable output: the lines under each verdict are its rule, precondition, controls and unit as written in the
# code (thresholds, not measurements)
print_verdicts(verdicts)

# %% [markdown]
# **Reading.** Neither claim can be decided with the shipped R = 4 dictionaries: their error term alone removes 12%
# (layer 20) and 44% (layer 26) of KL(cf ‖ clean), a share no set of features can carry, so the comparison would
# partly measure the error term. Measured anyway, the sparse SAE's curve area is about one nat *higher* than the
# best baseline's at both layers (the neuron basis at 20, ICA at 26): over the whole k grid the rotations, which can
# patch a direction and its negation, isolate the counterfactual with fewer components. The sparse SAE's area is
# below the α = 0 dictionary's at layer 20 and not separated from it at 26. Dictionaries whose error term stays
# under 10% at these layers (wider, or today's architectures at the same L0: `scripts/release_dictionaries.py --plan
# comparison`) make both claims testable with this code unchanged.
